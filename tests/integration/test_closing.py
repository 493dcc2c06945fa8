"""Closing a group: exit mid-way, aggregate and hybrid take-profits, one pyramid's aggregate close.

The executor's part (cancelling what has ``cancel_requested``) and order_sync's (recording fills) are
written directly (tests/support/scenario.py); position_update runs for real on moto's stream records.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.app.context import Stores, engine_context
from engine.app.positions import refresh_group, request_close
from engine.app.shared.errors import NotFound
from engine.domain.models import (
    CloseReason,
    GroupStatus,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    close_purpose,
)
from tests.support.scenario import (
    T0,
    cancel_requested,
    engine_env,
    entries_of,
    fill,
    group_of,
    open_group,
    orders_of,
    set_document,
)
from tests.support.streams import Streams, drain, load_function


@pytest.fixture
def st(dynamodb, monkeypatch) -> Stores:
    return engine_env(monkeypatch).stores


@pytest.fixture
def streams(st) -> Streams:
    return Streams()


def settle(streams: Streams, *, replay: int = 1) -> None:
    drain(streams, {"orders": [load_function("position_update")]}, replay=replay)


def close_orders(st: Stores, group_id: str) -> list:
    return [o for o in st.orders.list_for_group(group_id) if o.id.startswith(f"{group_id}-close-")]


@pytest.mark.parametrize("replay", [1, 2])
def test_exit_mid_way_cancels_then_sells_the_held_quantity_once(st, streams, replay):
    # Given a group with two legs filled (each with its TP) and three legs resting
    group, _ = open_group(st, price="100")
    legs = entries_of(st, group.id)
    fill(st, legs[0].id, price="100")
    fill(st, legs[1].id, price="99.50")
    settle(streams, replay=replay)
    held = legs[0].amount + legs[1].amount
    assert len(orders_of(st, group.id, OrderPurpose.TP)) == 2
    # When an exit signal closes it
    assert (
        request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=T0) is True
    )
    settle(streams, replay=replay)
    # Then it is closing, every live order (3 legs + 2 TPs) has a cancel request, no close order yet
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSING
    assert (stored.close_reason, stored.close_note) == (CloseReason.EXIT, "exit signal")
    assert close_purpose(stored.close_reason) is OrderPurpose.EXIT
    live = [o for o in st.orders.list_for_group(group.id) if o.is_live]
    assert len(live) == 5 and all(o.cancel_requested for o in live)
    assert close_orders(st, group.id) == []
    # When the executor has cancelled them
    cancel_requested(st, group.id)
    settle(streams, replay=replay)
    # Then exactly ONE market sell closes the held quantity, with the exit purpose
    (close,) = close_orders(st, group.id)
    assert close.id == f"{group.id}-close-1"
    assert (close.type, close.side, close.purpose) == (OrderType.MARKET, OrderSide.SELL, OrderPurpose.EXIT)
    assert close.amount == held
    # When it fills, the group is closed
    fill(st, close.id, price="99")
    settle(streams, replay=replay)
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSED
    assert stored.closed_at is not None
    assert stored.figures.quantity == 0
    assert len(close_orders(st, group.id)) == 1


def test_a_repeated_close_request_changes_nothing(st, streams):
    group, _ = open_group(st, price="100")
    assert request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=T0)
    version = group_of(st, group.id).version
    assert request_close(engine_context(), group.id, reason=CloseReason.RISK, note="again", now=T0) is False
    stored = group_of(st, group.id)
    assert stored.version == version
    assert (stored.close_reason, stored.close_note) == (CloseReason.EXIT, "exit signal")


def test_closing_an_unknown_group_is_not_found(st):
    with pytest.raises(NotFound):
        request_close(engine_context(), "nope", reason=CloseReason.EXIT, note="exit signal", now=T0)


def test_exit_with_nothing_resting_places_the_close_at_once(st, streams):
    # Given a fully filled group whose TPs are not placed (aggregate mode: no leg TPs)
    set_document("dca/default", tp_mode="aggregate")
    group, _ = open_group(st, price="100")
    for leg in entries_of(st, group.id):
        fill(st, leg.id, price=str(leg.price))
    settle(streams)
    held = group_of(st, group.id).figures.quantity
    # When it is closed: nothing to cancel, so no order changes and no stream record would follow
    assert request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=T0)
    # Then the market close is already there
    (close,) = close_orders(st, group.id)
    assert close.amount == held


def test_pending_entries_that_never_filled_close_the_group_without_a_sale(st, streams):
    group, _ = open_group(st, price="100")
    request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=T0)
    cancel_requested(st, group.id)
    settle(streams)
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSED
    assert close_orders(st, group.id) == []


def test_aggregate_tp_market_sells_everything_when_price_reaches_the_average_plus_percent(st, streams):
    set_document("dca/default", tp_mode="aggregate", tp_aggregate_percent="1.0")
    group, _ = open_group(st, price="100")
    legs = entries_of(st, group.id)
    fill(st, legs[0].id, price="100")
    fill(st, legs[1].id, price="99.50")
    settle(streams)
    avg = group_of(st, group.id).figures.avg_entry
    assert orders_of(st, group.id, OrderPurpose.TP) == []  # no leg TPs in aggregate mode
    # Given the price just under the trigger: nothing happens
    st.prices.set("binance", "BTC/USDT", avg * Decimal("1.0099"), T0)
    refresh_group(engine_context(), group.id, T0)
    assert group_of(st, group.id).status is GroupStatus.PARTIALLY_FILLED
    # When the price reaches average * 1.01 (order_sync refreshes every open group)
    st.prices.set("binance", "BTC/USDT", avg * Decimal("1.01"), T0)
    refresh_group(engine_context(), group.id, T0)
    refreshed = group_of(st, group.id)
    # Then the group closes for take-profit: resting legs cancel, then one market tp sells it all
    assert refreshed.status is GroupStatus.CLOSING
    assert (refreshed.close_reason, refreshed.close_note) == (
        CloseReason.TAKE_PROFIT,
        "aggregate take-profit",
    )
    assert all(o.cancel_requested for o in entries_of(st, group.id) if o.is_live)
    cancel_requested(st, group.id)
    settle(streams)
    (close,) = close_orders(st, group.id)
    assert (close.purpose, close.type) == (OrderPurpose.TP, OrderType.MARKET)
    assert close.amount == legs[0].amount + legs[1].amount
    fill(st, close.id, price=str(avg * Decimal("1.01")))
    settle(streams)
    assert group_of(st, group.id).status is GroupStatus.CLOSED


def test_hybrid_aggregate_wins_and_cancels_the_leg_tps(st, streams):
    set_document("dca/default", tp_mode="hybrid", tp_aggregate_percent="0.2")
    group, _ = open_group(st, price="100")
    legs = entries_of(st, group.id)
    fill(st, legs[0].id, price="100")
    fill(st, legs[1].id, price="99.50")
    settle(streams)
    tps = orders_of(st, group.id, OrderPurpose.TP)
    assert len(tps) == 2  # hybrid: leg TPs too
    # When the price passes the aggregate trigger (below the leg TPs at 101.00 / 100.00)
    st.prices.set("binance", "BTC/USDT", Decimal("99.99"), T0)
    refresh_group(engine_context(), group.id, T0)
    # Then the leg TPs are cancelled with the resting legs, and a market tp closes everything
    assert all(o.cancel_requested for o in orders_of(st, group.id, OrderPurpose.TP))
    cancel_requested(st, group.id)
    settle(streams)
    (close,) = close_orders(st, group.id)
    assert close.purpose is OrderPurpose.TP
    assert close.amount == legs[0].amount + legs[1].amount
    leg_tps = [o for o in orders_of(st, group.id, OrderPurpose.TP) if o.type is OrderType.LIMIT]
    assert [o.status for o in leg_tps] == [OrderStatus.CANCELLED, OrderStatus.CANCELLED]


def test_pyramid_aggregate_closes_only_the_pyramid_that_reached_its_target(st, streams):
    set_document("dca/default", tp_mode="pyramid_aggregate", tp_aggregate_percent="1.0")
    group, _ = open_group(st, price="100")
    first = entries_of(st, group.id)[0]
    fill(st, first.id, price="100")
    settle(streams)
    # When the price reaches pyramid 1's average + 1 %
    st.prices.set("binance", "BTC/USDT", Decimal("101"), T0)
    refresh_group(engine_context(), group.id, T0)
    refreshed = group_of(st, group.id)
    # Then pyramid 1's resting legs get cancel requests and a market tp sells what it holds
    assert refreshed.status is not GroupStatus.CLOSING
    (close,) = [o for o in st.orders.list_for_group(group.id) if o.id.startswith(f"{group.id}-p1-close-")]
    assert (close.purpose, close.type, close.pyramid) == (OrderPurpose.TP, OrderType.MARKET, 1)
    assert close.amount == first.amount
    assert all(o.cancel_requested for o in entries_of(st, group.id) if o.is_live)
    # And a replay places nothing more
    refresh_group(engine_context(), group.id, T0)
    assert len([o for o in st.orders.list_for_group(group.id) if "-close-" in o.id]) == 1


def test_a_close_the_exchange_keeps_refusing_is_not_resent_forever(st, streams):
    set_document("dca/default", tp_mode="aggregate")
    group, _ = open_group(st, price="100")
    for leg in entries_of(st, group.id):
        fill(st, leg.id, price=str(leg.price))
    settle(streams)
    request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=T0)
    # When every close order is rejected by the exchange
    for _ in range(5):
        for order in close_orders(st, group.id):
            if order.is_live:
                order.status, order.reason = OrderStatus.REJECTED, "insufficient balance"
                st.orders.save(order, now=T0)
        settle(streams)
    # Then three attempts were made, each with its reason, and the group waits in closing
    closes = close_orders(st, group.id)
    assert [o.id for o in closes] == [f"{group.id}-close-{n}" for n in (1, 2, 3)]
    assert all(o.status is OrderStatus.REJECTED and o.reason for o in closes)
    assert group_of(st, group.id).status is GroupStatus.CLOSING
