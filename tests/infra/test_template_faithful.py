"""Given the synthesized template, when every function's handler runs against moto with ONLY the
environment the template gives it (inside Lambda: ``AWS_LAMBDA_FUNCTION_NAME`` set, so an unset table,
prefix or secret name raises instead of falling back to a local name), then each one finds every
resource its code path uses.

One scenario drives all eight functions the way AWS would (support: ``template_run.py``):
webhook (API Gateway proxy event: an alert opens a group) -> the orders and groups streams' real moto
records to order_executor, position_update and slot_release, the events stream's to the notifier (SNS
on the template's topic) -> order_sync and risk_engine (scheduled
events) -> operator_api (API Gateway events: reads, then closing the group) -> the streams again.
position_update refreshes an open group with a stored price, the path that reaches
``QueueStore.find_by_key`` (issue 19: it once lacked the pool and queue tables).
Everything runs in one moto account whose tables, documents and secrets come from the template.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aws_cdk import Token
from moto import mock_aws

from engine.app.context import stores
from engine.app.gateways import clear_gateway_cache
from engine.app.intake import reset_persistence_layer
from engine.config import clear_cache
from engine.exchange.prices import CcxtPriceSource
from engine.local.events import api_gateway_event, scheduled_event
from engine.local.functions import FunctionRegistry
from engine.store import QueueStore, reset_connections
from infra.functions import FUNCTION_SPECS, FUNCTIONS_ROOT
from tests.infra.template_run import (
    WEBHOOK_SECRET_VALUE,
    create_resources,
    function_environments,
    lambda_environment,
)
from tests.support.streams import StreamTap
from tests.support.webhook import TRADINGVIEW_IP, alert

FUNCTIONS = [spec.name for spec in FUNCTION_SPECS]
PRICE = Decimal("50000")
STREAM_CONSUMERS = {
    "orders": ("order_executor", "position_update"),
    "groups": ("slot_release",),
    "events": ("notifier",),
}


@dataclass
class Invocation:
    """One handler call: what it answered and what went wrong (exception, failed records, 5xx, failures)."""

    event_kind: str
    result: Any = None
    problems: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    """Every invocation per function, and which functions reached ``QueueStore.find_by_key``."""

    template_functions: set[str]
    invocations: dict[str, list[Invocation]] = field(default_factory=dict)
    find_by_key_callers: set[str] = field(default_factory=set)
    group_id: str | None = None
    final_group: dict[str, Any] = field(default_factory=dict)


class _FakeTicker:
    """Public ticker client for order_sync's PAPER_PRICE_SOURCE=tickers (no network in tests)."""

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "last": str(PRICE)}


def _region(synthesized: Any) -> str:
    region = synthesized.stack.region
    return "us-east-1" if Token.is_unresolved(region) else str(region)


class _Runner:
    """Invokes handlers as fresh containers, each under its own template environment."""

    def __init__(self, scenario: Scenario, environments: dict[str, dict[str, str]], region: str) -> None:
        self.scenario = scenario
        self.environments = environments
        self.region = region
        self.taps: dict[tuple[str, str], StreamTap] = {}
        # The notifier has no EVENTS_TABLE (it reads the stream only): any function that writes it names it.
        self.table_names = {
            short: next(
                env[f"{short.upper()}_TABLE"]
                for env in environments.values()
                if f"{short.upper()}_TABLE" in env
            )
            for short in STREAM_CONSUMERS
        }

    def _fresh_process(self) -> None:
        clear_cache()
        clear_gateway_cache()
        reset_persistence_layer()
        reset_connections()

    def invoke(self, name: str, event: dict[str, Any], kind: str) -> Invocation:
        invocation = Invocation(kind)
        self.scenario.invocations.setdefault(name, []).append(invocation)
        variables = self.environments.get(name)
        if variables is None:
            invocation.problems.append("not in the template")
            return invocation
        function_name = f"{variables['APP_NAME']}-{variables['STAGE']}-{name.replace('_', '-')}"
        with lambda_environment(function_name, variables, self.region):
            self._fresh_process()
            registry = FunctionRegistry(FUNCTIONS_ROOT, self.region)  # a cold container
            try:
                invocation.result = registry.invoke(name, event)
            except Exception as exc:
                invocation.problems.append(f"raised {type(exc).__name__}: {exc}")
                return invocation
            processor = getattr(registry.module(name), "processor", None)
            for info in getattr(processor, "exceptions", []) or []:
                invocation.problems.append(f"record failed: {info[0].__name__}: {info[1]}")
        invocation.problems.extend(_answer_problems(invocation.result))
        return invocation

    def api(self, name: str, method: str, path: str, body: Any = None, resource: str = "/{proxy+}") -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        event = api_gateway_event(
            method=method,
            path=path,
            query="",
            headers=[("Content-Type", "application/json"), ("User-Agent", "test")],
            body=raw,
            resource=resource,
            source_ip=TRADINGVIEW_IP,
        )
        invocation = self.invoke(name, event, f"{method} {path}")
        return json.loads(invocation.result["body"]) if invocation.result else None

    def scheduled(self, name: str) -> None:
        self.invoke(name, scheduled_event(f"schedule-{name}", self.region), "schedule")

    def drain(self, rounds: int = 6) -> None:
        """Deliver new stream records to their consumers until nothing new is written."""
        for _ in range(rounds):
            delivered = False
            for short, consumers in STREAM_CONSUMERS.items():
                for consumer in consumers:
                    with lambda_environment("test-harness", {}, self.region):
                        tap = self.taps.get((short, consumer))
                        if tap is None:
                            tap = StreamTap(self.table_names[short], region=self.region)
                            self.taps[(short, consumer)] = tap
                        events = tap.read_events(batch_size=10)
                    for event in events:
                        delivered = True
                        self.invoke(consumer, event, f"{short} stream")
            if not delivered:
                return


