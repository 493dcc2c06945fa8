"""Given the layering rules of DESIGN §2, when the source is read, then every import points one way.

functions -> api -> use cases (``engine.app.<case>``) -> shared (``engine.app.shared``,
``engine.app.context``, ``engine.app.gateways``) -> ``engine.{domain, store, exchange, config}``.
A use case reaches another only through its package (``from engine.app.pool import promote_entry``),
never its modules; the local runtime likewise. No import cycle, counting function-level (lazy) and
``TYPE_CHECKING`` imports and the parent packages Python imports first. Shipped code never imports
a test library.

The rules are read from the source with ``ast`` (no import is executed), so a forbidden import fails here
even on a path no test runs. ``test_a_wrong_way_import_is_caught`` proves the checks can fail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "engine" / "python"
ENGINE = LAYER / "engine"
FUNCTIONS = ROOT / "functions"

FORBIDDEN_IN_DOMAIN = ("boto3", "botocore", "pynamodb", "ccxt", "aws_lambda_powertools", "moto")
TEST_LIBRARIES = ("pytest", "hypothesis", "moto", "_pytest")
USE_CASES = ("intake", "execution", "positions", "pool", "sync", "risk", "operator", "notify")
SHARED = ("engine.app.shared", "engine.app.context", "engine.app.gateways", "engine.app")
ADAPTERS = (
    "engine.domain",
    "engine.store",
    "engine.exchange",
    "engine.config",
    "engine.metric_names",
    "engine.botocore_data",
)
#: What each adapter package may import from the engine (besides itself).
ADAPTER_ALLOWED = {
    "engine.domain": ("engine.domain",),
    "engine.store": ("engine.domain", "engine.store", "engine.botocore_data"),
    "engine.exchange": ("engine.domain", "engine.exchange"),
    "engine.config": ("engine.domain", "engine.config", "engine.metric_names"),
    "engine.metric_names": (),
    "engine.botocore_data": (),
}


@dataclass(frozen=True)
class Import:
    """One import statement of a module: the modules it names (absolute), where, and how."""

    source: str
    target: str
    line: int
    lazy: bool


def module_name(path: Path) -> str:
    """``engine.app.pool.slots`` for a layer file, ``functions.<name>.handler`` for a handler."""
    base = LAYER if path.is_relative_to(LAYER) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _known_modules() -> set[str]:
    return {module_name(p) for p in ENGINE.rglob("*.py")}


KNOWN = _known_modules()


def _resolve(module: str, names: list[str]) -> list[str]:
    """The engine modules an ``from module import names`` reaches: submodules by name, else the package."""
    targets = [f"{module}.{name}" for name in names if f"{module}.{name}" in KNOWN]
    if len(targets) < len(names):
        targets.append(module)
    return targets


def imports_of(source: str, text: str) -> Iterator[Import]:
    """Every import in ``text`` (module ``source``), top-level, lazy and ``TYPE_CHECKING`` alike."""
    tree = ast.parse(text)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        lazy = id(node) not in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno, lazy)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{source}: relative import at line {node.lineno}")
            for target in _resolve(node.module, [alias.name for alias in node.names]):
                yield Import(source, target, node.lineno, lazy)


def shipped_files() -> list[Path]:
    """The engine layer and the handlers (the local runtime is checked separately)."""
    return sorted(FUNCTIONS.glob("*/handler.py")) + sorted(ENGINE.rglob("*.py"))


def all_imports(files: list[Path] | None = None) -> list[Import]:
    found: list[Import] = []
    for path in files if files is not None else shipped_files():
        found.extend(imports_of(module_name(path), path.read_text()))
    return found


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def use_case_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["engine", "app"] and parts[2] in USE_CASES:
        return parts[2]
    return None


def layer_of(module: str) -> str:
    """``functions``, ``api``, ``use_case``, ``shared``, ``adapter``, ``local`` or ``external``."""
    if module.startswith("functions."):
        return "functions"
    if _within(module, "engine.api"):
        return "api"
    if use_case_of(module):
        return "use_case"
    if _within(module, "engine.local"):
        return "local"
    if _within(module, SHARED):
        return "shared"
    if _within(module, ADAPTERS):
        return "adapter"
    return "external"


#: Which layers each layer may import (its own included).
MAY_IMPORT = {
    "functions": {"api", "use_case", "shared", "adapter", "external"},
    "api": {"api", "use_case", "shared", "adapter", "external"},
    "use_case": {"use_case", "shared", "adapter", "external"},
    "shared": {"shared", "adapter", "external"},
    "adapter": {"adapter", "external"},
    "local": {"local", "api", "use_case", "shared", "adapter", "external"},
}


def violations(imports: list[Import]) -> list[str]:
    """Every import that breaks the direction, the use-case boundaries or the adapters' own rules."""
    found: list[str] = []
    for imp in imports:
        source, target = layer_of(imp.source), layer_of(imp.target)
        where = f"{imp.source}:{imp.line} imports {imp.target}"
        if target not in MAY_IMPORT[source]:
            found.append(f"{where} ({source} -> {target})")
            continue
        own_case, other_case = use_case_of(imp.source), use_case_of(imp.target)
        if other_case and other_case != own_case and imp.target != f"engine.app.{other_case}":
            found.append(f"{where} (a use case's internals; import engine.app.{other_case})")
        if source == "adapter" and target == "adapter":
            package = next(p for p in ADAPTERS if _within(imp.source, p))
            if not _within(imp.target, (package, *ADAPTER_ALLOWED[package])):
                found.append(f"{where} ({package} may import only {ADAPTER_ALLOWED[package]})")
        if source == "shared" and _within(imp.source, "engine.app.shared") and target == "use_case":
            found.append(f"{where} (shared imports no use case)")
    return found


