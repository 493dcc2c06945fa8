"""Functions: runtime, sizing, environment, and least-privilege roles (tables, parameters, secrets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.conftest import as_list, flatten, logical_id_of

# Function -> (read-write tables, read-only tables): what each code path writes and reads
# (test_code_reach.py derives the same from the handlers' call graphs).
EXPECTED_TABLE_ACCESS: dict[str, tuple[set[str], set[str]]] = {
    "webhook": (
        {"groups", "orders", "queue", "pool", "events", "idempotency", "risk_actions"},
        {"markets", "prices"},
    ),
    "order_executor": ({"orders", "paper_orders", "state"}, {"prices", "groups"}),
    "position_update": (
        {"orders", "groups", "pool", "events", "risk_actions"},
        {"markets", "prices", "queue"},
    ),
    "slot_release": ({"groups", "pool", "queue", "orders", "events"}, {"markets", "prices"}),
    "order_sync": (
        {
            "groups",
            "orders",
            "queue",
            "pool",
            "events",
            "risk_actions",
            "markets",
            "prices",
            "paper_orders",
            "state",
            "equity",
        },
        set(),
    ),
    "risk_engine": (
        {"groups", "orders", "risk_actions", "state", "pool", "events"},
        {"prices", "markets", "queue"},
    ),
    "operator_api": (
        {"groups", "orders", "pool", "queue", "risk_actions", "events", "state"},
        {"equity", "markets", "prices"},
    ),
    # The events arrive on the stream (granted by the event source), the sent-records live in state.
    "notifier": ({"state"}, set()),
}
EXPECTED_SIZING = {  # memory MB, timeout s
    "webhook": (1769, 10),  # one full vCPU for the cold start inside TradingView's 3 s
    "order_executor": (1024, 90),  # one order per batch, worst case 82.5 s (infra/functions.py)
    "position_update": (1024, 60),
    "slot_release": (1024, 60),
    "order_sync": (1024, 50),  # below the 60 s schedule interval
    "risk_engine": (1024, 50),
    "operator_api": (1024, 60),
    "notifier": (256, 300),  # Telegram: 4 tries x 5 s + 429 waits per message, a few per batch
}
EXPECTED_SECRETS = {
    "webhook": {"execution-engine/dev/webhook"},
    "order_executor": {f"execution-engine/dev/exchange/{name}" for name in ("binance", "bybit", "okx")},
    "order_sync": {f"execution-engine/dev/exchange/{name}" for name in ("binance", "bybit", "okx")},
    "notifier": {"execution-engine/dev/telegram"},
}
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem"}


@pytest.fixture(scope="module")
def functions_by_name(synthesized: Any) -> dict[str, dict[str, Any]]:
    functions = synthesized.of_type("AWS::Lambda::Function")
    ours = {
        value["Properties"]["FunctionName"]: value["Properties"]
        for value in functions.values()
        if value["Properties"].get("Handler") == "handler.lambda_handler"
    }
    return {
        name.removeprefix("execution-engine-dev-").replace("-", "_"): props for name, props in ours.items()
    }


@pytest.fixture(scope="module")
def table_names_by_logical_id(synthesized: Any) -> dict[str, str]:
    return {
        logical_id: value["Properties"]["TableName"].removeprefix("execution-engine-dev-").replace("-", "_")
        for logical_id, value in synthesized.of_type("AWS::DynamoDB::Table").items()
    }


@pytest.fixture(scope="module")
def secret_names_by_logical_id(synthesized: Any) -> dict[str, str]:
    return {
        logical_id: value["Properties"]["Name"]
        for logical_id, value in synthesized.of_type("AWS::SecretsManager::Secret").items()
    }


def test_the_eight_functions_exist(functions_by_name: dict[str, Any]) -> None:
    assert sorted(functions_by_name) == sorted(EXPECTED_SIZING)


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZING))
def test_function_runtime_and_sizing(name: str, functions_by_name: dict[str, Any]) -> None:
    props = functions_by_name[name]
    memory, timeout = EXPECTED_SIZING[name]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["MemorySize"] == memory
    assert props["Timeout"] == timeout
    assert len(props["Layers"]) == 2
    assert "ReservedConcurrentExecutions" not in props


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZING))
def test_function_environment_names_only_its_tables(name: str, functions_by_name: dict[str, Any]) -> None:
    env = functions_by_name[name]["Environment"]["Variables"]
    read_write, read_only = EXPECTED_TABLE_ACCESS[name]
    table_vars = {key: value for key, value in env.items() if key.endswith("_TABLE")}
    assert table_vars == {
        f"{table.upper()}_TABLE": "execution-engine-dev-" + table.replace("_", "-")
        for table in read_write | read_only
    }
    assert env["CONFIG_PREFIX"] == "/execution-engine/dev/"
    assert env["CONFIG_MAX_AGE_SECONDS"] == "30"
    assert env["WEBHOOK_SECRET_NAME"] == "execution-engine/dev/webhook"
    assert env["EXCHANGE_SECRET_PREFIX"] == "execution-engine/dev/exchange/"
    assert env["POWERTOOLS_SERVICE_NAME"] == "execution-engine-dev"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ExecutionEngine"
    assert env["LOG_LEVEL"] == "INFO"
    assert env["APP_NAME"] == "execution-engine"
    assert env["STAGE"] == "dev"
    assert env["EXCHANGE_TIMEOUT_MS"] == "5000"
    # order_sync stores paper prices from public tickers (no local price feed in AWS); order_executor
    # falls back to the ticker for a symbol not priced yet. Nothing else reads paper prices that way.
    expected = "tickers" if name in ("order_sync", "order_executor") else None
    assert env.get("PAPER_PRICE_SOURCE") == expected


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLE_ACCESS))
def test_role_grants_exactly_the_tables_the_function_uses(
    name: str,
    role_statements: Callable[[str], list[dict[str, Any]]],
    table_names_by_logical_id: dict[str, str],
) -> None:
    readable: set[str] = set()
    writable: set[str] = set()
    for statement in role_statements(name):
        actions = set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            table = table_names_by_logical_id.get(logical_id_of(resource) or "")
            if table is None:
                continue
            if actions & READ_ACTIONS:
                readable.add(table)
            if actions & WRITE_ACTIONS:
                writable.add(table)
    read_write, read_only = EXPECTED_TABLE_ACCESS[name]
    assert writable == read_write
    assert readable == read_write | read_only


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLE_ACCESS))
def test_role_reads_only_its_secrets_and_the_stage_parameters(
    name: str,
    role_statements: Callable[[str], list[dict[str, Any]]],
    secret_names_by_logical_id: dict[str, str],
) -> None:
    secrets: set[str] = set()
    parameter_resources: set[str] = set()
    for statement in role_statements(name):
        actions = set(as_list(statement["Action"]))
        assert not any(action.startswith("ssm:Put") or action.startswith("ssm:Delete") for action in actions)
        if any(action.startswith("secretsmanager:") for action in actions):
            assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
            secrets |= {
                secret_names_by_logical_id[logical_id_of(r) or ""] for r in as_list(statement["Resource"])
            }
        if any(action.startswith("ssm:") for action in actions):
            assert actions == {
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:GetParameterHistory",
                "ssm:GetParametersByPath",
            }
            parameter_resources |= {flatten(r) for r in as_list(statement["Resource"])}
    assert secrets == EXPECTED_SECRETS.get(name, set())
    assert {resource.split(":parameter", 1)[1] for resource in parameter_resources} == {
        "/execution-engine/dev",
        "/execution-engine/dev/*",
    }


def test_no_policy_in_the_stack_has_wildcard_actions(synthesized: Any) -> None:
    for logical_id, policy in synthesized.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any("*" in action for action in as_list(statement["Action"])), logical_id


def test_wildcard_resources_only_for_list_streams_and_never_on_table_data(synthesized: Any) -> None:
    for logical_id, policy in synthesized.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = [flatten(resource) for resource in as_list(statement["Resource"])]
            if "*" in resources:
                # ListStreams cannot be scoped (no resource-level permissions); it returns no data.
                assert as_list(statement["Action"]) == ["dynamodb:ListStreams"], logical_id
            if any(action.startswith("dynamodb:") for action in as_list(statement["Action"])):
                assert not any(resource.endswith("/*") for resource in resources), logical_id


def test_order_executor_batch_fits_its_timeout_with_every_exchange_request_timing_out() -> None:
    from infra import functions

    assert functions.EXCHANGE_TIMEOUT_MS == 5_000
    assert functions.ORDER_WORST_CASE_SECONDS == 82.5
    assert (
        functions.ORDER_EXECUTOR_BATCH_SIZE * functions.ORDER_WORST_CASE_SECONDS
        + functions.COLD_INIT_ALLOWANCE_SECONDS
        <= functions.ORDER_EXECUTOR_TIMEOUT_SECONDS
    )


def test_order_executor_stream_batch_is_one_order(
    synthesized: Any, functions_by_name: dict[str, Any]
) -> None:
    mappings = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
    executor = [
        m["Properties"]
        for m in mappings
        if m["Properties"]["FunctionName"] == {"Ref": _logical_id(synthesized, "order_executor")}
    ]
    assert [m["BatchSize"] for m in executor] == [1]


def _logical_id(synthesized: Any, name: str) -> str:
    (found,) = [
        key
        for key, value in synthesized.of_type("AWS::Lambda::Function").items()
        if value["Properties"].get("FunctionName") == "execution-engine-dev-" + name.replace("_", "-")
    ]
    return found
