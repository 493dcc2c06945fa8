"""Position accounting and group states recomputed from orders (DESIGN §3.5)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.accounting import (
    compute_figures,
    fee_usd,
    held_by_pyramid,
    leg_held,
    next_group_status,
    pyramid_figures,
)
from engine.domain.models import (
    GroupFigures,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
)

D = Decimal
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BTC = MarketPrecision("BTC/USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))


def order(
    oid: str,
    purpose: OrderPurpose = OrderPurpose.ENTRY,
    *,
    filled: str = "0",
    average: str | None = None,
    amount: str | None = None,
    status: OrderStatus | None = None,
    fee: str = "0",
    fee_currency: str = "USDT",
    pyramid: int | None = 1,
    minute: int = 0,
    side: Side = Side.LONG,
    order_type: OrderType = OrderType.LIMIT,
) -> Order:
    """An order with cumulative fills; status defaults from the fill (filled / partially / open)."""
    qty = D(filled)
    total = D(amount) if amount is not None else qty if qty > 0 else D("1")
    if status is None:
        status = (
            OrderStatus.FILLED
            if qty >= total
            else OrderStatus.PARTIALLY_FILLED
            if qty > 0
            else OrderStatus.OPEN
        )
    entry = purpose == OrderPurpose.ENTRY
    buys = entry == (side == Side.LONG)
    at = T0 + timedelta(minutes=minute)
    return Order(
        id=oid,
        group_id="g1",
        exchange="binance",
        symbol="BTC/USDT",
        purpose=purpose,
        side=OrderSide.BUY if buys else OrderSide.SELL,
        type=order_type,
        amount=total,
        price=D(average) if average is not None else D("100"),
        client_order_id=f"c-{oid}",
        status=status,
        pyramid=pyramid,
        filled=qty,
        average=D(average) if average is not None else None,
        cost=qty * D(average) if average is not None else D(0),
        fee_cost=D(fee),
        fee_currency=fee_currency,
        created_at=at,
        updated_at=at,
        last_fill_at=at if qty > 0 else None,
    )


def figures(orders, *, side=Side.LONG, price=None, total_legs=None) -> GroupFigures:
    legs = total_legs if total_legs is not None else sum(1 for o in orders if o.purpose == OrderPurpose.ENTRY)
    return compute_figures(orders, side=side, base_currency="BTC", price=price, total_legs=legs)


def test_partial_fills_with_quote_fees():
    # Given leg 1 fully filled and leg 2 half filled, fees in USDT
    orders = [
        order("e1", filled="1", average="100", fee="0.1"),
        order("e2", filled="0.5", amount="1", average="90", fee="0.045", minute=1),
        order("e3", amount="1"),
    ]
    # When figures are computed at price 100
    result = figures(orders, price=D("100"))
    # Then quantity, average and PnL follow from the fills; fees are not in the average
    assert result.quantity == D("1.5")
    assert result.avg_entry * D("1.5") == pytest.approx(D("145"))
    assert result.invested_usd == pytest.approx(D("145"))
    assert result.unrealized_pnl_usd == pytest.approx(D("5"))
    assert result.unrealized_pnl_percent == pytest.approx(D("5") / D("145") * 100)
    assert result.fees_usd == D("0.145")
    assert result.realized_pnl_usd == 0
    # Only fully filled legs count
    assert (result.filled_legs, result.total_legs) == (1, 3)
    assert result.last_price == D("100")


def test_base_coin_fee_reduces_the_held_quantity():
    orders = [order("e1", filled="1", average="100", fee="0.001", fee_currency="BTC")]
    result = figures(orders, price=D("100"))
    assert result.quantity == D("0.999")
    assert result.avg_entry == D("100")
    assert result.invested_usd == D("99.900")
    assert result.fees_usd == D("0.100")
    assert fee_usd(orders[0], "BTC") == D("0.100")


def test_tp_partial_close_realises_its_share_of_entry_fees():
    # Given two legs (avg 95) and a TP selling half
    orders = [
        order("e1", filled="1", average="100", fee="0.1"),
        order("e2", filled="1", average="90", fee="0.09", minute=1),
        order("t1", OrderPurpose.TP, filled="1", average="110", fee="0.11", minute=2),
    ]
    result = figures(orders, price=D("100"))
    # Then realised = (110 - 95) * 1 - its own fee - half the entry fees
    assert result.realized_pnl_usd == D("15") - D("0.11") - D("0.095")
    assert result.quantity == D("1")
    assert result.avg_entry == D("95")
    assert result.unrealized_pnl_usd == D("5")
    assert result.fees_usd == D("0.30")
    assert result.realized_by_day == {"2026-11-26": result.realized_pnl_usd}


def test_full_close_realises_all_fees_and_splits_pnl_by_utc_day():
    orders = [
        order("e1", filled="2", average="100", fee="0.2"),
        order("t1", OrderPurpose.TP, filled="1", average="110", fee="0.11", minute=60 * 13),
        order("x1", OrderPurpose.EXIT, filled="1", average="90", fee="0.09", minute=60 * 14),
    ]
    result = figures(orders, price=D("95"))
    assert result.quantity == 0
    assert result.unrealized_pnl_usd == 0
    assert result.invested_usd == 0
    # Each close carries its own fee and half of the 0.2 entry fee
    assert result.realized_by_day == {
        "2026-11-26": D("10") - D("0.11") - D("0.1"),  # 23:00 UTC
        "2026-11-27": D("-10") - D("0.09") - D("0.1"),  # 00:00 UTC next day
    }
    assert result.realized_pnl_usd == D("-0.4")


def test_realized_by_day_uses_each_closing_fill_date():
    orders = [
        order("e1", filled="2", average="100"),
        order("t1", OrderPurpose.TP, filled="1", average="110", minute=60),  # 26th 11:00
        order("x1", OrderPurpose.EXIT, filled="1", average="90", minute=60 * 15),  # 27th 01:00
    ]
    result = figures(orders)
    assert result.realized_by_day == {"2026-11-26": D("10"), "2026-11-27": D("-10")}


def test_average_cost_method_keeps_the_average_across_closes():
    # Given buy 1 @100, sell 1 @110, buy 1 @80: the second average is 80, not (100+80)/2
    orders = [
        order("e1", filled="1", average="100"),
        order("t1", OrderPurpose.TP, filled="1", average="110", minute=1),
        order("e2", filled="1", average="80", minute=2),
    ]
    result = figures(orders, price=D("90"))
    assert result.realized_pnl_usd == D("10")
    assert result.avg_entry == D("80")
    assert result.unrealized_pnl_usd == D("10")


def test_a_close_never_sells_more_than_held_in_replay_order():
    # Given a leg whose last fill is after its TP's fill (fills are known per order, cumulatively)
    orders = [
        order("e1", filled="1", average="100", minute=5),
        order("t1", OrderPurpose.TP, filled="0.5", amount="1", average="110", minute=3),
    ]
    # Then the entry is processed first and the TP realises against its price
    result = figures(orders)
    assert result.realized_pnl_usd == D("5")
    assert result.quantity == D("0.5")


def test_short_group_mirrors_pnl():
    orders = [
        order("e1", filled="1", average="100", fee="0.1", side=Side.SHORT),
        order("e2", filled="1", average="110", fee="0.11", side=Side.SHORT, minute=1),
        order("t1", OrderPurpose.TP, filled="1", average="95", fee="0.095", side=Side.SHORT, minute=2),
    ]
    result = figures(orders, side=Side.SHORT, price=D("100"))
    assert result.avg_entry == D("105")
    assert result.realized_pnl_usd == D("10") - D("0.095") - D("0.105")
    assert result.unrealized_pnl_usd == D("5")  # (105 - 100) * 1
    assert result.unrealized_pnl_percent == D("5") / D("105") * 100


def test_without_a_price_unrealised_stays_zero():
    result = figures([order("e1", filled="1", average="100")], price=None)
    assert result.unrealized_pnl_usd == 0 and result.unrealized_pnl_percent == 0
    assert result.invested_usd == D("100")


def test_multiple_pyramids_have_their_own_figures():
    orders = [
        order("p1e1", filled="1", average="100", pyramid=1),
        order("p1e2", amount="1", pyramid=1),
        order("p2e1", filled="1", average="80", pyramid=2, minute=10),
        order("p2t1", OrderPurpose.TP, filled="0.5", average="88", pyramid=2, minute=11),
    ]
    group = figures(orders, price=D("90"), total_legs=3)
    assert group.quantity == D("1.5")
    per_pyramid = pyramid_figures(orders, Side.LONG, "BTC", price=D("90"))
    assert sorted(per_pyramid) == [1, 2]
    assert (per_pyramid[1].quantity, per_pyramid[1].avg_entry) == (D("1"), D("100"))
    assert (per_pyramid[2].quantity, per_pyramid[2].avg_entry) == (D("0.5"), D("80"))
    assert per_pyramid[2].realized_pnl_usd == D("4")
    assert (per_pyramid[1].filled_legs, per_pyramid[1].total_legs) == (1, 2)
    assert held_by_pyramid(orders, Side.LONG, "BTC") == {1: D("1"), 2: D("0.5")}


def test_group_wide_close_is_shared_over_pyramids_by_what_they_hold():
    orders = [
        order("p1e1", filled="3", average="100", pyramid=1),
        order("p2e1", filled="1", average="80", pyramid=2, minute=1),
        order("r1", OrderPurpose.RISK_CLOSE, filled="2", average="110", pyramid=None, minute=2),
    ]
    assert held_by_pyramid(orders, Side.LONG, "BTC") == {1: D("1.5"), 2: D("0.5")}
    assert figures(orders).quantity == D("2")


def test_leg_held_subtracts_base_fee_and_its_closes():
    entry = order("e1", filled="1", average="100", fee="0.001", fee_currency="BTC")
    tps = [
        order("t1", OrderPurpose.TP, filled="0.4", average="101"),
        order("t2", OrderPurpose.TP, filled="0", amount="0.599"),
    ]
    assert leg_held(entry, tps) == D("0.599")
    assert leg_held(entry, [order("t3", OrderPurpose.TP, filled="2", average="101")]) == 0


# ----------------------------------------------------------------------------- states


def status_after(current, orders, *, price=None, total_legs=None, first_pyramid=1):
    result = figures(orders, price=price, total_legs=total_legs)
    return next_group_status(current, orders, result, BTC, first_pyramid)


REJECTED = OrderStatus.REJECTED
CANCELLED = OrderStatus.CANCELLED
PENDING = OrderStatus.PENDING


@pytest.mark.parametrize(
    ("name", "current", "orders", "total_legs", "expected"),
    [
        ("no orders yet", GroupStatus.LIVE, [], 2, GroupStatus.LIVE),
        (
            "orders placed",
            GroupStatus.LIVE,
            [order("e1", amount="0.001"), order("e2", amount="0.001", status=PENDING)],
            2,
            GroupStatus.LIVE,
        ),
        (
            "waiting price-trigger legs keep it live",
            GroupStatus.LIVE,
            [order("e1", amount="0.001", status=PENDING, order_type=OrderType.MARKET)],
            1,
            GroupStatus.LIVE,
        ),
        (
            "one leg partly filled",
            GroupStatus.LIVE,
            [order("e1", filled="0.0005", amount="0.001", average="60000"), order("e2", amount="0.001")],
            2,
            GroupStatus.PARTIALLY_FILLED,
        ),
        (
            "all legs filled",
            GroupStatus.PARTIALLY_FILLED,
            [order("e1", filled="0.001", average="60000"), order("e2", filled="0.001", average="59000")],
            2,
            GroupStatus.ACTIVE,
        ),
        (
            "new pyramid on an active group",
            GroupStatus.ACTIVE,
            [
                order("e1", filled="0.001", average="60000"),
                order("p2e1", amount="0.001", pyramid=2),
            ],
            2,
            GroupStatus.PARTIALLY_FILLED,
        ),
        (
            "a rejected later leg keeps it partially filled",
            GroupStatus.PARTIALLY_FILLED,
            [order("e1", filled="0.001", average="60000"), order("e2", amount="0.001", status=REJECTED)],
            2,
            GroupStatus.PARTIALLY_FILLED,
        ),
        (
            "first pyramid entirely rejected",
            GroupStatus.LIVE,
            [order("e1", status=REJECTED), order("e2", status=REJECTED)],
            2,
            GroupStatus.FAILED,
        ),
        (
            "one leg of the first pyramid accepted",
            GroupStatus.LIVE,
            [order("e1", status=REJECTED), order("e2", amount="0.001")],
            2,
            GroupStatus.LIVE,
        ),
        (
            "TP of leg 1 filled, other legs resting",
            GroupStatus.PARTIALLY_FILLED,
            [
                order("e1", filled="0.001", average="60000"),
                order("e2", amount="0.001"),
                order("t1", OrderPurpose.TP, filled="0.001", average="60600", minute=1),
            ],
            2,
            GroupStatus.PARTIALLY_FILLED,
        ),
        (
            "every leg's TP filled",
            GroupStatus.ACTIVE,
            [
                order("e1", filled="0.001", average="60000"),
                order("t1", OrderPurpose.TP, filled="0.001", average="60600", minute=1),
            ],
            1,
            GroupStatus.CLOSED,
        ),
        (
            "closing while still held",
            GroupStatus.CLOSING,
            [
                order("e1", filled="0.001", average="60000"),
                order("x1", OrderPurpose.EXIT, amount="0.001", minute=1),
            ],
            1,
            GroupStatus.CLOSING,
        ),
        (
            "closing and everything sold, resting legs cancelled",
            GroupStatus.CLOSING,
            [
                order("e1", filled="0.001", average="60000"),
                order("e2", amount="0.001", status=CANCELLED),
                order("x1", OrderPurpose.EXIT, filled="0.001", average="59000", minute=1),
            ],
            2,
            GroupStatus.CLOSED,
        ),
        (
            "closing but a resting leg is not cancelled yet",
            GroupStatus.CLOSING,
            [
                order("e1", filled="0.001", average="60000"),
                order("e2", amount="0.001"),
                order("x1", OrderPurpose.EXIT, filled="0.001", average="59000", minute=1),
            ],
            2,
            GroupStatus.CLOSING,
        ),
        (
            "exit before any fill: all entries cancelled",
            GroupStatus.CLOSING,
            [order("e1", status=CANCELLED), order("e2", status=CANCELLED)],
            2,
            GroupStatus.CLOSED,
        ),
        (
            "dust under one step",
            GroupStatus.ACTIVE,
            [
                order("e1", filled="0.001", average="60000", fee="0.000001", fee_currency="BTC"),
                order("t1", OrderPurpose.TP, filled="0.00099", average="60600", minute=1),
            ],
            1,
            GroupStatus.CLOSED,
        ),
        (
            "dust above a step but under min notional",
            GroupStatus.ACTIVE,
            [
                order("e1", filled="0.00105", average="60000"),
                order("t1", OrderPurpose.TP, filled="0.001", average="60600", minute=1),
            ],
            1,
            GroupStatus.CLOSED,  # 0.00005 * 60000 = 3 USD < 5
        ),
        (
            "held above the minimums stays active",
            GroupStatus.ACTIVE,
            [
                order("e1", filled="0.0011", average="60000"),
                order("t1", OrderPurpose.TP, filled="0.001", average="60600", minute=1),
            ],
            1,
            GroupStatus.ACTIVE,  # 0.0001 * 60000 = 6 USD
        ),
        (
            "closed never changes",
            GroupStatus.CLOSED,
            [order("e1", filled="0.001", average="60000")],
            1,
            GroupStatus.CLOSED,
        ),
        ("failed never changes", GroupStatus.FAILED, [order("e1", amount="0.001")], 1, GroupStatus.FAILED),
    ],
)
def test_group_status_transitions(name, current, orders, total_legs, expected):
    assert status_after(current, orders, total_legs=total_legs) == expected, name


def test_dust_rule_uses_the_last_price_when_known():
    orders = [
        order("e1", filled="0.0011", average="60000"),
        order("t1", OrderPurpose.TP, filled="0.001", average="60600", minute=1),
    ]
    # 0.0001 BTC is worth 6 USD at the average but 4 USD at 40000: unsellable dust
    assert status_after(GroupStatus.ACTIVE, orders, total_legs=1, price=D("40000")) == GroupStatus.CLOSED
    assert status_after(GroupStatus.ACTIVE, orders, total_legs=1, price=D("60000")) == GroupStatus.ACTIVE


def test_failed_looks_only_at_the_given_first_pyramid():
    orders = [order("e1", status=REJECTED, pyramid=3), order("e2", status=REJECTED, pyramid=3)]
    assert status_after(GroupStatus.LIVE, orders, total_legs=2, first_pyramid=3) == GroupStatus.FAILED


# ----------------------------------------------------------------------------- property

quantities = st.decimals(D("0.001"), D("10"), places=3)
prices = st.decimals(D("0.01"), D("100000"), places=2)
quote_fees = st.decimals(D("0"), D("5"), places=4)


@given(
    buys=st.lists(st.tuples(quantities, prices, quote_fees), min_size=1, max_size=5),
    sell_prices=st.lists(st.tuples(prices, quote_fees), min_size=1, max_size=4),
    side=st.sampled_from(list(Side)),
)
def test_property_entering_then_closing_the_same_quantity_closes_with_exact_pnl(buys, sell_prices, side):
    # Given entries, then closing orders that split the same total quantity
    total = sum((q for q, _, _ in buys), D(0))
    share = (total / len(sell_prices)).quantize(D("0.001"), rounding="ROUND_DOWN")
    close_qtys = [share] * (len(sell_prices) - 1) + [total - share * (len(sell_prices) - 1)]
    orders = [
        order(f"e{i}", filled=str(q), average=str(p), fee=str(f), minute=i, side=side)
        for i, (q, p, f) in enumerate(buys)
    ]
    orders += [
        order(f"x{i}", OrderPurpose.TP, filled=str(q), average=str(p), fee=str(f), minute=10 + i, side=side)
        for i, (q, (p, f)) in enumerate(zip(close_qtys, sell_prices, strict=True))
        if q > 0
    ]
    # When recomputed
    result = figures(orders, side=side)
    # Then the group closes and realised PnL = sum((close - avg) * qty) - all fees
    avg = sum((q * p for q, p, _ in buys), D(0)) / total
    sign = 1 if side == Side.LONG else -1
    fees = sum((f for _, _, f in buys), D(0)) + sum(
        (f for q, (_, f) in zip(close_qtys, sell_prices, strict=True) if q > 0), D(0)
    )
    expected = (
        sum((sign * (p - avg) * q for q, (p, _) in zip(close_qtys, sell_prices, strict=True)), D(0)) - fees
    )
    assert result.quantity == 0
    assert abs(result.realized_pnl_usd - expected) <= D("1e-8")
    assert result.fees_usd == fees
    assert next_group_status(GroupStatus.ACTIVE, orders, result, BTC) == GroupStatus.CLOSED