def _graph(imports: list[Import]) -> dict[str, set[str]]:
    """Module -> engine modules it imports, plus the parent packages Python imports first."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not _within(imp.target, "engine"):
            continue
        edges = graph.setdefault(imp.source, set())
        parts = imp.target.split(".")
        for depth in range(2, len(parts) + 1):
            parent = ".".join(parts[:depth])
            if parent in KNOWN and not _within(imp.source, parent):
                edges.add(parent)
    for module in KNOWN:  # a package's modules are imported after its __init__
        graph.setdefault(module, set())
    return graph


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a cycle of imports."""
    graph = _graph(imports)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# --------------------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("path", sorted(ENGINE.glob("domain/*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_infrastructure(path: Path) -> None:
    # Given a domain module, when its imports are read, then none is an AWS, database or exchange library
    roots = {imp.target.split(".")[0] for imp in imports_of(module_name(path), path.read_text())}
    assert not roots & set(FORBIDDEN_IN_DOMAIN)


def test_every_import_points_one_way() -> None:
    # Given the handlers and the engine layer, when every import (lazy ones too) is classified,
    # then none goes up a layer, into another use case's internals, or outside an adapter's allowance
    assert violations(all_imports()) == []


def test_there_is_no_import_cycle() -> None:
    # Given every engine import with the packages Python imports first, then no module reaches itself
    assert cycles(all_imports()) == []


def test_the_shared_package_imports_no_use_case() -> None:
    # Given engine.app.shared, when its imports are read, then none names a use case package
    shared = [p for p in ENGINE.glob("app/shared/*.py")]
    assert shared
    assert not [imp for imp in all_imports(shared) if use_case_of(imp.target)]


def test_no_shipped_module_imports_a_test_library() -> None:
    # Given the handlers and the engine layer but the local runtime, then no test library is imported
    shipped = [p for p in shipped_files() if not p.is_relative_to(ENGINE / "local")]
    offending = [imp for imp in all_imports(shipped) if imp.target.split(".")[0] in TEST_LIBRARIES]
    assert offending == []


def test_no_package_holds_more_than_sixteen_modules() -> None:
    # Given every package of the engine, then it holds at most 16 modules directly (a room one can read)
    for package in [ENGINE, *(p for p in ENGINE.rglob("*") if p.is_dir() and (p / "__init__.py").exists())]:
        modules = [p for p in package.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 16, package


def test_a_wrong_way_import_is_caught() -> None:
    # Given deliberate wrong-way imports, when they are checked, then each is reported
    wrong = {
        "engine.domain.grid": "from engine.store import GroupStore\n",  # domain -> store
        "engine.app.shared.markets": "from engine.app.pool import sweep_queue\n",  # shared -> use case
        "engine.app.pool.slots": "from engine.app.intake.entries import EntryRefused\n",  # internals
        "engine.store.groups": "def f():\n    from engine.app.positions import refresh_group\n",  # lazy, up
        "engine.app.risk.run": "from engine.api.operator import app\n",  # use case -> api
    }
    for source, text in wrong.items():
        assert violations(list(imports_of(source, text))), source


def test_a_lazy_import_cycle_is_caught() -> None:
    # Given two modules that import each other, one of them lazily, then the cycle is reported
    closing, refresh = "engine.app.positions.closing", "engine.app.positions.refresh"
    pair = [
        *imports_of(closing, f"from {refresh} import refresh_group\n"),
        *imports_of(refresh, f"def f():\n    from {closing} import request_close\n"),
    ]
    assert [closing, refresh] in cycles(pair)


def test_importing_the_whole_domain_loads_no_forbidden_library() -> None:
    # Given a fresh interpreter, when every domain module is imported, then no forbidden library is loaded
    modules = [f"engine.domain.{p.stem}" for p in ENGINE.glob("domain/*.py") if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(r for r in {FORBIDDEN_IN_DOMAIN!r} if r in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(LAYER), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
