"""Issue 12 through the webhook Lambda (moto): quotes and numbers refused before anything is written,
pyramids under the daily loss breaker, a full pool without bypass, the pyramid cap's timer reset and
out-of-order candles (DESIGN §3.1, §3.2, §3.5, §3.6, §3.7, §3.8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation, Overflow

import pytest

from engine.api.webhook import reply_for_error
from engine.app.context import Stores
from engine.domain.models import GroupFigures, GroupStatus, utcnow
from tests.support.builders import make_group
from tests.support.scenario import set_document
from tests.support.webhook import (
    WebhookClient,
    alert,
    minute_times,
    same_candle_times,
    table_counts,
)

D = Decimal


def _audit(st: Stores) -> list[tuple[str, str | None]]:
    return [(record.outcome, record.reason) for record in st.signals.list_recent()]


def _trip_the_breaker(st: Stores) -> None:
    """A group closed today with a realised loss of 600 USD (the limit is 500)."""
    today = datetime.now(UTC).date().isoformat()
    closed = make_group(
        status=GroupStatus.CLOSED,
        figures=GroupFigures(realized_pnl_usd=D("-600"), realized_by_day={today: D("-600")}),
    )
    st.groups.save(closed, now=utcnow())


# --------------------------------------------------------------------------- refusals (findings 3, 9)


def test_a_non_usd_quote_is_refused_before_the_market_lookup(client: WebhookClient, st: Stores) -> None:
    # Given ETH/BTC is a market the paper exchange knows (so only the quote can refuse it)
    set_document(
        "engine",
        paper={"markets": {"ETH/BTC": {"tick": "0.00001", "step": "0.0001", "min_notional": "0.0001"}}},
    )
    before = table_counts()
    # When an ETHBTC alert arrives
    status, body = client.post(alert(symbol="ETHBTC", entry_price="0.05"))
    # Then it is 400 unsupported_quote naming the quote and the USD quotes, and nothing is written
    assert (status, body["outcome"], body["error"]) == (400, "rejected", "unsupported_quote")
    assert "BTC" in body["reason"] and "USDT" in body["reason"]
    assert table_counts() == before


def test_an_unknown_non_usd_market_is_still_a_quote_refusal(client: WebhookClient) -> None:
    # Given no BTC-quoted market at all, when an ETHBTC alert arrives
    status, body = client.post(alert(symbol="BINANCE:ETHBTC", entry_price="0.05"))
    # Then the quote is what is refused (checked first), not the market
    assert (status, body["error"]) == (400, "unsupported_quote")


@pytest.mark.parametrize(
    ("field", "value"), [("entry_price", "1e26"), ("entry_price", 1e26), ("order_size", "1e20")]
)
def test_a_huge_number_is_400_out_of_range_and_writes_nothing(
    client: WebhookClient, field: str, value: object
) -> None:
    # Given an empty engine
    before = table_counts()
    body = alert()
    body["tv"][field] = value
    # When an alert carries a number Decimal cannot hold at the market's precision
    status, answer = client.post(body)
    # Then it is 400 out_of_range naming the field (not a 500 that TradingView would resend)
    assert (status, answer["error"]) == (400, "out_of_range")
    assert f"tv.{field}" in answer["reason"]
    assert table_counts() == before


def test_a_base_size_worth_more_than_decimal_holds_is_out_of_range(client: WebhookClient) -> None:
    # Given a size in base units whose notional (size x price) is beyond any real order: 1e28 USD
    before = table_counts()
    body = alert(entry_price="99999999999999", order_size="99999999999999")
    body["execution_intent"]["position_size_type"] = "base"
    # When it arrives
    status, answer = client.post(body)
    # Then it is 400 out_of_range (it used to overflow the capital reason's quantize: a 500)
    assert (status, answer["error"]) == (400, "out_of_range")
    assert "order_size" in answer["reason"]
    assert table_counts() == before


# --------------------------------------------------------------------------- breaker (finding 5)


def test_the_daily_loss_breaker_rejects_a_pyramid_and_records_why(client: WebhookClient, st: Stores) -> None:
    # Given an open group, and then a day whose realised loss trips the breaker
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", timestamp=t0))
    _trip_the_breaker(st)
    # When the next candle's entry arrives for the same key
    status, body = client.post(alert(timeframe="1", timestamp=t1))
    # Then the pyramid is rejected naming the breaker, and that is recorded in the signals audit
    assert (status, body["outcome"], body["group_id"]) == (202, "rejected", opened["group_id"])
    assert body["reason"].startswith("daily loss breaker")
    assert ("rejected", body["reason"]) in _audit(st)
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.pyramid_count == 1
    assert len(st.orders.list_for_group(group.id)) == 5


def test_the_breaker_rejects_a_pyramid_rather_than_queueing_it_for_a_slot(
    client: WebhookClient, st: Stores
) -> None:
    # Given a full pool without pyramid bypass, an open group and a tripped breaker
    set_document("pool", max_open_groups=1, pyramids_bypass=False)
    t0, t1 = minute_times(2)
    client.post(alert(timeframe="1", timestamp=t0))
    _trip_the_breaker(st)
    # When the next candle's entry arrives
    _, body = client.post(alert(timeframe="1", timestamp=t1))
    # Then it is rejected (a queued add-on would be placed after midnight at a stale price)
    assert (body["outcome"], body["reason"][:18]) == ("rejected", "daily loss breaker")
    assert st.queue.list_all() == []


# --------------------------------------------------------------------------- full pool (finding 7)


def test_a_queued_continuation_is_replaced_by_a_later_candle_and_ignores_the_same_one(
    client: WebhookClient, st: Stores
) -> None:
    # Given a full pool without pyramid bypass and a pyramid continuation queued for the group's key
    set_document("pool", max_open_groups=1, pyramids_bypass=False)
    t0, t1, t2 = minute_times(3)
    client.post(alert(timeframe="1", timestamp=t0))
    _, queued = client.post(alert(timeframe="1", timestamp=t1, entry_price="49000"))
    assert queued["outcome"] == "queued"
    # When a second alert of the same candle arrives, then it is ignored as a duplicate (not a 503)
    status, same = client.post(alert(timeframe="1", timestamp=t1 + timedelta(seconds=1), entry_price="48900"))
    assert (status, same["outcome"], same["queue_id"]) == (202, "ignored", queued["queue_id"])
    assert "duplicate" in same["reason"]
    # When the next candle's alert arrives, then it replaces the queued continuation
    status, later = client.post(alert(timeframe="1", timestamp=t2, entry_price="48000"))
    assert (status, later["outcome"], later["queue_id"]) == (202, "replaced", queued["queue_id"])
    [entry] = st.queue.list_all()
    assert (entry.entry_price, entry.replacement_count, entry.pyramid_continuation) == (D("48000"), 1, True)


# --------------------------------------------------------------------------- timer reset (finding 11)


def _capped_group_with_a_running_timer(client: WebhookClient, st: Stores, started: datetime) -> str:
    """A group at max_pyramids 2 whose risk timer started at ``started``; returns its id."""
    set_document("dca/default", max_pyramids=2)
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", timestamp=t0))
    client.post(alert(timeframe="1", timestamp=t1))
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.pyramid_count == 2
    group.risk_timer_started_at = started
    st.groups.save(group, now=utcnow())
    return group.id


def test_a_signal_at_the_pyramid_cap_resets_the_risk_timer_when_configured(
    client: WebhookClient, st: Stores
) -> None:
    # Given risk.reset_timer_on_replacement on and a capped group whose risk timer runs
    set_document("risk", reset_timer_on_replacement=True)
    group_id = _capped_group_with_a_running_timer(client, st, utcnow() - timedelta(minutes=10))
    # When another candle's entry arrives
    _, body = client.post(alert(timeframe="1", timestamp=datetime.now(UTC)))
    # Then it is ignored (cap) and the timer is reset, which the reason says
    assert body["outcome"] == "ignored"
    assert "max_pyramids" in body["reason"] and "risk timer reset" in body["reason"]
    group = st.groups.get(group_id)
    assert group is not None and group.risk_timer_started_at is None and group.pyramid_count == 2


def test_a_signal_at_the_pyramid_cap_keeps_the_timer_by_default(client: WebhookClient, st: Stores) -> None:
    # Given the default risk document (reset_timer_on_replacement false) and a running timer
    started = (utcnow() - timedelta(minutes=10)).replace(microsecond=0)
    group_id = _capped_group_with_a_running_timer(client, st, started)
    # When another candle's entry arrives, then it is ignored and the timer keeps running
    _, body = client.post(alert(timeframe="1", timestamp=datetime.now(UTC)))
    assert body["outcome"] == "ignored" and "timer" not in body["reason"]
    group = st.groups.get(group_id)
    assert group is not None and group.risk_timer_started_at == started


# --------------------------------------------------------------------------- candle order (finding 12)


def test_a_pyramid_signal_for_an_older_candle_is_ignored_as_a_duplicate(
    client: WebhookClient, st: Stores
) -> None:
    # Given a group whose newest pyramid is from candle t2 (after t0)
    t0, t1, t2 = minute_times(3)
    _, opened = client.post(alert(timeframe="1", timestamp=t0))
    client.post(alert(timeframe="1", timestamp=t2))
    # When an alert for the older candle t1 arrives late
    status, body = client.post(alert(timeframe="1", timestamp=t1, entry_price="47000"))
    # Then it is ignored as a duplicate naming both candles, and no pyramid is added
    assert (status, body["outcome"]) == (202, "ignored")
    assert body["reason"].startswith("duplicate") and "older" in body["reason"]
    group = st.groups.get(opened["group_id"])
    assert group is not None and [p.entry_price for p in group.pyramids] == [D("50000"), D("50000")]


def test_the_same_candle_is_still_a_duplicate(client: WebhookClient, st: Stores) -> None:
    # Given an open group, when a second alert of its candle arrives, then it is ignored as before
    first, second = same_candle_times(2, 60)
    client.post(alert(timestamp=first, trade_id="a"))
    _, body = client.post(alert(timestamp=second, trade_id="b"))
    assert (body["outcome"], body["reason"][:9]) == ("ignored", "duplicate")


@pytest.mark.parametrize("error", [InvalidOperation(), Overflow()], ids=["invalid_operation", "overflow"])
def test_any_decimal_failure_on_the_path_is_400_out_of_range(error: Exception) -> None:
    # Given Decimal arithmetic failing anywhere while an alert is handled (a safety net: the checks above
    # should refuse such numbers first), when the HTTP edge maps the failure
    reply = reply_for_error(error)
    # Then it is a 400 out_of_range refusal, never a 5xx that TradingView would resend for ever
    assert (reply.status, reply.body["outcome"], reply.body["error"]) == (400, "rejected", "out_of_range")
