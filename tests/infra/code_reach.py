"""Which tables each function's code reaches, read from the source (no import, no AWS).

1. A call graph over the engine package and the handler (AST): a node is a module-level function or
   a class (all its methods); an edge is any reference to another node's name (a call, a decorator, a
   function passed as an argument), resolved through `from engine... import` and `module.attr`.
   A reference to a module-level variable (e.g. the operator API's resolver `app`) brings in the
   whole module it lives in. Over-approximates (a referenced function counts as called), never under.
2. In every reached node, the store uses: `stores.<field>.<method>` (the services only reach the
   tables through `engine.app.context.Stores`) and bare `stores.<field>` handed to a gateway.
3. STORE_ACCESS maps each store method to the tables it reads and writes; `models_touched` checks that
   map against the pynamodb models each method reaches in engine/store (so it cannot drift silently).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from infra.settings import PROJECT_ROOT

ENGINE_ROOT = PROJECT_ROOT / "layers" / "engine" / "python"
FUNCTIONS_ROOT = PROJECT_ROOT / "functions"

# `engine.app.context.Stores` field -> store class.
STORE_FIELDS = {
    "groups": "GroupStore",
    "orders": "OrderStore",
    "pool": "PoolStore",
    "queue": "QueueStore",
    "signals": "SignalAudit",
    "risk_actions": "RiskActionStore",
    "equity": "EquityStore",
    "markets": "MarketStore",
    "prices": "PriceStore",
    "paper": "PaperOrderStore",
    "state": "StateStore",
    "counters": "CounterStore",
    "control": "ControlStore",
    "events": "EventStore",
}
MODEL_TABLES = {
    "GroupModel": "groups",
    "OrderModel": "orders",
    "QueueModel": "queue",
    "PoolModel": "pool",
    "EventModel": "events",
    "RiskActionModel": "risk_actions",
    "EquityModel": "equity",
    "MarketModel": "markets",
    "PriceModel": "prices",
    "PaperOrderModel": "paper_orders",
    "IdempotencyModel": "idempotency",
    "StateModel": "state",
}

R, W = "read", "write"
# (class, method) -> {table: read | write}; a written table is read too (conditions, versions).
STORE_ACCESS: dict[tuple[str, str], dict[str, str]] = {
    ("GroupStore", "get"): {"groups": R},
    ("GroupStore", "get_open_by_key"): {"pool": R, "groups": R},
    ("GroupStore", "list_by_status"): {"groups": R},
    ("GroupStore", "list_open"): {"groups": R},
    # A write that changes what a group counts moves the per-account counters (pool table) with it.
    ("GroupStore", "save"): {"groups": W, "pool": W, "events": W},
    ("GroupStore", "add_pyramid"): {"groups": W, "orders": W, "pool": W, "events": W},
    ("GroupStore", "realized_on"): {"groups": R},
    ("GroupStore", "list_closed_on"): {"groups": R},
    ("CounterStore", "entry_state"): {"pool": R, "markets": R},
    ("CounterStore", "get"): {"pool": R},
    ("CounterStore", "realized_on"): {"pool": R},
    ("CounterStore", "list_open_counters"): {"pool": R},
    ("CounterStore", "correct"): {"pool": W},
    ("CounterStore", "realized_by_day"): {"pool": R, "markets": R},
    ("ControlStore", "get"): {"pool": R},
    ("ControlStore", "set_paused"): {"pool": W},
    ("OrderStore", "get"): {"orders": R},
    ("OrderStore", "list_for_group"): {"orders": R},
    ("OrderStore", "list_by_status"): {"orders": R},
    ("OrderStore", "put_new"): {"orders": W},
    ("OrderStore", "put_new_unless_closing"): {"orders": W, "groups": R},
    ("OrderStore", "put_many_new"): {"orders": W},
    ("OrderStore", "save"): {"orders": W},
    ("PoolStore", "count"): {"pool": R},
    ("PoolStore", "status"): {"pool": R},
    ("PoolStore", "counts"): {"pool": R},
    ("PoolStore", "slots"): {"pool": R},
    ("PoolStore", "migrate_legacy_counter"): {"pool": W},
    ("PoolStore", "open_group"): {"pool": W, "groups": W, "orders": W, "queue": W, "events": W},
    ("PoolStore", "release_slot"): {"pool": W},
    ("PoolStore", "hand_over_slot"): {"pool": W, "groups": W, "orders": W, "queue": W, "events": W},
    ("QueueStore", "enqueue"): {"pool": W, "queue": W, "events": W},
    ("QueueStore", "get"): {"queue": R},
    ("QueueStore", "find_by_key"): {"pool": R, "queue": R},
    ("QueueStore", "replace"): {"queue": W},
    ("QueueStore", "remove"): {"pool": W, "queue": W},
    ("QueueStore", "list_all"): {"queue": R},
    ("SignalAudit", "record"): {"events": W},
    ("SignalAudit", "list_recent"): {"events": R},
    ("EventStore", "record"): {"events": W},
    ("EventStore", "get"): {"events": R},
    ("EventStore", "list"): {"events": R},
    ("RiskActionStore", "record"): {"risk_actions": W, "events": W},
    ("RiskActionStore", "list_recent"): {"risk_actions": R},
    ("EquityStore", "append"): {"equity": W},
    ("EquityStore", "list"): {"equity": R},
    ("MarketStore", "get"): {"markets": R},
    ("MarketStore", "put_many"): {"markets": W},
    ("MarketStore", "list"): {"markets": R},
    ("MarketStore", "refreshed_at"): {"markets": R},
    ("PriceStore", "get"): {"prices": R},
    ("PriceStore", "set"): {"prices": W},
    ("PriceStore", "all"): {"prices": R},
    ("StateStore", "claim_interval"): {"state": W},
    ("StateStore", "mark_once"): {"state": W},
    ("StateStore", "get"): {"state": R},
    ("StateStore", "put"): {"state": W},
    ("StateStore", "acquire_lease"): {"state": W},
    ("StateStore", "advance_lease"): {"state": W},
    ("StateStore", "release_lease"): {"state": W},
    ("StateStore", "lease_holder"): {"state": R},
    ("StateStore", "is_marked"): {"state": R},
    ("StateStore", "list_documents"): {"state": R},
    # The paper book as a whole (handed to PaperGateway, which reads and writes it).
    ("PaperOrderStore", "*"): {"paper_orders": W},
    # Prices handed to PaperGateway as its price source: read only.
    ("PriceStore", "*"): {"prices": R},
}

# `stores.x.m`, `ctx.stores.x.m`, `stores().x.m`, `the_stores.x.m` (every spelling in the services).
_STORE_USE = re.compile(r"\w*stores(?:\(\))?\.(\w+)(?:\.(\w+))?")


@dataclass
class Module:
    name: str
    tree: ast.Module
    source: str
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (module, attr)
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level functions and classes
    variables: set[str] = field(default_factory=set)


def _module_path(name: str) -> Path | None:
    base = ENGINE_ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def load_module(name: str, path: Path | None = None) -> Module | None:
    path = path or _module_path(name)
    if path is None:
        return None
    source = path.read_text()
    tree = ast.parse(source)
    module = Module(name, tree, source)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    # Function-level (lazy) imports count too: a handler reaches what it imports on first use.
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    for node in [*imports, *(n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom))]:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            module.defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            module.variables |= {t.id for t in targets if isinstance(t, ast.Name)}
    return module


Node = tuple[str, str]  # (module, top-level name); name "*" = the whole module


def _walk_code(node: ast.AST) -> list[ast.AST]:
    """`ast.walk` without type annotations (a model named in an annotation is not a table access)."""
    found: list[ast.AST] = []
    todo = [node]
    while todo:
        current = todo.pop()
        found.append(current)
        for name, value in ast.iter_fields(current):
            if name in {"annotation", "returns"}:
                continue
            values = value if isinstance(value, list) else [value]
            todo.extend(v for v in values if isinstance(v, ast.AST))
    return found


def _resolve(module: Module, name: str, depth: int = 0) -> Node | None:
    """The engine node `name` means inside `module` (following re-exports), else None."""
    if depth > 10:
        return None
    if name in module.defs:
        return (module.name, name)
    if name in module.variables:
        return (module.name, "*")
    if name not in module.imports:
        return None
    target, attr = module.imports[name]
    if not target.startswith("engine"):
        return None
    if attr is None:
        return (target, "*")
    submodule = load_module(f"{target}.{attr}")
    if submodule is not None:
        return (submodule.name, "*")
    owner = load_module(target)
    return _resolve(owner, attr, depth + 1) if owner is not None else None


def _references(module: Module, node: ast.AST) -> set[Node]:
    found: set[Node] = set()
    for sub in _walk_code(node):
        if isinstance(sub, ast.Name):
            resolved = _resolve(module, sub.id)
            if resolved is not None:
                found.add(resolved)
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            resolved = _resolve(module, sub.value.id)
            if resolved is not None and resolved[1] == "*":
                target = load_module(resolved[0])
                if target is not None:
                    attr = _resolve(target, sub.attr)
                    if attr is not None:
                        found.add(attr)
    return found


#: The live gateway factory behind ``EngineContext.gateways``: building the context names it, but only a
#: call through the context (``ctx.gateways(...)``) reaches an exchange (and, for paper, the paper book).
LIVE_GATEWAYS: Node = ("engine.app.context", "LiveGateways")


def _node_source(node: Node) -> tuple[Module, list[ast.AST]] | None:
    module = load_module(node[0])
    if module is None:
        return None
    if node[1] == "*":
        defs = [d for name, d in module.defs.items() if (module.name, name) != LIVE_GATEWAYS]
        return module, defs + [
            n for n in module.tree.body if isinstance(n, ast.Assign | ast.AnnAssign | ast.Expr)
        ]
    return module, [module.defs[node[1]]]


_GATEWAY_CALL = re.compile(r"\.gateways\(")


_SEGMENTS: dict[int, str] = {}


def _segment(module: Module, body: ast.AST) -> str:
    """``ast.get_source_segment`` (slow: it splits the source on every call), once per node."""
    key = id(body)  # the trees live as long as load_module's cache, so ids stay unique
    if key not in _SEGMENTS:
        _SEGMENTS[key] = ast.get_source_segment(module.source, body) or ""
    return _SEGMENTS[key]


def _references_of(module: Module, body: ast.AST) -> set[Node]:
    found = _references(module, body) - {LIVE_GATEWAYS}
    if _GATEWAY_CALL.search(_segment(module, body)):
        found.add(LIVE_GATEWAYS)
    return found


@cache
def reachable_nodes(handler: Path) -> frozenset[Node]:
    """Every engine node the handler module can reach (see the module docstring)."""
    entry = load_module(f"handler:{handler.parent.name}", handler)
    assert entry is not None
    todo = list(_references_of(entry, entry.tree))
    seen: set[Node] = set()
    while todo:
        node = todo.pop()
        if node in seen or node[0].startswith("engine.store") or node[0] == "engine.local":
            continue
        seen.add(node)
        found = _node_source(node)
        if found is None:
            continue
        module, bodies = found
        for body in bodies:
            todo.extend(_references_of(module, body))
    return frozenset(seen)


@cache
def store_uses(handler: Path) -> frozenset[tuple[str, str]]:
    """(store class, method or "*") of every `stores.<field>[.<method>]` in the reachable code."""
    uses: set[tuple[str, str]] = set()
    for node in reachable_nodes(handler):
        found = _node_source(node)
        if found is None:
            continue
        module, bodies = found
        for body in bodies:
            for field_name, method in _STORE_USE.findall(_segment(module, body)):
                if field_name in STORE_FIELDS:
                    uses.add((STORE_FIELDS[field_name], method or "*"))
    return frozenset(uses)


def _uses_idempotency_table(handler: Path) -> bool:
    """Powertools idempotency (its own DynamoDB client on IDEMPOTENCY_TABLE) in the reachable code."""
    for node in reachable_nodes(handler):
        found = _node_source(node)
        if found is not None and any(
            "DynamoDBPersistenceLayer" in _segment(found[0], body) for body in found[1]
        ):
            return True
    return False


def table_access(handler: Path) -> tuple[set[str], set[str]]:
    """(tables written, tables only read) by the handler's reachable code."""
    written: set[str] = {"idempotency"} if _uses_idempotency_table(handler) else set()
    touched: set[str] = set(written)
    for use in store_uses(handler):
        access = STORE_ACCESS[use]  # KeyError: a store method missing from STORE_ACCESS
        touched |= set(access)
        written |= {table for table, mode in access.items() if mode == W}
    return written, touched - written


