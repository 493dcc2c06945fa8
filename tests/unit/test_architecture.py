"""Given the layering rules of DESIGN §2, when modules are imported, then forbidden imports are absent."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "layers" / "engine" / "python" / "engine"

FORBIDDEN_IN_DOMAIN = ("boto3", "botocore", "pynamodb", "ccxt", "aws_lambda_powertools", "moto")


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(ENGINE.glob("domain/*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_infrastructure(path: Path) -> None:
    # Given a domain module, when its imports are read, then none is an AWS, database or exchange library
    assert not _imported_roots(path) & set(FORBIDDEN_IN_DOMAIN)


def _imports_of_engine_package(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("engine."))
    return found


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("domain", {"domain"}),
        ("store", {"domain", "store"}),
        ("exchange", {"domain", "exchange"}),
        ("config", {"domain", "config"}),
    ],
)
def test_dependencies_point_one_way(package: str, allowed: set[str]) -> None:
    # Given an adapter package, when its engine imports are read, then it reaches only downwards
    for path in (ENGINE / package).rglob("*.py"):
        assert _imports_of_engine_package(path) <= allowed, path


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
        env={"PYTHONPATH": str(ENGINE.parent), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
