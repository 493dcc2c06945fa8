"""The engine's position, recomputed from what the gateway reads through the real ccxt classes, matches
what the exchange holds (DESIGN §3.5: held = fills - fees paid in the base coin).

The gateway's ``ExchangeOrder`` is recorded on the engine's ``Order`` exactly as the executor and
order sync record it (``engine.app.execution.apply_exchange_order``), then ``compute_figures`` gives the
held quantity, compared with the exchange's balance as ccxt parses it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine.app.execution import apply_exchange_order
from engine.domain.accounting import compute_figures
from engine.domain.models import ExchangeOrder, Order, OrderPurpose, OrderSide, OrderStatus, OrderType, Side
from engine.exchange.gateway import OrderRequest
from tests.conformance.venues import CID, Binance, Bybit, Fill

BUY = OrderRequest(CID, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal("0.002"), Decimal("30000"))


def engine_order(ex: ExchangeOrder) -> Order:
    order = Order(
        id="order-1",
        group_id="group-1",
        exchange=ex.exchange,
        symbol=ex.symbol,
        purpose=OrderPurpose.ENTRY,
        side=ex.side,
        type=ex.type,
        amount=ex.amount,
        price=ex.price,
        client_order_id=ex.client_order_id,
        status=OrderStatus.PENDING,
    )
    apply_exchange_order(order, ex, datetime(2026, 3, 2, tzinfo=UTC))
    return order


def held_by_engine(order: Order) -> Decimal:
    figures = compute_figures([order], side=Side.LONG, base_currency="BTC", price=None, total_legs=1)
    return figures.quantity


def test_bybit_partially_filled_then_cancelled_leg_matches_the_btc_held() -> None:
    # Given a 0.002 BTC buy that filled 0.001 (fee 0.000001 BTC) and was then cancelled on bybit
    bybit = Bybit()
    bybit.serve_create()
    bybit.gateway.create_order(BUY)
    bybit.serve_order(bybit.order("canceled", Fill("0.001", "30000", "0.000001", "BTC")))
    bybit.serve_balance({"BTC": "0.000999", "USDT": "970"})
    # When the engine records what the gateway reads
    order = engine_order(read(bybit.gateway.fetch_order(CID, "BTC/USDT")))
    # Then the leg is cancelled with its partial fill, not filled
    assert order.status is OrderStatus.CANCELLED and order.filled == Decimal("0.001")
    figures = compute_figures([order], side=Side.LONG, base_currency="BTC", price=None, total_legs=1)
    assert figures.filled_legs == 0
    # And the engine holds exactly what bybit holds
    assert held_by_engine(order) == bybit.gateway.fetch_balance()["BTC"] == Decimal("0.000999")


def test_binance_fill_with_a_btc_commission_matches_the_btc_held() -> None:
    # Given a 0.002 BTC buy that rested, then filled in two trades paying 0.000001 BTC each
    binance = Binance()
    binance.serve_create()
    binance.gateway.create_order(BUY)
    binance.serve_order(binance.order("filled", Fill("0.002", "30010")))
    binance.serve_trades(Fill("0.001", "30000", "0.000001", "BTC"), Fill("0.001", "30020", "0.000001", "BTC"))
    binance.serve_balance({"BTC": "0.001998", "USDT": "939.98"})
    # When the engine records what the gateway reads
    order = engine_order(read(binance.gateway.fetch_order(CID, "BTC/USDT")))
    # Then the engine holds what binance holds: the fill less the BTC commissions
    assert order.status is OrderStatus.FILLED
    assert held_by_engine(order) == binance.gateway.fetch_balance()["BTC"] == Decimal("0.001998")


def read(order: ExchangeOrder | None) -> ExchangeOrder:
    assert order is not None, "the exchange has the order"
    return order
