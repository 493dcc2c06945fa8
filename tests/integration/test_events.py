"""The event log (DESIGN §1): every routed signal, group transitions and risk/operator actions, written with
the change they record, with deterministic ids so a replay writes nothing twice."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient

from engine.app.context import Stores
from engine.domain.events import KIND_GROUP, KIND_OPERATOR, KIND_RISK, KIND_SIGNAL, Event
from engine.domain.models import CloseReason, GroupStatus
from engine.store import RiskActionRecord, StaleWrite
from tests.support.webhook import WebhookClient, alert, exit_alert, minute_times

_real_api_call = BaseClient._make_api_call


@contextmanager
def counted_calls() -> Iterator[Counter[str]]:
    """Every AWS call made inside the block, by operation."""
    calls: Counter[str] = Counter()

    def api_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls[operation] += 1
        return _real_api_call(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", api_call):
        yield calls


def _all_events(st: Stores) -> list[Event]:
    return st.events.list(since=datetime.now(UTC) - timedelta(days=1), limit=1000)


def test_an_opened_signal_writes_its_event_with_the_group_in_at_most_six_calls(
    client: WebhookClient, st: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a warm webhook (its configuration cached by a first signal on another market, as deployed)
    monkeypatch.setenv("CONFIG_MAX_AGE_SECONDS", "300")
    assert client.post(alert(symbol="ETHUSDT", entry_price="3000"))[1]["outcome"] == "opened"
    # When a new signal opens a group
    with counted_calls() as calls:
        status, body = client.post(alert())
    # Then it made at most 6 AWS calls (the event rode in the opening transaction)
    assert (status, body["outcome"]) == (202, "opened")
    assert sum(calls.values()) <= 6, dict(calls)
    assert "PutItem" not in calls or calls["PutItem"] <= 1  # the idempotency record only
    # And the event log holds the signal's outcome and the group's "opened" event
    events = st.events.list(group_id=body["group_id"])
    kinds = sorted((event.kind, event.name) for event in events)
    assert kinds == [(KIND_GROUP, "opened"), (KIND_SIGNAL, "opened")]
    signal = next(event for event in events if event.kind == KIND_SIGNAL)
    assert signal.reason == body["reason"]
    assert (signal.account, signal.symbol, signal.side) == ("binance", "BTC/USDT", "long")


def test_a_resend_and_a_replayed_record_write_nothing_twice(client: WebhookClient, st: Stores) -> None:
    # Given an opened signal
    body = alert()
    first = client.post(body)
    before = {event.id for event in _all_events(st)}
    # When the same alert is delivered again and its outcome recorded again
    assert client.post(body) == first
    st.signals.record(
        signal_id=next(e.data["signal_id"] for e in _all_events(st) if e.kind == KIND_SIGNAL),
        received_at=datetime.now(UTC),
        intent="entry",
        outcome="rejected",
        reason="a replay must not overwrite",
    )
    # Then the log is unchanged, and the first outcome stands
    after = _all_events(st)
    assert {event.id for event in after} == before
    assert [event.name for event in after if event.kind == KIND_SIGNAL] == ["opened"]


def test_rule_refusals_and_exits_are_recorded_with_their_reason(client: WebhookClient, st: Stores) -> None:
    # Given a group opened, then the same key's exit, then an exit with nothing open
    times = minute_times(3)
    opened = client.post(alert(timestamp=times[0]))[1]
    exited = client.post(exit_alert(timestamp=times[1]))[1]
    ignored = client.post(exit_alert(symbol="ETHUSDT", timestamp=times[2]))[1]
    # Then each has its signal event with the outcome and reason of the answer
    signals = {(e.name, e.reason) for e in _all_events(st) if e.kind == KIND_SIGNAL}
    assert {(opened["outcome"], opened["reason"]), (exited["outcome"], exited["reason"])} <= signals
    assert (ignored["outcome"], ignored["reason"]) in signals
    # And the group's move to closing is a group event of the same transaction as the write
    transitions = [e for e in st.events.list(group_id=opened["group_id"]) if e.kind == KIND_GROUP]
    assert [e.name for e in sorted(transitions, key=lambda e: e.id)] == ["opened", "closing"]


def test_a_group_transition_is_recorded_once_with_its_figures(client: WebhookClient, st: Stores) -> None:
    # Given an open group
    group_id = client.post(alert())[1]["group_id"]
    group = st.groups.get(group_id)
    assert group is not None
    # When it is written closed, and the same stale write is replayed
    now = datetime.now(UTC)
    closed = dataclasses.replace(
        group, status=GroupStatus.CLOSED, closed_at=now, close_reason=CloseReason.EXIT, close_note="exit"
    )
    st.groups.save(closed, now=now)
    stale = dataclasses.replace(group, status=GroupStatus.CLOSED, closed_at=now)
    with contextlib.suppress(StaleWrite):  # the version check refuses the replay
        st.groups.save(stale, now=now)
    # Then one "closed" event with the close reason and the version it produced
    closes = [e for e in st.events.list(group_id=group_id) if e.name == "closed"]
    assert len(closes) == 1
    (event,) = closes
    assert event.id == f"group#{group_id}#v{closed.version}"
    assert event.data["close_reason"] == "exit" and event.data["previous"] == "live"
    assert event.reason == "exit"


def test_risk_and_operator_actions_are_events(client: WebhookClient, st: Stores) -> None:
    now = datetime.now(UTC)
    st.risk_actions.record(
        RiskActionRecord(id="r1", at=now, action="risk_offset", reason="worst loser", group_id="g1")
    )
    st.risk_actions.record(
        RiskActionRecord(id="o1", at=now, action="block", reason="by operator", details={"by": "operator"})
    )
    st.risk_actions.record(  # a replay of the same action
        RiskActionRecord(id="r1", at=now, action="risk_offset", reason="worst loser", group_id="g1")
    )
    events = _all_events(st)
    assert sorted((e.kind, e.name) for e in events) == [(KIND_OPERATOR, "block"), (KIND_RISK, "risk_offset")]


def test_events_are_listed_newest_first_by_time_and_limit(st: Stores) -> None:
    base = datetime.now(UTC) - timedelta(days=2)
    for index in range(5):
        at = base + timedelta(hours=12 * index)
        assert st.events.record(Event(id=f"e{index}", at=at, kind="config", name="config_invalid"))
    assert not st.events.record(Event(id="e0", at=base, kind="config", name="config_invalid"))
    listed = st.events.list(since=base + timedelta(hours=1), limit=3)
    assert [event.id for event in listed] == ["e4", "e3", "e2"]
    assert [event.id for event in st.events.list(since=base, kind="config", limit=10)][-1] == "e0"
