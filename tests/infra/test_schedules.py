"""EventBridge: order_sync and risk_engine every minute; a failed tick is not retried."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_scheduled_functions_time_out_before_the_next_tick(synthesized: Any) -> None:
    """The handlers claim a run by start time only: a run must end before the next one starts."""
    timeouts = {
        value["Properties"]["FunctionName"]: value["Properties"]["Timeout"]
        for value in synthesized.of_type("AWS::Lambda::Function").values()
        if value["Properties"].get("FunctionName", "").endswith(("-order-sync", "-risk-engine"))
    }
    assert len(timeouts) == 2
    assert all(timeout < 60 for timeout in timeouts.values()), timeouts


@pytest.mark.parametrize("seconds", [None, 60, 120])
def test_a_timeout_at_or_over_the_interval_fails_synth(seconds: int | None) -> None:
    from aws_cdk import Duration

    from infra.schedules import OverlappingRuns, check_timeout_below_interval

    with pytest.raises(OverlappingRuns, match="order_sync runs every 60 s"):
        check_timeout_below_interval("order_sync", None if seconds is None else Duration.seconds(seconds))
    check_timeout_below_interval("order_sync", Duration.seconds(59))
