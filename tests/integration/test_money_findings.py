"""Issue 12 findings 1 and 2 through the real stream and sync path (DESIGN §3.5 lots): take-profits are
booked against the lots they sell, the aggregate waits for the cost of what is still held, and leg TPs
are re-sized to their lots after a pro-rata sell.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, engine_context
from engine.app.shared.markets import market_precision
from engine.app.sync import run_sync
from engine.domain.models import GroupStatus, OrderPurpose, OrderType, TpMode, utcnow
from engine.domain.money import round_down
from engine.exchange.client_ids import client_order_id
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
from tests.support.trading import TradingWorld, configure


def _tick(world: TradingWorld, minutes: int) -> None:
    """One order-sync run (paper matching, refresh of every group), then every stream until quiet."""
    run_sync(engine_context(), utcnow() + timedelta(minutes=minutes), force=True)
    world.drain()


def test_hybrid_aggregate_waits_for_the_cost_of_the_lot_still_held(dynamodb: Any) -> None:
    # Given finding 1: a hybrid group, legs 1 @ 100 and 1 @ 90, leg TP 0.5 % (100.50, 90.45), aggregate 1 %
    configure()
    world = TradingWorld()
    group = world.open_group(
        "AAA/USDT",
        [("100", "1"), ("90", "1")],
        now=utcnow(),
        tp_percent="0.5",
        tp_mode=TpMode.HYBRID,
        tp_aggregate_percent="1",
    )
    # When leg 2's TP fills at 90.45
    world.set_price("AAA/USDT", "90.45")
    _tick(world, 1)
    after_leg_tp = world.group(group.id)
    assert after_leg_tp.figures.quantity == Decimal(1)
    # Then what is held is the lot bought at 100: its average is 100, not the average-cost 95
    assert after_leg_tp.figures.avg_entry == Decimal(100)
    # When the price reaches 95.95 (1 % over 95, where the average-cost aggregate fired and lost 3.60)
    world.set_price("AAA/USDT", "95.95")
    _tick(world, 2)
    # Then nothing sells: the aggregate waits for 101
    waiting = world.group(group.id)
    assert waiting.status is GroupStatus.ACTIVE and waiting.figures.quantity == Decimal(1)
    assert not [
        o for o in world.orders(group.id) if o.type == OrderType.MARKET and o.purpose == OrderPurpose.TP
    ]
    # When the price reaches 101, then the group closes in profit (fees included)
    world.set_price("AAA/USDT", "101")
    _tick(world, 3)
    closed = world.group(group.id)
    assert closed.status is GroupStatus.CLOSED and closed.figures.quantity == 0
    assert closed.figures.realized_pnl_usd >= 0


def test_profitable_leg_tp_is_booked_against_its_own_lot(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given finding 2: the default grid with 5000 USD at 64000 and 0.1 % fees, every leg filled at its
    # price (legs 64000 / 63680 / 63360 / 62720 / 61440, average about 63040)
    st = engine_env(monkeypatch).stores
    set_document("dca/default", capital_usd=5000)
    streams = Streams()
    group, _ = open_group(st, price="64000")
    legs = entries_of(st, group.id)
    assert legs[4].price == Decimal("61440.00")
    for leg in legs:
        fill(st, leg.id, price=str(leg.price), fee_rate="0.001")
    drain(streams, {"orders": [load_function("position_update")]})
    (tp,) = [o for o in orders_of(st, group.id, OrderPurpose.TP) if o.parent_order_id == legs[4].id]
    assert tp.price == Decimal("61747.20") and tp.amount == legs[4].amount
    # When leg 5's TP fills at 61747.20
    fill(st, tp.id, price="61747.20", fee_rate="0.001")
    drain(streams, {"orders": [load_function("position_update")]})
    # Then it realises (61747.20 - 61440) x qty minus both fees (about +3.00, +5.00 before fees) on
    # that day, not the -22.85 of booking it against the group average
    qty = legs[4].amount
    expected = (Decimal("61747.20") - Decimal("61440")) * qty - Decimal("0.001") * qty * (
        Decimal("61440") + Decimal("61747.20")
    )
    stored = group_of(st, group.id)
    assert stored.figures.realized_pnl_usd == expected and expected > 0
    assert st.groups.realized_on(T0.date()) == expected
    # And the four lots still held keep their own cost: the average excludes the lot that was sold
    held = sum((leg.amount for leg in legs[:4]), Decimal(0))
    cost = sum((leg.amount * leg.price for leg in legs[:4]), Decimal(0))
    assert stored.figures.quantity == held and stored.figures.avg_entry == cost / held


def test_leg_tps_are_resized_to_their_lots_after_a_pro_rata_sell(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two filled legs of a per-leg group (each with a TP for its whole lot)
    st: Stores = engine_env(monkeypatch).stores
    streams = Streams()
    group, _ = open_group(st, price="100")
    legs = entries_of(st, group.id)[:2]
    for leg in legs:
        fill(st, leg.id, price=str(leg.price))
    drain(streams, {"orders": [load_function("position_update")]})
    first_tps = {tp.parent_order_id: tp for tp in orders_of(st, group.id, OrderPurpose.TP)}
    assert {leg.id: first_tps[leg.id].amount for leg in legs} == {leg.id: leg.amount for leg in legs}
    # When a risk close sells half of what is held (pro rata: half of each lot)
    half = (legs[0].amount + legs[1].amount) / 2
    close_id = f"{group.id}-risk-test"
    close = _risk_close(group, close_id, half)
    assert st.orders.put_new(close)
    fill(st, close_id, price="100")
    drain(streams, {"orders": [load_function("position_update")]})
    # Then each leg TP offering more than its lot is cancel-requested
    assert all(
        tp.cancel_requested for tp in orders_of(st, group.id, OrderPurpose.TP) if tp.id in _ids(first_tps)
    )
    # When the executor has cancelled them, then each leg gets one TP for half its lot at its own price
    cancel_requested(st, group.id)
    drain(streams, {"orders": [load_function("position_update")]})
    live = [tp for tp in orders_of(st, group.id, OrderPurpose.TP) if tp.is_live]
    precision = market_precision(st, "binance", "BTC/USDT", engine_context().config.snapshot())
    assert precision is not None
    assert sorted((tp.parent_order_id, tp.amount, tp.price) for tp in live) == sorted(
        (leg.id, round_down(leg.amount / 2, precision.step), first_tps[leg.id].price) for leg in legs
    )


def _ids(tps: dict[str | None, Any]) -> set[str]:
    return {tp.id for tp in tps.values()}


def _risk_close(group: Any, order_id: str, quantity: Decimal) -> Any:
    from engine.app.shared.closing import new_close_order

    order = new_close_order(
        group, order_id=order_id, purpose=OrderPurpose.RISK_CLOSE, quantity=quantity, now=T0
    )
    assert order.client_order_id == client_order_id(order_id)
    return order


def test_a_risk_replacement_tp_starts_with_an_empty_ledger() -> None:
    # Given a leg TP that already filled part of its amount (one ledger entry, a fee in USD)
    from engine.app.risk.orders import _replacement_tp
    from engine.domain.accounting import derive_fill, with_fill
    from tests.support.builders import make_order

    tp = make_order(purpose=OrderPurpose.TP, amount=Decimal(10), price=Decimal(105))
    fill_entry = derive_fill(
        tp, filled=Decimal(4), average=Decimal(105), fee_cost=Decimal("0.42"), fee_currency="USDT", at=T0
    )
    assert fill_entry is not None
    tp = with_fill(tp, fill_entry)
    # When the risk engine builds its smaller replacement
    replacement = _replacement_tp(tp, Decimal(3), "ra1", T0)
    # Then the new order carries none of the old order's fills or fees
    assert (replacement.filled, replacement.fills, replacement.fee_usd) == (Decimal(0), [], None)
    assert replacement.amount == Decimal(3) and replacement.id == f"{tp.id}-rs-ra1"