def models_touched(store_class: str, method: str) -> set[str]:
    """Tables whose pynamodb models `store_class.method` reaches through engine/store (AST)."""
    for path in sorted((ENGINE_ROOT / "engine" / "store").glob("*.py")):
        module = load_module(f"engine.store.{path.stem}")
        assert module is not None
        cls = module.defs.get(store_class)
        if isinstance(cls, ast.ClassDef):
            return _models_in_method(module, cls, method)
    raise KeyError(store_class)


def _models_in_method(module: Module, cls: ast.ClassDef, method: str) -> set[str]:
    methods = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
    todo: list[tuple[Module, ast.AST]] = [(module, methods[method])]
    seen: set[int] = set()
    tables: set[str] = set()
    while todo:
        owner, node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for sub in _walk_code(node):
            if isinstance(sub, ast.Name) and sub.id in MODEL_TABLES:
                tables.add(MODEL_TABLES[sub.id])
            elif (
                isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self"
            ) and sub.attr in methods:
                todo.append((owner, methods[sub.attr]))
            if isinstance(sub, ast.Name):
                resolved = _resolve(owner, sub.id)
                if resolved and resolved[0].startswith("engine.store") and resolved[1] != "*":
                    target = load_module(resolved[0])
                    definition = target.defs[resolved[1]] if target else None
                    if isinstance(definition, ast.FunctionDef) and target is not None:
                        todo.append((target, definition))
    return tables


#: The functions through which code reaches a non-table resource: SSM documents (every read goes through
#: the document provider), the webhook secret, the exchange accounts' secrets, the Telegram bot token.
RESOURCE_READERS: dict[Node, str] = {
    ("engine.config.providers", "document_provider"): "parameters",
    ("engine.config.secrets", "webhook_secret"): "webhook_secret",
    ("engine.config.secrets", "exchange_credentials"): "exchange_secrets",
    ("engine.config.secrets", "telegram_token"): "telegram_secret",
}


@cache
def resources_reached(handler: Path) -> frozenset[str]:
    """The kinds of :data:`RESOURCE_READERS` the handler's code can reach."""
    reached = reachable_nodes(handler)
    return {kind for node, kind in RESOURCE_READERS.items() if node in reached or (node[0], "*") in reached}
