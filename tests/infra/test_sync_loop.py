"""The fast sync loop's tick queue (infra/sync_loop.py): consumed and fed by order_sync only, encrypted,
TLS only, a dead-letter queue with an alarm, a visibility timeout the consumer fits in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import as_list, logical_id_of

TICKS = "execution-engine-dev-sync-ticks"
DLQ = "execution-engine-dev-sync-ticks-dlq"


@pytest.fixture(scope="module")
def queues(synthesized: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Queue name -> (logical id, properties)."""
    return {
        value["Properties"]["QueueName"]: (logical_id, value["Properties"])
        for logical_id, value in synthesized.of_type("AWS::SQS::Queue").items()
    }


@pytest.fixture(scope="module")
def function_ids(synthesized: Any) -> dict[str, str]:
    """Function name -> logical id."""
    return {
        value["Properties"]["FunctionName"]: logical_id
        for logical_id, value in synthesized.of_type("AWS::Lambda::Function").items()
        if "FunctionName" in value["Properties"]
    }


def test_tick_queue_is_encrypted_with_a_dead_letter_queue(queues: dict[str, Any]) -> None:
    _ticks_id, ticks = queues[TICKS]
    dlq_id, dlq = queues[DLQ]
    assert ticks["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert logical_id_of(ticks["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_id
    assert ticks["RedrivePolicy"]["maxReceiveCount"] == 3
    assert ticks["MessageRetentionPeriod"] == 600
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_order_sync_consumes_the_ticks_one_at_a_time_within_the_visibility_timeout(
    synthesized: Any, queues: dict[str, Any], function_ids: dict[str, str]
) -> None:
    ticks_id, ticks = queues[TICKS]
    (mapping,) = [
        value["Properties"]
        for value in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if logical_id_of(value["Properties"]["EventSourceArn"]) == ticks_id
    ]
    assert logical_id_of(mapping["FunctionName"]) == function_ids["execution-engine-dev-order-sync"]
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    order_sync = synthesized.resources[function_ids["execution-engine-dev-order-sync"]]["Properties"]
    assert ticks["VisibilityTimeout"] >= 6 * order_sync["Timeout"]
    assert order_sync["Environment"]["Variables"]["SYNC_LOOP_QUEUE_URL"] == {"Ref": ticks_id}


def test_only_order_sync_may_send_or_receive_ticks(
    synthesized: Any, queues: dict[str, Any], role_statements: Any
) -> None:
    ticks_id, _ticks = queues[TICKS]
    names = [
        value["Properties"]["FunctionName"].removeprefix("execution-engine-dev-").replace("-", "_")
        for value in synthesized.of_type("AWS::Lambda::Function").values()
        if value["Properties"].get("Handler") == "handler.lambda_handler"
    ]
    reaching: dict[str, set[str]] = {}
    for name in names:
        for statement in role_statements(name):
            if any(logical_id_of(r) == ticks_id for r in as_list(statement["Resource"])):
                reaching.setdefault(name, set()).update(as_list(statement["Action"]))
    assert list(reaching) == ["order_sync"]
    assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= reaching["order_sync"]


def test_dead_letters_are_alarmed(synthesized: Any, queues: dict[str, Any]) -> None:
    dlq_id, _dlq = queues[DLQ]
    alarmed = [
        alarm["Properties"]
        for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if any(
            logical_id_of(d.get("Value")) == dlq_id
            for m in alarm["Properties"].get("Metrics", [])
            for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
        )
    ]
    assert len(alarmed) == 1
    assert alarmed[0]["Threshold"] == 1
