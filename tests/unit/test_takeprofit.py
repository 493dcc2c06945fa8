"""Take-profit math (DESIGN §3.4)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.models import Order, OrderPurpose, OrderSide, OrderStatus, OrderType, Side, TpMode
from engine.domain.money import on_increment
from engine.domain.takeprofit import (
    aggregate_trigger_price,
    aggregate_triggered,
    leg_tp_shortfall,
    pyramid_aggregate_triggered,
    resize_tps,
    tp_mode_uses_aggregate,
    tp_mode_uses_leg_tps,
    tp_mode_uses_pyramid_aggregate,
    tp_price,
)

D = Decimal
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
TICK = D("0.01")
STEP = D("0.00001")


def order(
    oid: str,
    purpose: OrderPurpose = OrderPurpose.TP,
    *,
    amount: str = "1",
    filled: str = "0",
    average: str | None = None,
    status: OrderStatus = OrderStatus.OPEN,
    fee: str = "0",
    fee_currency: str = "USDT",
    pyramid: int | None = 1,
    order_type: OrderType = OrderType.LIMIT,
    minute: int = 0,
    cancel_requested: bool = False,
) -> Order:
    at = T0 + timedelta(minutes=minute)
    return Order(
        id=oid,
        group_id="g1",
        exchange="binance",
        symbol="BTC/USDT",
        purpose=purpose,
        side=OrderSide.BUY if purpose == OrderPurpose.ENTRY else OrderSide.SELL,
        type=order_type,
        amount=D(amount),
        price=D(average) if average else None,
        client_order_id=f"c-{oid}",
        status=status,
        pyramid=pyramid,
        filled=D(filled),
        average=D(average) if average else None,
        fee_cost=D(fee),
        fee_currency=fee_currency,
        cancel_requested=cancel_requested,
        created_at=at,
        updated_at=at,
        last_fill_at=at if D(filled) > 0 else None,
    )


@pytest.mark.parametrize(
    ("side", "avg", "percent", "expected"),
    [
        (Side.LONG, "64000.50", "1", "64640.51"),  # 64640.505 up
        (Side.LONG, "63680.49", "0.5", "63998.90"),  # 63998.89245 up (never under +0.5 %)
        (Side.LONG, "63680.49", "0", "63680.49"),
        (Side.SHORT, "64000.50", "1", "63360.49"),  # 63360.495 down (never under -1 %)
        (Side.SHORT, "66560.52", "0.5", "66227.71"),  # 66227.7174 down
    ],
)
def test_tp_price_from_the_actual_fill_never_under_its_percent(side, avg, percent, expected):
    assert tp_price(side, D(avg), D(percent), TICK) == D(expected)


def test_tp_price_must_stay_positive():
    with pytest.raises(ValueError):
        tp_price(Side.SHORT, D("10"), D("100"), TICK)


ENTRY_FILLED = {"purpose": OrderPurpose.ENTRY, "status": OrderStatus.FILLED, "average": "64000.5"}


@pytest.mark.parametrize(
    ("name", "entry", "tps", "shortfall"),
    [
        ("no TP yet", {"amount": "0.00062", "filled": "0.00062"}, [], "0.00062"),
        (
            "partial fill, then it grew",
            {"amount": "0.00062", "filled": "0.0005", "status": OrderStatus.PARTIALLY_FILLED},
            [{"amount": "0.0003"}],
            "0.0002",
        ),
        (
            "fully covered by a live TP",
            {"amount": "0.00062", "filled": "0.00062"},
            [{"amount": "0.00062"}],
            "0",
        ),
        (
            "a live partly filled TP covers its whole amount",
            {"amount": "0.00062", "filled": "0.00062"},
            [{"amount": "0.00062", "filled": "0.0003", "status": OrderStatus.PARTIALLY_FILLED}],
            "0",
        ),
        (
            "a cancelled TP covers only what it filled",
            {"amount": "0.00062", "filled": "0.00062"},
            [{"amount": "0.00062", "filled": "0.0002", "status": OrderStatus.CANCELLED}],
            "0.00042",
        ),
        (
            "a rejected TP covers nothing",
            {"amount": "0.00062", "filled": "0.00062"},
            [{"amount": "0.00062", "status": OrderStatus.REJECTED}],
            "0.00062",
        ),
        (
            "base-coin fee is not held",
            {"amount": "0.001", "filled": "0.001", "fee": "0.000001", "fee_currency": "BTC"},
            [],
            "0.00099",  # 0.000999 rounded down to the step
        ),
        ("nothing filled", {"amount": "0.001", "status": OrderStatus.OPEN}, [], "0"),
        ("over-covered", {"amount": "0.001", "filled": "0.001"}, [{"amount": "0.002"}], "0"),
    ],
)
def test_leg_tp_shortfall(name, entry, tps, shortfall):
    entry_leg = order("e1", **{**ENTRY_FILLED, **entry})
    tp_orders = [order(f"t{i}", **tp) for i, tp in enumerate(tps)]
    assert leg_tp_shortfall(entry_leg, tp_orders, STEP) == D(shortfall), name


@pytest.mark.parametrize(
    ("side", "avg", "price", "percent", "triggered"),
    [
        (Side.LONG, "100", "101", "1", True),
        (Side.LONG, "100", "100.99", "1", False),
        (Side.LONG, "100", "120", "1", True),
        (Side.SHORT, "100", "99", "1", True),
        (Side.SHORT, "100", "99.01", "1", False),
        (Side.LONG, "0", "1", "1", False),  # nothing held: no average
    ],
)
def test_aggregate_triggered(side, avg, price, percent, triggered):
    assert aggregate_triggered(side, D(avg), D(price), D(percent)) is triggered


def test_aggregate_trigger_price():
    assert aggregate_trigger_price(Side.LONG, D("100"), D("1.5")) == D("101.5")
    assert aggregate_trigger_price(Side.SHORT, D("100"), D("1.5")) == D("98.5")


def pyramids_orders(side_entry: OrderPurpose = OrderPurpose.ENTRY) -> list[Order]:
    return [
        order(
            "p1e1", side_entry, amount="1", filled="1", average="100", status=OrderStatus.FILLED, pyramid=1
        ),
        order(
            "p2e1",
            side_entry,
            amount="1",
            filled="1",
            average="80",
            status=OrderStatus.FILLED,
            pyramid=2,
            minute=1,
        ),
    ]


@pytest.mark.parametrize(
    ("price", "triggered"), [("80.79", []), ("80.80", [2]), ("100.99", [2]), ("101", [1, 2])]
)
def test_pyramid_aggregate_uses_each_pyramids_own_average(price, triggered):
    result = pyramid_aggregate_triggered(pyramids_orders(), Side.LONG, D(price), D("1"), "BTC")
    assert result == triggered


def test_pyramid_aggregate_skips_closed_pyramids_and_closes_in_flight():
    orders = pyramids_orders()
    # pyramid 2 sold out; pyramid 1 has its market close in flight
    orders.append(
        order("p2t", amount="1", filled="1", average="81", status=OrderStatus.FILLED, pyramid=2, minute=2)
    )
    orders.append(
        order("p1t", amount="1", order_type=OrderType.MARKET, status=OrderStatus.PENDING, pyramid=1)
    )
    assert pyramid_aggregate_triggered(orders, Side.LONG, D("200"), D("1"), "BTC") == []


def test_pyramid_aggregate_short():
    result = pyramid_aggregate_triggered(pyramids_orders(), Side.SHORT, D("79.2"), D("1"), "BTC")
    assert result == [1, 2]
    assert pyramid_aggregate_triggered(pyramids_orders(), Side.SHORT, D("99"), D("1"), "BTC") == [1]


@pytest.mark.parametrize(
    ("mode", "leg_tps", "aggregate", "pyramid_aggregate"),
    [
        (TpMode.PER_LEG, True, False, False),
        (TpMode.AGGREGATE, False, True, False),
        (TpMode.HYBRID, True, True, False),
        (TpMode.PYRAMID_AGGREGATE, False, False, True),
    ],
)
def test_tp_modes(mode, leg_tps, aggregate, pyramid_aggregate):
    assert tp_mode_uses_leg_tps(mode) is leg_tps
    assert tp_mode_uses_aggregate(mode) is aggregate
    assert tp_mode_uses_pyramid_aggregate(mode) is pyramid_aggregate


def two_tps() -> list[Order]:
    return [order("old", amount="0.5", minute=0), order("new", amount="0.5", minute=1)]


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [
        ("1", []),
        ("2", []),
        ("0.7", [("new", "0.2")]),
        ("0.5", [("new", "0")]),
        ("0.3", [("new", "0"), ("old", "0.3")]),
        ("0", [("new", "0"), ("old", "0")]),
        ("0.70005", [("new", "0.20005")]),
    ],
)
def test_resize_tps_shrinks_newest_first(remaining, expected):
    changes = resize_tps(two_tps(), D(remaining), STEP)
    assert [(tp.id, amount) for tp, amount in changes] == [(oid, D(qty)) for oid, qty in expected]


def test_resize_tps_counts_only_the_unfilled_part_of_live_orders():
    tps = [
        order("part", amount="0.5", filled="0.3", status=OrderStatus.PARTIALLY_FILLED, minute=0),
        order("gone", amount="0.5", status=OrderStatus.CANCELLED, minute=1),
        order("cancelling", amount="0.5", cancel_requested=True, minute=2),
        order("live", amount="0.5", minute=3),
    ]
    # open: part 0.2 + live 0.5 = 0.7 against 0.6 held
    assert [(tp.id, qty) for tp, qty in resize_tps(tps, D("0.6"), STEP)] == [("live", D("0.4"))]


@given(
    st.lists(
        st.tuples(st.decimals(D("0.001"), D("5"), places=3), st.decimals(D("0"), D("1"), places=2)),
        min_size=1,
        max_size=6,
    ),
    st.decimals(D("0"), D("20"), places=5),
)
def test_property_resized_tps_never_exceed_the_remaining_quantity(specs, remaining):
    tps = []
    for i, (amount, filled_share) in enumerate(specs):
        filled = (amount * filled_share).quantize(D("0.001"))
        status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
        tps.append(order(f"t{i}", amount=str(amount), filled=str(filled), status=status, minute=i))
    changes = dict((tp.id, qty) for tp, qty in resize_tps(tps, remaining, D("0.001")))
    open_after = [changes.get(tp.id, tp.remaining) for tp in tps]
    assert sum(open_after, D(0)) <= remaining
    for tp, qty in zip(tps, open_after, strict=True):
        assert D(0) <= qty <= tp.remaining
        assert on_increment(qty, D("0.001"))
