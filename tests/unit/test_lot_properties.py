"""Lot accounting invariants as properties (DESIGN §3.5)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.accounting import compute_figures, lots_held, pyramid_figures
from engine.domain.models import Fill, Order, OrderPurpose, OrderSide, OrderStatus, OrderType, Side
from engine.domain.money import round_down, round_up
from engine.domain.takeprofit import aggregate_trigger_price, tp_price

D = Decimal
T0 = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
STEP = D("0.001")
TICK = D("0.01")
FEE_RATE = D("0.001")
BNB_USD = D("600")


def _order(
    oid: str, purpose: OrderPurpose, qty: Decimal, price: Decimal, minute: int, **extra: object
) -> Order:
    at = T0 + timedelta(minutes=minute)
    fee, currency, fee_usd = extra.pop("fee", (D(0), "USDT", D(0)))  # type: ignore[misc]
    return Order(
        id=oid,
        group_id="g",
        exchange="binance",
        symbol="BTC/USDT",
        purpose=purpose,
        side=OrderSide.BUY if purpose == OrderPurpose.ENTRY else OrderSide.SELL,
        type=OrderType.LIMIT,
        amount=qty,
        price=price,
        client_order_id=oid,
        status=OrderStatus.FILLED,
        filled=qty,
        average=price,
        cost=qty * price,
        fee_cost=fee,
        fee_currency=currency,
        fee_usd=fee_usd,
        created_at=at,
        updated_at=at,
        last_fill_at=at,
        fills=[Fill(qty, price, at, fee, currency, fee_usd)],
        **extra,  # type: ignore[arg-type]
    )


def _fee(kind: str, qty: Decimal, price: Decimal) -> tuple[Decimal, str, Decimal]:
    usd = qty * price * FEE_RATE
    if kind == "base":
        return qty * FEE_RATE, "BTC", usd
    if kind == "bnb":
        return usd / BNB_USD, "BNB", usd
    return usd, "USDT", usd


def _figures(orders: list[Order], price: Decimal | None = None):
    return compute_figures(orders, side=Side.LONG, base_currency="BTC", price=price, total_legs=0)


prices = st.decimals(D("50"), D("150"), places=2)
legs = st.lists(
    st.tuples(st.integers(1, 3000), prices, st.sampled_from(["quote", "base", "bnb"]), st.integers(1, 2)),
    min_size=1,
    max_size=6,
)
closes = st.lists(
    st.tuples(
        st.sampled_from(["leg_tp", "risk", "pyramid_tp"]),
        st.integers(0, 5),
        st.decimals(D("0.1"), D("1"), places=2),
        prices,
        st.sampled_from(["quote", "bnb"]),
        st.integers(0, 2000),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(legs=legs, closes=closes, exit_price=prices)
def test_once_closed_realised_is_proceeds_minus_costs_minus_non_base_fees(legs, closes, exit_price):
    orders: list[Order] = []
    costs = non_base_fees = proceeds = D(0)
    for index, (units, price, kind, pyramid) in enumerate(legs):
        qty = units * STEP
        fee = _fee(kind, qty, price)
        orders.append(_order(f"e{index}", OrderPurpose.ENTRY, qty, price, index, fee=fee, pyramid=pyramid))
        costs += qty * price
        non_base_fees += fee[2] if kind != "base" else D(0)
    minute = 10
    for number, (kind, leg, share, price, fee_kind, spread) in enumerate(closes):
        held = lots_held(orders, Side.LONG, "BTC")
        entry = orders[leg % len(legs)]
        extra: dict[str, object] = {}
        if kind == "leg_tp":
            available = held.get(entry.id, D(0))
            extra["parent_order_id"], extra["pyramid"] = entry.id, entry.pyramid
            purpose = OrderPurpose.TP
        elif kind == "pyramid_tp":
            available = pyramid_figures(orders, Side.LONG, "BTC")[entry.pyramid or 1].quantity
            extra["pyramid"] = entry.pyramid
            purpose = OrderPurpose.TP
        else:
            available = _figures(orders).quantity
            extra["pyramid"] = None
            purpose = OrderPurpose.RISK_CLOSE
        qty = round_down(available * share, STEP)
        if qty <= 0:
            continue
        fee = _fee(fee_kind, qty, price)
        minute += 1 + spread  # some closes fall on the next UTC day
        orders.append(_order(f"c{number}", purpose, qty, price, minute, fee=fee, **extra))
        proceeds += qty * price
        non_base_fees += fee[2]
    rest = round_down(_figures(orders).quantity, STEP)
    if rest > 0:
        fee = _fee("quote", rest, exit_price)
        orders.append(_order("x", OrderPurpose.EXIT, rest, exit_price, minute + 1, fee=fee, pyramid=None))
        proceeds += rest * exit_price
        non_base_fees += fee[2]
    result = _figures(orders)
    # Once closed (less than one step held) ...
    assert result.quantity < STEP
    # ... realised = proceeds - costs - quote/third-coin fees, within one step x price
    expected = proceeds - costs - non_base_fees
    assert abs(result.realized_pnl_usd - expected) <= STEP * D("150") * D("1.01")
    # and the daily figures add up to the group's total
    assert abs(sum(result.realized_by_day.values(), D(0)) - result.realized_pnl_usd) <= D("1e-12")


@settings(max_examples=60, deadline=None)
@given(
    legs=st.lists(
        st.tuples(st.integers(1, 3000), prices, st.integers(1, 2), st.decimals(D("0.1"), D("3"), places=1)),
        min_size=1,
        max_size=6,
    ),
    leg_tps=st.lists(st.tuples(st.integers(0, 5), st.decimals(D("0.1"), D("1"), places=2)), max_size=4),
    finish=st.sampled_from(["aggregate", "pyramid_aggregate", "none"]),
    agg_percent=st.decimals(D("0.1"), D("3"), places=1),
    overshoot=st.decimals(D("0"), D("5"), places=2),
)
def test_no_percent_take_profit_realises_a_loss_before_fees(legs, leg_tps, finish, agg_percent, overshoot):
    orders = [
        _order(f"e{i}", OrderPurpose.ENTRY, units * STEP, price, i, pyramid=pyramid)
        for i, (units, price, pyramid, _) in enumerate(legs)
    ]
    minute = 10

    def realised() -> Decimal:
        return _figures(orders).realized_pnl_usd

    # per-leg (and hybrid's legs): each TP at its leg's percent over the leg's own fill
    for number, (leg, share) in enumerate(leg_tps):
        index = leg % len(legs)
        entry = orders[index]
        qty = round_down(lots_held(orders, Side.LONG, "BTC").get(entry.id, D(0)) * share, STEP)
        if qty <= 0:
            continue
        sell = tp_price(Side.LONG, entry.average or D(0), legs[index][3], TICK)
        before = realised()
        minute += 1
        orders.append(
            _order(
                f"t{number}",
                OrderPurpose.TP,
                qty,
                sell,
                minute,
                parent_order_id=entry.id,
                pyramid=entry.pyramid,
            )
        )
        assert realised() - before >= 0
    # aggregate / hybrid: on the remaining lots' average; pyramid_aggregate: on pyramid 1's own lots
    if finish == "aggregate":
        figures = _figures(orders)
        qty, avg, pyramid = round_down(figures.quantity, STEP), figures.avg_entry, None
    elif finish == "pyramid_aggregate":
        own = pyramid_figures(orders, Side.LONG, "BTC").get(1)
        if own is None:
            return
        qty, avg, pyramid = round_down(own.quantity, STEP), own.avg_entry, 1
    else:
        return
    if qty <= 0:
        return
    price = round_up(aggregate_trigger_price(Side.LONG, avg, agg_percent), TICK) + overshoot
    before = realised()
    orders.append(_order("agg", OrderPurpose.TP, qty, price, minute + 1, pyramid=pyramid))
    assert realised() - before >= 0
