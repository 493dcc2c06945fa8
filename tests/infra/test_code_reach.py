"""Template-faithful table access: what each function's code reaches = its env vars = its grants.

Statically, for every function in the synthesized template:
- every table named by one of its `*_TABLE` env vars is covered by its role (read; write if written);
- its role grants no table its env does not name;
- the tables its handler's code reaches (tests/infra/code_reach.py: call graph + store methods) are
  exactly the tables its env names, written ones with write grants, read-only ones without.
A new store call in a service then fails here until infra/functions.py grants it (this is how
position_update reached the queue and pool tables with neither env var nor grant). The same holds for
the config documents (SSM) and the secrets: granted exactly when the code reaches their readers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.store import tables as store_tables
from infra.access import TABLE_READ_ACTIONS, TABLE_WRITE_ACTIONS
from infra.functions import FUNCTION_SPECS
from infra.storage import TABLE_SPECS
from tests.infra.code_reach import (
    FUNCTIONS_ROOT,
    STORE_ACCESS,
    models_touched,
    resources_reached,
    table_access,
)
from tests.infra.conftest import as_list, flatten, logical_id_of

TABLE_BY_ENV = {spec.env_var: name for name, spec in TABLE_SPECS.items()}
FUNCTIONS = [spec.name for spec in FUNCTION_SPECS]


@pytest.fixture(scope="module")
def functions(synthesized: Any) -> dict[str, dict[str, Any]]:
    return {
        props["FunctionName"].removeprefix("execution-engine-dev-").replace("-", "_"): props
        for props in (value["Properties"] for value in synthesized.of_type("AWS::Lambda::Function").values())
        if props.get("Handler") == "handler.lambda_handler"
    }


@pytest.fixture(scope="module")
def table_by_logical_id(synthesized: Any) -> dict[str, str]:
    by_name = {f"execution-engine-dev-{short}": env for env, short, _model in store_tables.TABLES}
    return {
        logical_id: TABLE_BY_ENV[by_name[value["Properties"]["TableName"]]]
        for logical_id, value in synthesized.of_type("AWS::DynamoDB::Table").items()
    }


def _granted(
    statements: list[dict[str, Any]], table_by_logical_id: dict[str, str]
) -> tuple[set[str], set[str]]:
    """(readable tables, writable tables): a table counts only with all of the actions of its kind."""
    readable: dict[str, set[str]] = {}
    writable: dict[str, set[str]] = {}
    for statement in statements:
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            table = table_by_logical_id.get(logical_id_of(resource) or "")
            if table is not None:
                readable.setdefault(table, set()).update(actions)
                writable.setdefault(table, set()).update(actions)
    return (
        {t for t, acts in readable.items() if set(TABLE_READ_ACTIONS) <= acts},
        {t for t, acts in writable.items() if set(TABLE_WRITE_ACTIONS) <= acts},
    )


def _env_tables(props: dict[str, Any]) -> set[str]:
    env = props["Environment"]["Variables"]
    names = {key for key in env if key.endswith("_TABLE")}
    assert names <= set(TABLE_BY_ENV), f"unknown table variables {names - set(TABLE_BY_ENV)}"
    return {TABLE_BY_ENV[key] for key in names}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_table_in_the_env_is_granted_and_no_other(
    name: str,
    functions: dict[str, dict[str, Any]],
    role_statements: Callable[[str], list[dict[str, Any]]],
    table_by_logical_id: dict[str, str],
) -> None:
    env_tables = _env_tables(functions[name])
    readable, writable = _granted(role_statements(name), table_by_logical_id)
    assert env_tables == readable
    assert writable <= env_tables


@pytest.mark.parametrize("name", FUNCTIONS)
def test_env_and_grants_match_the_tables_the_code_reaches(
    name: str,
    functions: dict[str, dict[str, Any]],
    role_statements: Callable[[str], list[dict[str, Any]]],
    table_by_logical_id: dict[str, str],
) -> None:
    written, read_only = table_access(FUNCTIONS_ROOT / name / "handler.py")
    assert _env_tables(functions[name]) == written | read_only
    _readable, writable = _granted(role_statements(name), table_by_logical_id)
    assert writable == written


@pytest.mark.parametrize(("store_class", "method"), sorted(k for k in STORE_ACCESS if k[1] != "*"))
def test_store_access_map_names_exactly_the_models_each_method_reaches(store_class: str, method: str) -> None:
    assert set(STORE_ACCESS[(store_class, method)]) == models_touched(store_class, method)


def test_store_access_map_covers_every_public_store_method() -> None:
    import engine.store as store

    for class_name in {k[0] for k in STORE_ACCESS}:
        cls = getattr(store, class_name)
        public = {m for m in vars(cls) if not m.startswith("_") and callable(getattr(cls, m))}
        mapped = {method for owner, method in STORE_ACCESS if owner == class_name}
        missing = public - mapped
        # PaperOrderStore is reached as a whole (handed to the paper gateway): "*" covers it.
        assert not missing or (class_name, "*") in STORE_ACCESS, (class_name, missing)


def test_position_update_reaches_the_queue_and_pool_tables() -> None:
    """Issue 19: closing a group looks up its key's queue entry (QueueStore.find_by_key)."""
    written, read_only = table_access(FUNCTIONS_ROOT / "position_update" / "handler.py")
    assert {"queue", "pool"} <= written | read_only


