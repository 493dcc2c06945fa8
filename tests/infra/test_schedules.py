"""EventBridge: order_sync and risk_engine every minute; a failed tick is not retried."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import logical_id_of


def _function_names(synthesized: Any) -> dict[str, str]:
    return {
        logical_id: value["Properties"]["FunctionName"]
        for logical_id, value in synthesized.of_type("AWS::Lambda::Function").items()
        if "FunctionName" in value["Properties"]
    }


def test_every_minute_rules_target_order_sync_and_risk_engine(synthesized: Any) -> None:
    names = _function_names(synthesized)
    targets: dict[str, str] = {}
    for rule in synthesized.of_type("AWS::Events::Rule").values():
        props = rule["Properties"]
        assert props["ScheduleExpression"] == "rate(1 minute)"
        assert props["State"] == "ENABLED"
        (target,) = props["Targets"]
        targets[names[logical_id_of(target["Arn"]) or ""]] = props["Name"]
    assert sorted(targets) == ["execution-engine-dev-order-sync", "execution-engine-dev-risk-engine"]


def test_scheduled_functions_do_not_retry_a_failed_tick(synthesized: Any) -> None:
    names = _function_names(synthesized)
    configs = {
        names[logical_id_of(value["Properties"]["FunctionName"]) or ""]: value["Properties"]
        for value in synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
    }
    assert sorted(configs) == ["execution-engine-dev-order-sync", "execution-engine-dev-risk-engine"]
    for config in configs.values():
        assert config["MaximumRetryAttempts"] == 0
        assert config["MaximumEventAgeInSeconds"] == 60
