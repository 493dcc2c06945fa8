"""position_update: fills -> figures, per-leg TPs from the REAL fill price, states, closed when flat.

Every test drives the real ``functions/position_update/handler.py`` with Lambda stream events built
from moto's own orders-stream records, in order (tests/support/streams.py). Fills are written the way
order_sync records them (tests/support/scenario.py).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.app.context import Stores, engine_context
from engine.app.positions import refresh_group
from engine.domain.models import CloseReason, GroupStatus, OrderPurpose, OrderSide, OrderStatus, OrderType
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
    """Deliver every new orders-stream record to position_update until nothing new is written."""
    drain(streams, {"orders": [load_function("position_update")]}, replay=replay)


def test_leg_tp_is_placed_from_the_real_fill_price(st, streams):
    # Given a group whose first leg was planned at 100.00 (TP 1 %)
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[0]
    assert leg.price == Decimal("100.00") and leg.tp_percent == Decimal("1")
    # When the leg fills at 99.90 and position_update sees the stream
    fill(st, leg.id, price="99.90")
    settle(streams)
    # Then one limit sell TP sits at 99.90 * 1.01 = 100.899 -> 100.90 (not 101.00) for the whole leg
    (tp,) = orders_of(st, group.id, OrderPurpose.TP)
    assert (tp.id, tp.parent_order_id) == (f"{leg.id}-tp-1", leg.id)
    assert (tp.side, tp.type, tp.status) == (OrderSide.SELL, OrderType.LIMIT, OrderStatus.PENDING)
    assert tp.price == Decimal("100.90")
    assert tp.amount == leg.amount
    # And the group moved on with figures from the fill
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.PARTIALLY_FILLED
    assert stored.figures.quantity == leg.amount
    assert stored.figures.avg_entry == Decimal("99.90")
    assert stored.figures.filled_legs == 1


def test_partial_fill_gets_a_tp_and_more_fill_gets_a_tp_for_the_delta(st, streams):
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[1]  # gap -0.5 %: 99.50, TP 0.5 %
    # Given half of the leg filled at 99.50
    fill(st, leg.id, price="99.50", quantity="0.2")
    settle(streams)
    (first,) = orders_of(st, group.id, OrderPurpose.TP)
    assert (first.amount, first.price) == (Decimal("0.2"), Decimal("100.00"))  # 99.9975 -> 100.00
    # When the rest fills
    fill(st, leg.id, price="99.50")
    settle(streams)
    # Then a second TP covers exactly the delta; the first one is untouched
    tps = orders_of(st, group.id, OrderPurpose.TP)
    assert [tp.id for tp in tps] == [f"{leg.id}-tp-1", f"{leg.id}-tp-2"]
    assert tps[1].amount == leg.amount - Decimal("0.2")
    assert sum(tp.amount for tp in tps) == leg.amount


def test_a_leg_tp_that_leaves_nothing_held_closes_the_group_and_frees_its_slot(st, streams):
    # Given leg 1 filled at 99.90 with its TP at 100.90, legs 2-5 resting (close_when_flat by default)
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[0]
    fill(st, leg.id, price="99.90")
    settle(streams)
    (tp,) = orders_of(st, group.id, OrderPurpose.TP)
    # When the TP fills while legs 2-5 still rest on the exchange (issue 12 finding 10)
    fill(st, tp.id, price="100.90")
    settle(streams)
    # Then the group starts closing as a take-profit and its resting legs are cancel-requested
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSING
    assert stored.close_reason is CloseReason.TAKE_PROFIT
    assert stored.figures.realized_pnl_usd == Decimal("1.00") * leg.amount
    assert all(o.cancel_requested for o in entries_of(st, group.id)[1:])
    # When the executor has cancelled them, then the group is closed, flat, and no market order was sent
    cancel_requested(st, group.id)
    settle(streams)
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSED and stored.closed_at is not None
    assert stored.close_reason is CloseReason.TAKE_PROFIT and stored.figures.quantity == 0
    assert [o.type for o in orders_of(st, group.id, OrderPurpose.TP)] == [OrderType.LIMIT]
    # And slot_release frees its pool slot
    drain(streams, {"groups": [load_function("slot_release")]})
    assert st.pool.status() == (0, [])


def test_without_close_when_flat_a_leg_tp_filling_while_other_legs_rest_keeps_the_group_open(st, streams):
    # Given the DCA document keeps the grid waiting for a dip after a take-profit
    set_document("dca/default", close_when_flat=False)
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[0]
    fill(st, leg.id, price="99.90")
    settle(streams)
    (tp,) = orders_of(st, group.id, OrderPurpose.TP)
    # When the TP fills while legs 2-5 still rest on the exchange
    fill(st, tp.id, price="100.90")
    settle(streams)
    # Then the group stays open (partially filled), holding nothing, with the profit realised
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.PARTIALLY_FILLED
    assert stored.closed_at is None
    assert stored.figures.quantity == 0
    assert stored.figures.realized_pnl_usd == Decimal("1.00") * leg.amount
    assert all(o.is_live and not o.cancel_requested for o in entries_of(st, group.id)[1:])
    # And the pool slot is still held
    assert st.pool.status() == (1, [group.id])


@pytest.mark.parametrize("replay", [1, 2], ids=["delivered-once", "every-batch-replayed-twice"])
def test_all_tps_filled_closes_the_group(st, streams, replay):
    group, _ = open_group(st, price="100")
    legs = entries_of(st, group.id)
    # Given every leg filled at its planned price
    for leg in legs:
        fill(st, leg.id, price=str(leg.price))
    settle(streams, replay=replay)
    tps = orders_of(st, group.id, OrderPurpose.TP)
    assert [tp.parent_order_id for tp in tps] == [leg.id for leg in legs]
    assert group_of(st, group.id).status is GroupStatus.ACTIVE
    # When every TP fills
    for tp in tps:
        fill(st, tp.id, price=str(tp.price))
    settle(streams, replay=replay)
    # Then the group is closed with closed_at, flat, in profit, and nothing else was placed
    stored = group_of(st, group.id)
    assert stored.status is GroupStatus.CLOSED
    assert stored.closed_at is not None
    assert stored.figures.quantity == 0
    assert stored.figures.realized_pnl_usd > 0
    assert len(st.orders.list_for_group(group.id)) == len(legs) * 2


def test_replaying_every_batch_twice_gives_the_same_final_state(dynamodb, monkeypatch):
    # Given the same scenario run with single and with double delivery
    results = []
    for replay in (1, 2):
        st = engine_env(monkeypatch).stores
        streams = Streams()
        streams.skip("orders")
        group, _ = open_group(st, price="100", timeframe=60 * replay)
        legs = entries_of(st, group.id)
        fill(st, legs[0].id, price=str(legs[0].price))
        fill(st, legs[1].id, price=str(legs[1].price), quantity="0.1")
        settle(streams, replay=replay)
        fill(st, legs[1].id, price=str(legs[1].price))
        settle(streams, replay=replay)
        (first_tp, *_) = orders_of(st, group.id, OrderPurpose.TP)
        fill(st, first_tp.id, price=str(first_tp.price))
        settle(streams, replay=replay)
        stored = group_of(st, group.id)
        orders = st.orders.list_for_group(group.id)
        results.append(
            (
                stored.status,
                stored.figures.quantity,
                stored.figures.realized_pnl_usd,
                sorted((o.id.removeprefix(group.id), o.amount, o.price, o.status) for o in orders),
            )
        )
    # Then both runs end identical (same TP ids, amounts, prices; same figures)
    assert results[0] == results[1]


def test_refresh_without_changes_writes_nothing(st, streams):
    group, _ = open_group(st, price="100")
    fill(st, entries_of(st, group.id)[0].id, price="99.90")
    settle(streams)
    version = group_of(st, group.id).version
    # When the group is refreshed again with nothing new
    refresh_group(engine_context(), group.id, T0)
    # Then it was not written (no new version, no new order)
    assert group_of(st, group.id).version == version
    assert len(orders_of(st, group.id, OrderPurpose.TP)) == 1


def test_a_tp_under_the_market_minimum_waits_for_more_fill(st, streams):
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[0]
    # Given a fill worth 3 USDT (< min_notional 5)
    fill(st, leg.id, price="100", quantity="0.03")
    settle(streams)
    assert orders_of(st, group.id, OrderPurpose.TP) == []
    # When it grows over the minimum, one TP covers the whole filled part
    fill(st, leg.id, price="100", quantity="0.1")
    settle(streams)
    (tp,) = orders_of(st, group.id, OrderPurpose.TP)
    assert tp.amount == Decimal("0.1")


def test_risk_timer_starts_when_the_loss_condition_holds(st, streams):
    from tests.support.scenario import set_document

    # Given the timer starts once every leg is filled and the loss is at least 1 %
    set_document("risk", timer_start="after_all_dca_filled", loss_threshold_percent="-1")
    group, _ = open_group(st, price="100")
    for leg in entries_of(st, group.id):
        fill(st, leg.id, price=str(leg.price))
    st.prices.set("binance", "BTC/USDT", Decimal("90"), T0)
    # When position_update refreshes the group
    settle(streams)
    # Then the timer runs; once the price recovers above the average it resets
    assert group_of(st, group.id).risk_timer_started_at is not None
    st.prices.set("binance", "BTC/USDT", Decimal("101"), T0)
    refresh_group(engine_context(), group.id, T0)
    assert group_of(st, group.id).risk_timer_started_at is None
