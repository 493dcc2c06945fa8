"""Dashboard widgets and alarms over the engine's custom metrics, streams and failure queues.

Custom metrics are read by `service` only (SEARCH on the dashboard, Metrics Insights in alarms), so a
metric carrying extra dimensions (State, Parameter) is still found.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import flatten, logical_id_of

CUSTOM_METRICS = (
    "PoolOpen", "PoolMax", "QueueDepth", "OpenGroups", "RealizedPnlUsd", "UnrealizedPnlUsd", "EquityUsd",
    "OrdersByState", "ConfigInvalid", "UnknownOrders",
)  # fmt: skip


NAMESPACE = '"ExecutionEngine"'
THIS_STAGE = "service = 'execution-engine-dev'"


@pytest.fixture(scope="module")
def dashboard(synthesized: Any) -> dict[str, Any]:
    (value,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    assert value["Properties"]["DashboardName"] == "execution-engine-dev"
    # The body is a Fn::Join of JSON text and references; a reference becomes the string "<id>".
    body = value["Properties"]["DashboardBody"]["Fn::Join"][1]
    return json.loads("".join(part if isinstance(part, str) else flatten(part) for part in body))


def _rows(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [row for widget in dashboard["widgets"] for row in widget["properties"].get("metrics", [])]


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [row[0]["expression"] for row in _rows(dashboard) if isinstance(row[0], dict)]


def _titles(dashboard: dict[str, Any]) -> set[str]:
    return {widget["properties"]["title"] for widget in dashboard["widgets"]}


@pytest.mark.parametrize("metric", CUSTOM_METRICS)
def test_dashboard_searches_each_custom_metric_of_this_stage(metric: str, dashboard: dict[str, Any]) -> None:
    searches = [e for e in _expressions(dashboard) if f'MetricName="{metric}"' in e]
    assert searches, metric
    for expression in searches:
        assert expression.startswith('SEARCH(\'Namespace="ExecutionEngine" ')
        assert 'service="execution-engine-dev"' in expression


def test_orders_by_state_draws_one_line_per_state(dashboard: dict[str, Any]) -> None:
    (expression,) = [
        row[0] for row in _rows(dashboard)
        if isinstance(row[0], dict) and 'MetricName="OrdersByState"' in row[0]["expression"]
    ]  # fmt: skip
    assert expression["label"] == "${PROP('Dim.State')}"


def test_dashboard_shows_pool_pnl_orders_errors_iterator_age_and_dlq_depth(dashboard: dict[str, Any]) -> None:
    names = {(row[0], row[1]) for row in _rows(dashboard) if isinstance(row[0], str)}
    assert ("AWS/Lambda", "Errors") in names
    assert ("AWS/Lambda", "IteratorAge") in names
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in names
    assert {
        "Pool usage", "Queue depth", "Open groups", "PnL (USD)", "Equity (USD)", "Orders by state",
        "Function errors", "Stream iterator age (ms)", "Stream failure queues (DLQ depth)",
    } <= _titles(dashboard)  # fmt: skip


@pytest.fixture(scope="module")
def alarms(synthesized: Any) -> dict[str, dict[str, Any]]:
    return {
        value["Properties"]["AlarmName"]: value["Properties"]
        for value in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_alarm_set(alarms: dict[str, Any]) -> None:
    assert sorted(alarms) == sorted(
        f"execution-engine-dev-{name}"
        for name in [
            "order-executor-stream-failures",
            "position-update-stream-failures",
            "slot-release-stream-failures",
            "notifier-stream-failures",
            "order-executor-iterator-age",
            "position-update-iterator-age",
            "slot-release-iterator-age",
            "notifier-iterator-age",
            "sync-loop-dead-letters",
            "unknown-orders",
            "config-invalid",
        ]
    )


def _alarm_topic(synthesized: Any) -> str:
    """Logical id of the alarm topic (the notifications topic is the trader's, not the operator's)."""
    (topic,) = [
        logical_id
        for logical_id, value in synthesized.of_type("AWS::SNS::Topic").items()
        if value["Properties"]["TopicName"].endswith("-alarms")
    ]
    return topic


def _notifies(alarm: dict[str, Any], synthesized: Any) -> bool:
    topic = _alarm_topic(synthesized)
    return alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}]


@pytest.mark.parametrize(
    ("suffix", "namespace", "metric", "threshold", "periods"),
    [
        ("order-executor-stream-failures", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 1, 1),
        ("position-update-stream-failures", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 1, 1),
        ("slot-release-stream-failures", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 1, 1),
        ("order-executor-iterator-age", "AWS/Lambda", "IteratorAge", 60000, 5),
        ("position-update-iterator-age", "AWS/Lambda", "IteratorAge", 60000, 5),
        ("slot-release-iterator-age", "AWS/Lambda", "IteratorAge", 60000, 5),
    ],
)
def test_aws_metric_alarms(
    suffix: str, namespace: str, metric: str, threshold: int, periods: int, alarms: dict[str, Any],
    synthesized: Any,
) -> None:  # fmt: skip
    alarm = alarms[f"execution-engine-dev-{suffix}"]
    (query,) = alarm["Metrics"]
    watched = query["MetricStat"]["Metric"]
    assert (watched["Namespace"], watched["MetricName"]) == (namespace, metric)
    assert query["MetricStat"]["Stat"] == "Maximum"
    assert alarm["Threshold"] == threshold
    assert alarm["EvaluationPeriods"] == periods
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert _notifies(alarm, synthesized)


@pytest.mark.parametrize(
    ("suffix", "query"),
    [
        ("unknown-orders", f"SELECT MAX(UnknownOrders) FROM {NAMESPACE} WHERE {THIS_STAGE}"),
        ("config-invalid", f"SELECT SUM(ConfigInvalid) FROM {NAMESPACE} WHERE {THIS_STAGE}"),
    ],
)  # fmt: skip
def test_custom_metric_alarms_query_this_stage_across_dimension_sets(
    suffix: str, query: str, alarms: dict[str, Any], synthesized: Any
) -> None:
    alarm = alarms[f"execution-engine-dev-{suffix}"]
    (metric,) = alarm["Metrics"]
    assert metric["Expression"] == query
    assert metric["Period"] == 300
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert _notifies(alarm, synthesized)


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_alarms_can_use(synthesized: Any) -> None:
    topic = synthesized.resources[_alarm_topic(synthesized)]
    key_id = logical_id_of(topic["Properties"]["KmsMasterKeyId"])
    key = synthesized.resources[key_id or ""]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert statement["Effect"] == "Allow"
    assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
