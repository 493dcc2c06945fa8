"""Lot accounting and the fill ledger (DESIGN §3.5)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.domain.accounting import (
    compute_figures,
    compute_lots,
    convert_fee_usd,
    derive_fill,
    ledger,
    lots_held,
    pyramid_figures,
    with_fill,
)
from engine.domain.config import DcaConfig
from engine.domain.grid import build_grid
from engine.domain.models import (
    Fill,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
)
from engine.domain.takeprofit import aggregate_trigger_price, aggregate_triggered, tp_price

D = Decimal
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BTC = MarketPrecision("BTC/USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))


def order(
    oid: str,
    purpose: OrderPurpose = OrderPurpose.ENTRY,
    *,
    filled: str | Decimal = "0",
    average: str | Decimal | None = None,
    fee: str | Decimal = "0",
    fee_currency: str = "USDT",
    pyramid: int | None = 1,
    parent: str | None = None,
    minute: int = 0,
    fills: list[Fill] | None = None,
    order_type: OrderType = OrderType.LIMIT,
) -> Order:
    qty = D(filled)
    at = T0 + timedelta(minutes=minute)
    return Order(
        id=oid,
        group_id="g1",
        exchange="binance",
        symbol="BTC/USDT",
        purpose=purpose,
        side=OrderSide.BUY if purpose == OrderPurpose.ENTRY else OrderSide.SELL,
        type=order_type,
        amount=qty if qty > 0 else D(1),
        price=D(average) if average is not None else None,
        client_order_id=f"c-{oid}",
        status=OrderStatus.FILLED if qty > 0 else OrderStatus.OPEN,
        pyramid=pyramid,
        parent_order_id=parent,
        filled=qty,
        average=D(average) if average is not None else None,
        fee_cost=D(fee),
        fee_currency=fee_currency,
        created_at=at,
        updated_at=at,
        last_fill_at=at if qty > 0 else None,
        fills=fills or [],
    )


def figures(orders, price=None):
    return compute_figures(orders, side=Side.LONG, base_currency="BTC", price=price, total_legs=2)


# ----------------------------------------------------------------------------- finding 1


def test_hybrid_aggregate_waits_for_one_percent_over_the_remaining_lot():
    # Given legs 1 @ 100 and 1 @ 90 and leg 2's TP (0.5 %) filled at 90.45
    orders = [
        order("e1", filled="1", average="100"),
        order("e2", filled="1", average="90", minute=1),
        order("t2", OrderPurpose.TP, filled="1", average="90.45", parent="e2", minute=2),
    ]
    result = figures(orders, price=D("95.95"))
    # Then the leg TP is booked on its own lot and the average is the lot bought at 100
    assert result.realized_pnl_usd == D("0.45")
    assert result.avg_entry == D("100")
    # And the aggregate (1 %) no longer fires at 95.95 (which would close at -3.60) but at 101
    assert not aggregate_triggered(Side.LONG, result.avg_entry, D("95.95"), D("1"))
    assert aggregate_trigger_price(Side.LONG, result.avg_entry, D("1")) == D("101")
    # When it fires at 101, the group closes at a profit
    orders.append(order("agg", OrderPurpose.TP, filled="1", average="101", pyramid=None, minute=3))
    closed = figures(orders)
    assert closed.quantity == 0
    assert closed.realized_pnl_usd == D("1.45")


def test_aggregate_after_a_partial_risk_close_uses_the_remaining_lots():
    # A pro-rata sell keeps the average: 2 @ 100 and 2 @ 90, risk close 2 -> 1 @ 100 + 1 @ 90 remain
    orders = [
        order("e1", filled="2", average="100"),
        order("e2", filled="2", average="90", minute=1),
        order("r1", OrderPurpose.RISK_CLOSE, filled="2", average="96", pyramid=None, minute=2),
    ]
    result = figures(orders)
    assert result.avg_entry == D("95")
    assert result.realized_pnl_usd == D("2")
    assert lots_held(orders, Side.LONG, "BTC") == {"e1": D("1"), "e2": D("1")}


def test_pyramid_aggregate_sells_only_its_own_pyramids_lots():
    orders = [
        order("p1e1", filled="1", average="100", pyramid=1),
        order("p1e2", filled="1", average="90", pyramid=1, minute=1),
        order("p1t2", OrderPurpose.TP, filled="1", average="90.45", parent="p1e2", minute=2),
        order("p2e1", filled="1", average="80", pyramid=2, minute=3),
        order(
            "p2x",
            OrderPurpose.TP,
            filled="1",
            average="80.8",
            pyramid=2,
            order_type=OrderType.MARKET,
            minute=4,
        ),
    ]
    per = pyramid_figures(orders, Side.LONG, "BTC")
    # Pyramid 1's average is its remaining lot (100): its aggregate waits for 101
    assert (per[1].quantity, per[1].avg_entry) == (D("1"), D("100"))
    assert per[1].realized_pnl_usd == D("0.45")
    # Pyramid 2's TP sold its own lot at 80.8: +0.8, nothing of pyramid 1
    assert (per[2].quantity, per[2].realized_pnl_usd) == (D("0"), D("0.8"))
    assert figures(orders).realized_pnl_usd == D("1.25")


def test_avg_entry_keeps_its_last_value_once_a_single_close_empties_the_group():
    orders = [
        order("e1", filled="1", average="100"),
        order("e2", filled="1", average="90", pyramid=2, minute=1),
        order("x1", OrderPurpose.EXIT, filled="2", average="99", pyramid=None, minute=2),
    ]
    assert (figures(orders).quantity, figures(orders).avg_entry) == (D(0), D(95))
    per = pyramid_figures(orders, Side.LONG, "BTC")
    assert (per[1].avg_entry, per[2].avg_entry) == (D(100), D(90))


# ----------------------------------------------------------------------------- finding 2


def test_default_grid_leg5_take_profit_is_booked_on_its_own_lot():
    # Given the default grid on 5000 USD from 64000 with 0.1 % fees, every leg filled
    grid = build_grid(
        side=Side.LONG,
        pyramid=1,
        entry_price=D("64000"),
        capital_usd=D("5000"),
        levels=DcaConfig().levels,
        precision=BTC,
        entry_order_type=OrderType.LIMIT,
    )
    fee = D("0.001")
    orders = [
        order(
            f"e{leg.leg}",
            filled=leg.amount,
            average=leg.price,
            fee=leg.amount * leg.price * fee,
            minute=leg.leg,
        )
        for leg in grid.legs
    ]
    leg5 = grid.legs[4]
    assert leg5.price == D("61440")
    # When leg 5's TP fills at 61747.20
    sell = tp_price(Side.LONG, leg5.price, leg5.tp_percent, BTC.tick)
    assert sell == D("61747.20")
    orders.append(
        order(
            "t5",
            OrderPurpose.TP,
            filled=leg5.amount,
            average=sell,
            fee=leg5.amount * sell * fee,
            parent="e5",
            minute=9,
        )
    )
    result = figures(orders)
    # Then it realises +5.00 on its own lot before fees, and the day's realised is that net of both fees
    gross = (sell - leg5.price) * leg5.amount
    assert gross.quantize(D("0.01")) == D("5.00")
    net = gross - leg5.amount * leg5.price * fee - leg5.amount * sell * fee
    assert result.realized_pnl_usd == net
    assert result.realized_by_day == {"2026-11-26": net}
    assert net > 0  # never the old -22.85
    assert compute_lots(orders, Side.LONG, "BTC").lots["e5"].quantity == 0


# ----------------------------------------------------------------------------- ledger


def test_derive_fill_prices_the_increment_from_the_change_of_average():
    before = order("e1", filled="1", average="100", fee="0.1")
    fill = derive_fill(before, filled=D("3"), average=D("94"), fee_cost=D("0.28"), fee_currency="USDT", at=T0)
    assert fill is not None
    # (3 * 94 - 1 * 100) / 2 = 91
    assert (fill.quantity, fill.price, fill.fee, fill.fee_usd) == (D("2"), D("91"), D("0.18"), D("0.18"))
    assert (
        derive_fill(before, filled=D("1"), average=D("100"), fee_cost=D("0.1"), fee_currency="USDT", at=T0)
        is None
    )


def test_order_without_ledger_is_one_fill_at_its_average():
    legacy = order("e1", filled="2", average="95", fee="0.19", minute=5)
    assert ledger(legacy) == [Fill(D("2"), D("95"), T0 + timedelta(minutes=5), D("0.19"), "USDT", None)]


def test_lots_are_allocated_in_fill_order_across_a_legs_ledger():
    # Given leg 1 filled 1 @ 100 at 10:00, its TP sold 1 at 10:05, then it filled 1 @ 99 at 10:10
    fills = [Fill(D("1"), D("100"), T0), Fill(D("1"), D("99"), T0 + timedelta(minutes=10))]
    e1 = order("e1", filled="2", average="99.5", fills=fills, minute=10)
    t1 = order("t1", OrderPurpose.TP, filled="1", average="101", parent="e1", minute=5)
    result = figures([e1, t1])
    # Then the TP realised against the first fill and the lot now holds the second one
    assert result.realized_pnl_usd == D("1")
    assert (result.quantity, result.avg_entry) == (D("1"), D("99"))


def test_close_fills_are_booked_on_the_utc_day_of_each_fill():
    close_fills = [
        Fill(D("1"), D("110"), datetime(2026, 11, 26, 23, 59, tzinfo=UTC)),
        Fill(D("1"), D("90"), datetime(2026, 11, 27, 0, 1, tzinfo=UTC)),
    ]
    orders = [
        order("e1", filled="2", average="100"),
        order(
            "x1", OrderPurpose.EXIT, filled="2", average="100", pyramid=None, fills=close_fills, minute=900
        ),
    ]
    assert figures(orders).realized_by_day == {"2026-11-26": D("10"), "2026-11-27": D("-10")}


# ----------------------------------------------------------------------------- finding 4


def test_a_bnb_fee_is_converted_at_the_bnb_ticker():
    assert convert_fee_usd(
        D("0.001"), "BNB", price=D("100"), base_currency="BTC", coin_price_usd=D("600")
    ) == D("0.600")
    assert convert_fee_usd(D("0.001"), "BNB", price=D("100"), base_currency="BTC") is None
    assert convert_fee_usd(D("0.1"), "usdc", price=D("100"), base_currency="BTC") == D("0.1")
    assert convert_fee_usd(D("0.001"), "BTC", price=D("100"), base_currency="BTC") == D("0.100")
    before = order("e1")
    fill = derive_fill(
        before,
        filled=D("1"),
        average=D("100"),
        fee_cost=D("0.001"),
        fee_currency="BNB",
        at=T0,
        coin_price_usd=D("600"),
    )
    assert fill is not None and fill.fee_usd == D("0.600")
    recorded = with_fill(before, fill)
    recorded.filled, recorded.average, recorded.fee_cost, recorded.fee_currency = (
        D(1),
        D(100),
        D("0.001"),
        "BNB",
    )
    assert recorded.fee_usd == D("0.600")
    result = figures([recorded])
    assert result.fees_usd == D("0.600")  # not 0.001 "USD"


def test_leg_tps_are_resized_to_their_lot_after_a_pro_rata_sell():
    from engine.domain.takeprofit import leg_tp_resizes, leg_tp_shortfall

    # Given two legs of 1 with live TPs of 1 each, a risk close of 1 takes 0.5 from each lot
    tp1 = order("t1", OrderPurpose.TP, parent="e1")
    tp1.amount, tp1.status = D(1), OrderStatus.OPEN
    tp2 = order("t2", OrderPurpose.TP, parent="e2")
    tp2.amount, tp2.status = D(1), OrderStatus.OPEN
    orders = [
        order("e1", filled="1", average="100"),
        order("e2", filled="1", average="90", minute=1),
        order("r1", OrderPurpose.RISK_CLOSE, filled="1", average="96", pyramid=None, minute=2),
        tp1,
        tp2,
    ]
    # Then each TP shrinks to its lot's 0.5
    changes = {tp.id: keep for tp, keep in leg_tp_resizes(orders, Side.LONG, "BTC", BTC.step)}
    assert changes == {"t1": D("0.5"), "t2": D("0.5")}
    held = lots_held(orders, Side.LONG, "BTC")
    assert leg_tp_shortfall(orders[0], [tp1], BTC.step, lot_held=held["e1"]) == 0


# ----------------------------------------------------------------------------- close when flat


def test_flat_after_take_profit_needs_a_tp_and_a_filled_newest_pyramid():
    from engine.domain.accounting import flat_after_take_profit

    resting = order("e2", minute=1)  # leg 2 still waiting for a dip
    orders = [
        order("e1", filled="1", average="100"),
        resting,
        order("t1", OrderPurpose.TP, filled="1", average="101", parent="e1", minute=2),
    ]
    assert flat_after_take_profit(orders, figures(orders), BTC, newest_pyramid=1)
    # a new pyramid without any fill yet keeps the group waiting
    assert not flat_after_take_profit(
        [*orders, order("p2e1", pyramid=2)], figures(orders), BTC, newest_pyramid=2
    )
    # flat after an exit is not a take-profit
    exited = [*orders[:2], order("x1", OrderPurpose.EXIT, filled="1", average="99", pyramid=None, minute=2)]
    assert not flat_after_take_profit(exited, figures(exited), BTC, newest_pyramid=1)
    # still holding is not flat
    holding = orders[:2]
    assert not flat_after_take_profit(holding, figures(holding), BTC, newest_pyramid=1)