@pytest.fixture(scope="module")
def secret_kinds(synthesized: Any) -> dict[str, str]:
    """Secret logical id -> "webhook_secret" | "exchange_secrets" (by its name in the template)."""
    kinds = {}
    for logical_id, value in synthesized.of_type("AWS::SecretsManager::Secret").items():
        name = value["Properties"]["Name"]
        if name.endswith("/webhook"):
            kinds[logical_id] = "webhook_secret"
        elif name.endswith("/telegram"):
            kinds[logical_id] = "telegram_secret"
        else:
            kinds[logical_id] = "exchange_secrets"
    return kinds


def _granted_resources(statements: list[dict[str, Any]], secret_kinds: dict[str, str]) -> set[str]:
    granted: set[str] = set()
    for statement in statements:
        if statement.get("Effect", "Allow") != "Allow":
            continue
        actions = set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            if "ssm:GetParameters" in actions and ":parameter/" in flatten(resource):
                granted.add("parameters")
            kind = secret_kinds.get(logical_id_of(resource) or "")
            if kind is not None and "secretsmanager:GetSecretValue" in actions:
                granted.add(kind)
    return granted


@pytest.mark.parametrize("name", FUNCTIONS)
def test_parameters_and_secrets_granted_are_exactly_those_the_code_reaches(
    name: str,
    role_statements: Callable[[str], list[dict[str, Any]]],
    secret_kinds: dict[str, str],
) -> None:
    # Given what the function's code can reach (config documents, webhook secret, exchange secrets)
    reached = resources_reached(FUNCTIONS_ROOT / name / "handler.py")

    # Then its role reads exactly those: nothing the code needs is missing, nothing else is granted
    assert _granted_resources(role_statements(name), secret_kinds) == reached


def test_the_code_reach_of_secrets_follows_the_handlers() -> None:
    # The model itself: only the webhook reads the webhook secret; the exchange-facing functions read
    # the exchange secrets; every function reads its config documents.
    reach = {name: resources_reached(FUNCTIONS_ROOT / name / "handler.py") for name in FUNCTIONS}
    assert {name for name, kinds in reach.items() if "webhook_secret" in kinds} == {"webhook"}
    assert "exchange_secrets" in reach["order_executor"]
    assert "exchange_secrets" not in reach["webhook"]
    assert {name for name, kinds in reach.items() if "telegram_secret" in kinds} == {"notifier"}
    assert all("parameters" in kinds for kinds in reach.values()), reach
