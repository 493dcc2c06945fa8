"""Given a TradingView alert through API Gateway into the webhook Lambda, when it is routed,
then groups, pyramids, the queue and exits change as DESIGN §3.1/§3.2/§3.6/§3.7 say (moto)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine.app.context import Stores
from engine.domain.models import (
    CloseReason,
    GroupFigures,
    GroupStatus,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
    utcnow,
)
from engine.exchange.client_ids import client_order_id
from tests.support.builders import make_group
from tests.support.scenario import set_document
from tests.support.webhook import (
    WebhookClient,
    alert,
    exit_alert,
    minute_times,
    same_candle_times,
)

D = Decimal


def _signals(st: Stores) -> list[tuple[str, str | None]]:
    return [(record.outcome, record.reason) for record in st.signals.list_recent()]


# --------------------------------------------------------------------------- opening


def test_entry_opens_a_group_with_the_default_grid(client: WebhookClient, st: Stores) -> None:
    # Given the default config, when a buy alert for BINANCE:BTCUSDT 60 at 50000 arrives
    status, body = client.post(alert(entry_price="50000"))

    # Then a live group with one pyramid and five pending limit legs exists, at the exact grid prices
    assert status == 202
    assert body["outcome"] == "opened"
    group = st.groups.get(body["group_id"])
    assert group is not None
    assert (group.exchange, group.symbol, group.timeframe, group.side) == (
        "binance",
        "BTC/USDT",
        60,
        Side.LONG,
    )
    assert group.status == GroupStatus.LIVE
    assert [(p.index, p.entry_price, p.capital_usd, p.leg_count) for p in group.pyramids] == [
        (1, D("50000"), D("200"), 5)
    ]
    assert group.config_versions["dca/default"] == 1
    assert {"engine", "pool", "queue", "risk"} <= set(group.config_versions)
    orders = sorted(st.orders.list_for_group(group.id), key=lambda o: o.leg or 0)
    assert [(o.price, o.amount, o.tp_percent) for o in orders] == [
        (D("50000.00"), D("0.00080"), D("1")),
        (D("49750.00"), D("0.00080"), D("0.5")),
        (D("49500.00"), D("0.00080"), D("0.5")),
        (D("49000.00"), D("0.00081"), D("0.5")),
        (D("48000.00"), D("0.00083"), D("0.5")),
    ]
    for number, order in enumerate(orders, start=1):
        assert order.id == f"{group.id}-p1-l{number}"
        assert order.client_order_id == client_order_id(order.id)
        assert (order.status, order.purpose, order.side, order.type) == (
            OrderStatus.PENDING,
            OrderPurpose.ENTRY,
            OrderSide.BUY,
            OrderType.LIMIT,
        )
        assert order.trigger_price is None
    # And the pool holds its slot, and the audit records the outcome
    assert st.pool.count() == 1
    assert _signals(st) == [("opened", body["reason"])]


def test_entry_without_price_uses_the_last_known_price(client: WebhookClient, st: Stores) -> None:
    # Given a stored price and an alert without entry_price
    st.prices.set("binance", "BTC/USDT", D("40000"), utcnow())
    status, body = client.post(alert(entry_price=None))
    # Then the group's pyramid is planned from the stored price
    assert (status, body["outcome"]) == (202, "opened")
    group = st.groups.get(body["group_id"])
    assert group is not None and group.pyramids[0].entry_price == D("40000")


def test_entry_without_any_price_is_rejected(client: WebhookClient, st: Stores) -> None:
    status, body = client.post(alert(entry_price=None))
    assert (status, body["outcome"]) == (202, "rejected")
    assert "no entry price" in body["reason"]
    assert st.groups.list_open() == []
    assert _signals(st) == [("rejected", body["reason"])]


# --------------------------------------------------------------------------- pyramids


def test_a_later_candle_adds_a_pyramid_with_its_own_grid(client: WebhookClient, st: Stores) -> None:
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", entry_price="50000", timestamp=t0))
    # When the next candle's alert arrives at a lower price
    status, body = client.post(alert(timeframe="1", entry_price="48000", timestamp=t1))
    # Then a second pyramid with its own legs from 48000 is added to the same group
    assert (status, body["outcome"], body["group_id"]) == (202, "pyramided", opened["group_id"])
    group = st.groups.get(opened["group_id"])
    assert group is not None
    assert [(p.index, p.entry_price) for p in group.pyramids] == [(1, D("50000")), (2, D("48000"))]
    second = sorted(
        (o for o in st.orders.list_for_group(group.id) if o.pyramid == 2), key=lambda o: o.leg or 0
    )
    assert [o.id for o in second] == [f"{group.id}-p2-l{n}" for n in range(1, 6)]
    assert second[0].price == D("48000.00")
    assert st.pool.count() == 1


def test_pyramids_stop_at_max_pyramids(client: WebhookClient, st: Stores) -> None:
    times = minute_times(6)
    answers = [client.post(alert(timeframe="1", timestamp=t))[1] for t in times]
    # Then five entries are taken (the first included) and the sixth is ignored naming the cap
    assert [a["outcome"] for a in answers] == ["opened"] + ["pyramided"] * 4 + ["ignored"]
    assert "max_pyramids" in answers[-1]["reason"] and "5/5" in answers[-1]["reason"]
    group = st.groups.get(answers[0]["group_id"])
    assert group is not None and group.pyramid_count == 5
    assert len(st.orders.list_for_group(group.id)) == 25


def test_one_pyramid_per_candle(client: WebhookClient, st: Stores) -> None:
    first, second = same_candle_times(2, 60)
    _, opened = client.post(alert(timestamp=first, trade_id="a"))
    # When a second entry for the same key arrives in the same 60-minute candle
    status, body = client.post(alert(timestamp=second, trade_id="b", entry_price="49000"))
    # Then it is ignored as a duplicate and nothing is added
    assert (status, body["outcome"]) == (202, "ignored")
    assert "duplicate" in body["reason"]
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.pyramid_count == 1
    assert len(st.orders.list_for_group(group.id)) == 5


def test_a_pyramid_moves_an_active_group_back_to_partially_filled(client: WebhookClient, st: Stores) -> None:
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", timestamp=t0))
    group = st.groups.get(opened["group_id"])
    assert group is not None
    group.status = GroupStatus.ACTIVE
    st.groups.save(group, now=utcnow())
    _, body = client.post(alert(timeframe="1", timestamp=t1))
    assert body["outcome"] == "pyramided"
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.status == GroupStatus.PARTIALLY_FILLED


def test_anything_for_a_closing_group_is_ignored(client: WebhookClient, st: Stores) -> None:
    t0, t1 = minute_times(2)
    client.post(alert(timeframe="1", timestamp=t0))
    client.post(exit_alert(timeframe="1", timestamp=t0))
    _, body = client.post(alert(timeframe="1", timestamp=t1))
    assert (body["outcome"], body["reason"]) == ("ignored", "group is closing")


def test_paused_engine_rejects_a_pyramid(client: WebhookClient, st: Stores) -> None:
    t0, t1 = minute_times(2)
    _, opened = client.post(alert(timeframe="1", timestamp=t0))
    set_document("engine", paused=True)
    _, body = client.post(alert(timeframe="1", timestamp=t1))
    assert (body["outcome"], body["reason"]) == ("rejected", "engine paused")
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.pyramid_count == 1


def test_pyramid_waits_in_the_queue_when_the_pool_is_full_and_not_bypassed(
    client: WebhookClient, st: Stores
) -> None:
    set_document("pool", max_open_groups=1, pyramids_bypass=False)
    t0, t1 = minute_times(2)
    client.post(alert(timeframe="1", timestamp=t0))
    _, body = client.post(alert(timeframe="1", timestamp=t1))
    assert (body["outcome"], body["reason"]) == ("queued", "pool full (1/1)")
    entry = st.queue.get(body["queue_id"])
    assert entry is not None and entry.pyramid_continuation is True


# --------------------------------------------------------------------------- queue


def test_pool_full_queues_the_entry(client: WebhookClient, st: Stores) -> None:
    set_document("pool", max_open_groups=1)
    client.post(alert(symbol="BTCUSDT"))
    # When another key's entry arrives with the pool at 1/1
    status, body = client.post(alert(symbol="ETHUSDT", entry_price="2500"))
    # Then it is queued with the reason naming the pool
    assert (status, body["outcome"], body["reason"]) == (202, "queued", "pool full (1/1)")
    entry = st.queue.get(body["queue_id"])
    assert entry is not None
    assert (entry.symbol, entry.entry_price, entry.replacement_count) == ("ETH/USDT", D("2500"), 0)
    assert entry.pyramid_continuation is False
    assert len(st.groups.list_open()) == 1
    assert st.pool.count() == 1


def test_a_later_candle_replaces_the_queued_entry(client: WebhookClient, st: Stores) -> None:
    set_document("pool", max_open_groups=1)
    client.post(alert(symbol="BTCUSDT"))
    t0, t1 = minute_times(2)
    _, queued = client.post(alert(symbol="ETHUSDT", timeframe="1", entry_price="2500", timestamp=t0))
    original = st.queue.get(queued["queue_id"])
    # When the same key signals again in a later candle
    status, body = client.post(alert(symbol="ETHUSDT", timeframe="1", entry_price="2400", timestamp=t1))
    # Then the queued entry is replaced: new price, count 1, original queued_at kept
    assert (status, body["outcome"], body["queue_id"]) == (202, "replaced", queued["queue_id"])
    entry = st.queue.get(queued["queue_id"])
    assert entry is not None and original is not None
    assert (entry.entry_price, entry.replacement_count) == (D("2400"), 1)
    assert entry.queued_at == original.queued_at
    assert entry.candle > original.candle
    assert len(st.queue.list_all()) == 1


def test_same_candle_for_a_queued_entry_is_a_duplicate(client: WebhookClient, st: Stores) -> None:
    set_document("pool", max_open_groups=1)
    client.post(alert(symbol="BTCUSDT"))
    first, second = same_candle_times(2, 60)
    _, queued = client.post(alert(symbol="ETHUSDT", entry_price="2500", timestamp=first, trade_id="a"))
    _, body = client.post(alert(symbol="ETHUSDT", entry_price="2400", timestamp=second, trade_id="b"))
    assert (body["outcome"], body["queue_id"]) == ("ignored", queued["queue_id"])
    assert "duplicate" in body["reason"]
    entry = st.queue.get(queued["queue_id"])
    assert entry is not None and (entry.entry_price, entry.replacement_count) == (D("2500"), 0)


# --------------------------------------------------------------------------- exits


def test_exit_closes_the_open_group(client: WebhookClient, st: Stores) -> None:
    _, opened = client.post(alert())
    # When a sell-to-flat alert arrives for the key
    status, body = client.post(exit_alert())
    # Then the group is closing and every resting leg is asked to cancel
    assert (status, body["outcome"], body["group_id"]) == (202, "exited", opened["group_id"])
    group = st.groups.get(opened["group_id"])
    assert group is not None and group.status == GroupStatus.CLOSING
    assert (group.close_reason, group.close_note) == (CloseReason.EXIT, "exit signal")
    orders = st.orders.list_for_group(group.id)
    assert len(orders) == 5 and all(o.cancel_requested for o in orders)


def test_explicit_exit_intent_closes_the_open_group(client: WebhookClient, st: Stores) -> None:
    _, opened = client.post(alert())
    _, body = client.post(alert(action="sell", intent="exit", market_position="flat"))
    assert (body["outcome"], body["group_id"]) == ("exited", opened["group_id"])


def test_exit_of_a_queued_only_entry_removes_it(client: WebhookClient, st: Stores) -> None:
    set_document("pool", max_open_groups=1)
    client.post(alert(symbol="BTCUSDT"))
    _, queued = client.post(alert(symbol="ETHUSDT", entry_price="2500"))
    status, body = client.post(exit_alert(symbol="ETHUSDT", entry_price=None))
    assert (status, body["outcome"], body["queue_id"]) == (202, "exited", queued["queue_id"])
    assert "group_id" not in body
    assert st.queue.list_all() == []


def test_exit_with_nothing_open_or_queued_is_ignored(client: WebhookClient, st: Stores) -> None:
    status, body = client.post(exit_alert())
    assert (status, body["outcome"]) == (202, "ignored")
    assert _signals(st) == [("ignored", body["reason"])]


# --------------------------------------------------------------------------- pre-trade checks


def test_paused_engine_rejects_new_entries(client: WebhookClient, st: Stores) -> None:
    set_document("engine", paused=True)
    status, body = client.post(alert())
    assert (status, body) == (202, {"outcome": "rejected", "reason": "engine paused"})
    assert st.groups.list_open() == [] and st.queue.list_all() == []
    assert _signals(st) == [("rejected", "engine paused")]


def test_per_symbol_limit_rejects_another_timeframe(client: WebhookClient, st: Stores) -> None:
    set_document("engine", max_open_per_symbol=1)
    client.post(alert(timeframe="60"))
    _, body = client.post(alert(timeframe="15"))
    assert body["outcome"] == "rejected"
    assert body["reason"] == "max open groups per symbol reached (1/1)"
    assert len(st.groups.list_open()) == 1


def test_daily_loss_breaker_queues_new_entries(client: WebhookClient, st: Stores) -> None:
    # Given a group closed today with a realised loss beyond the 500 USD limit
    today = datetime.now(UTC).date().isoformat()
    closed = make_group(
        status=GroupStatus.CLOSED,
        figures=GroupFigures(realized_pnl_usd=D("-600"), realized_by_day={today: D("-600")}),
    )
    st.groups.save(closed, now=utcnow())
    # When a new entry arrives, then it waits in the queue with the breaker as the reason
    status, body = client.post(alert())
    assert (status, body["outcome"]) == (202, "queued")
    assert body["reason"].startswith("daily loss breaker")
    entry = st.queue.get(body["queue_id"])
    assert entry is not None and entry.reason == body["reason"]
    assert st.groups.list_open() == []
