"""Stream mappings: partial batch responses, finite retries, bounded age, bisect, SQS on-failure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import as_list, logical_id_of

# consumer function -> source table
EXPECTED_MAPPINGS = {
    "order_executor": "orders",
    "position_update": "orders",
    "slot_release": "groups",
    "notifier": "events",
}


@pytest.fixture(scope="module")
def mappings_by_function(synthesized: Any) -> dict[str, dict[str, Any]]:
    functions = synthesized.of_type("AWS::Lambda::Function")
    names = {
        logical_id: value["Properties"]["FunctionName"]
        .removeprefix("execution-engine-dev-")
        .replace("-", "_")
        for logical_id, value in functions.items()
        if "FunctionName" in value["Properties"]
    }
    return {
        names[logical_id_of(value["Properties"]["FunctionName"]) or ""]: value["Properties"]
        for value in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" in value["Properties"]  # streams; the sync loop's SQS queue is elsewhere
    }


def test_exactly_the_four_stream_consumers(mappings_by_function: dict[str, Any]) -> None:
    assert sorted(mappings_by_function) == sorted(EXPECTED_MAPPINGS)


@pytest.mark.parametrize("function", sorted(EXPECTED_MAPPINGS))
def test_stream_mapping_failure_settings(
    function: str, mappings_by_function: dict[str, Any], synthesized: Any
) -> None:
    mapping = mappings_by_function[function]
    table_id = logical_id_of(mapping["EventSourceArn"])
    table = synthesized.resources[table_id or ""]
    assert table["Properties"]["TableName"] == f"execution-engine-dev-{EXPECTED_MAPPINGS[function]}"
    assert mapping["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"

    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumRetryAttempts"] == 10
    assert mapping["MaximumRecordAgeInSeconds"] == 3600
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["ParallelizationFactor"] == 1
    assert 1 <= mapping["BatchSize"] <= 10

    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    queue = synthesized.resources[logical_id_of(destination) or ""]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["QueueName"].endswith("-stream-failures")
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_failure_queues_refuse_insecure_transport(synthesized: Any) -> None:
    queues = set(synthesized.of_type("AWS::SQS::Queue"))
    secured: set[str] = set()
    for policy in synthesized.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                secured |= {logical_id_of(queue) or "" for queue in as_list(policy["Properties"]["Queues"])}
    assert secured == queues