def _answer_problems(result: Any) -> list[str]:
    if not isinstance(result, dict):
        return []
    problems = [f"record {item}" for item in result.get("batchItemFailures", [])]
    if int(result.get("statusCode", 200)) >= 500:
        problems.append(f"HTTP {result['statusCode']}: {result.get('body')}")
    problems.extend(f"{key}: {value}" for key, value in (result.get("failures") or {}).items())
    return problems


def _spy_find_by_key(scenario: Scenario) -> Callable[..., Any]:
    original = QueueStore.find_by_key

    def find_by_key(self: QueueStore, key: str) -> Any:
        import os

        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        stage_prefix = f"{os.environ.get('APP_NAME')}-{os.environ.get('STAGE')}-"
        scenario.find_by_key_callers.add(function.removeprefix(stage_prefix).replace("-", "_"))
        return original(self, key)

    return find_by_key


def _play(runner: _Runner, region: str) -> None:
    environments = runner.environments
    # Given a price stored for the market (what order_sync keeps up to date)
    with lambda_environment("test-harness", environments["order_sync"], region):
        reset_connections()
        stores().prices.set("binance", "BTC/USDT", PRICE, datetime.now(UTC))
    # When TradingView sends an alert (signed with the secret stored under the template's name)
    body = runner.api("webhook", "POST", "/webhook", alert(secret=WEBHOOK_SECRET_VALUE), resource="/webhook")
    runner.scenario.group_id = (body or {}).get("group_id")
    # And the streams deliver its orders and the group's changes, and the schedules fire
    runner.drain()
    runner.scheduled("order_sync")
    runner.scheduled("risk_engine")
    runner.drain()
    # And the operator reads everything and closes the group
    group_id = runner.scenario.group_id or "none"
    for path in ("/groups", f"/groups/{group_id}", "/queue", "/pool", "/risk", "/equity"):
        runner.api("operator_api", "GET", path)
    runner.api("operator_api", "POST", f"/groups/{group_id}/close")
    runner.drain()
    runner.scenario.final_group = runner.api("operator_api", "GET", f"/groups/{group_id}") or {}


@pytest.fixture(scope="module")
def scenario(synthesized: Any, template_json: dict[str, Any]) -> Iterator[Scenario]:
    region = _region(synthesized)
    environments = function_environments(template_json, region)
    played = Scenario(template_functions=set(environments))
    runner = _Runner(played, environments, region)
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setattr(QueueStore, "find_by_key", _spy_find_by_key(played))
        patch.setattr(CcxtPriceSource, "_client", lambda self, exchange_id: _FakeTicker())
        with lambda_environment("test-harness", {}, region):
            create_resources(template_json, region)
        try:
            _play(runner, region)
        finally:
            clear_cache()
            clear_gateway_cache()
            reset_persistence_layer()
            reset_connections()
    yield played


def test_the_template_has_exactly_the_project_functions(scenario: Scenario) -> None:
    assert scenario.template_functions == set(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_function_runs_on_its_template_environment(scenario: Scenario, function: str) -> None:
    # Then it was invoked, and no invocation raised, failed a record, answered 5xx or reported a failure
    invocations = scenario.invocations.get(function, [])
    assert invocations, f"{function} was never invoked by the scenario"
    problems = [f"{call.event_kind}: {problem}" for call in invocations for problem in call.problems]
    assert problems == [], f"{function} on its template environment:\n" + "\n".join(problems)


def test_the_webhook_opened_a_group_and_the_operator_closed_it(scenario: Scenario) -> None:
    # Then the scenario went through the paths it is meant to cover
    assert scenario.group_id is not None
    webhook = scenario.invocations["webhook"][0].result
    assert webhook["statusCode"] == 202 and json.loads(webhook["body"])["outcome"] == "opened"
    kinds = {call.event_kind for call in scenario.invocations["slot_release"]}
    assert kinds == {"groups stream"}
    # And the close went through order_executor, position_update and slot_release to the end
    assert scenario.final_group.get("group", {}).get("status") == "closed", scenario.final_group


def test_position_update_reached_the_queue_lookup(scenario: Scenario) -> None:
    # Then refreshing an open group with a stored price looked up its key's queue entry
    assert "position_update" in scenario.find_by_key_callers
