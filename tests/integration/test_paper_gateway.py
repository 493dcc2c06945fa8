"""The paper exchange over the real DynamoDB stores (moto): state survives between invocations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.models import OrderSide, OrderType, utcnow
from engine.exchange.client_ids import client_order_id
from engine.exchange.errors import OrderRefused
from engine.exchange.gateway import ExchangeGateway, OrderRequest
from engine.exchange.markets import paper_markets
from engine.exchange.paper import PaperBook, PaperGateway, PriceSource
from engine.store import PaperOrderStore, PriceStore

D = Decimal
BTC = "BTC/USDT"


def fresh_gateway(balance: str = "1000") -> PaperGateway:
    """A new gateway object each time, as each Lambda invocation builds its own."""
    return PaperGateway(
        "binance",
        book=PaperOrderStore(),
        prices=PriceStore(),
        fee_percent=D("0.1"),
        balance_usd=D(balance),
        markets=paper_markets(),
    )


def order(name: str, side: str, type_: str, amount: str, price: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id(name), BTC, OrderSide(side), OrderType(type_), D(amount), D(price) if price else None
    )


@pytest.fixture
def prices(dynamodb) -> PriceStore:
    store = PriceStore()
    store.set("binance", BTC, D("60000"), utcnow())
    return store


def test_store_implementations_satisfy_the_exchange_protocols(dynamodb):
    assert isinstance(PaperOrderStore(), PaperBook)
    assert isinstance(PriceStore(), PriceSource)
    assert isinstance(fresh_gateway(), ExchangeGateway)


def test_dca_grid_and_take_profit_along_a_price_path(prices):
    # Given a DCA grid of three limit buys placed in one invocation
    grid = [("leg0", "59700.00"), ("leg1", "59400.00"), ("leg2", "58800.00")]
    for name, price in grid:
        placed = fresh_gateway().create_order(order(name, "buy", "limit", "0.00500", price))
        assert placed.status == "open"

    # When the price walks down to 59300 and back up (one sync invocation per price)
    for price in ["59800", "59650", "59300", "60500"]:
        prices.set("binance", BTC, D(price), utcnow())
        fresh_gateway().match()

    # Then the two crossed legs filled at their limits and the deepest still rests
    gw = fresh_gateway()
    legs = {name: gw.fetch_order(client_order_id(name), BTC) for name, _ in grid}
    leg0, leg1, leg2 = (legs[name] for name, _ in grid)
    assert leg0 is not None and (leg0.status, leg0.average) == ("closed", D("59700.00"))
    assert leg1 is not None and (leg1.status, leg1.average) == ("closed", D("59400.00"))
    assert leg2 is not None and (leg2.status, leg2.filled) == ("open", 0)
    # quote paid: notional + 0.1 % fee of both fills; BTC received exactly (no float drift)
    paid = (D("0.005") * D("59700") + D("0.005") * D("59400")) * D("1.001")
    balances = gw.fetch_balance()
    assert balances == {"USDT": D(1000) - paid, "BTC": D("0.01000")}

    # When a take-profit sells the position above the market and the price reaches it
    tp = gw.create_order(order("tp", "sell", "limit", "0.01", "60600"))
    assert tp.status == "open"
    prices.set("binance", BTC, D("60650"), utcnow())
    assert [o.client_order_id for o in fresh_gateway().fetch_open_orders(BTC)] == [client_order_id("leg2")]

    # Then the TP filled at its limit and the proceeds minus fee are back in USDT
    filled_tp = fresh_gateway().fetch_order(client_order_id("tp"), BTC)
    assert filled_tp is not None
    assert (filled_tp.status, filled_tp.average, filled_tp.fee_currency) == ("closed", D("60600"), "USDT")
    assert fresh_gateway().fetch_balance() == {"USDT": D(1000) - paid + D("606") - D("0.606")}
    closed = fresh_gateway().fetch_closed_orders(BTC)
    assert {o.client_order_id for o in closed} == {client_order_id(n) for n in ("leg0", "leg1", "tp")}


def test_create_is_idempotent_across_invocations(prices):
    first = fresh_gateway().create_order(order("m1", "buy", "market", "0.001"))

    again = fresh_gateway().create_order(order("m1", "buy", "market", "0.001"))

    assert again == first
    assert fresh_gateway().fetch_balance() == {"USDT": D(1000) - D("60.06"), "BTC": D("0.001")}
    assert len(PaperOrderStore().list_all("binance")) == 1


def test_reservations_and_cancels_persist(prices):
    fresh_gateway(balance="700").create_order(order("b1", "buy", "limit", "0.01", "59000"))

    with pytest.raises(OrderRefused) as caught:
        fresh_gateway(balance="700").create_order(order("b2", "buy", "limit", "0.01", "59000"))
    assert caught.value.error == "InsufficientFunds"

    cancelled = fresh_gateway(balance="700").cancel_order(client_order_id("b1"), BTC)
    assert cancelled is not None and cancelled.status == "canceled"
    assert (
        fresh_gateway(balance="700").create_order(order("b2", "buy", "limit", "0.01", "59000")).status
        == "open"
    )


def test_partial_fills_progress_one_step_per_sync(prices):
    def gateway() -> PaperGateway:
        return PaperGateway(
            "binance",
            book=PaperOrderStore(),
            prices=PriceStore(),
            fee_percent=D("0.1"),
            balance_usd=D(1000),
            markets=paper_markets(),
            partial_fill_ratio=D("0.5"),
        )

    gateway().create_order(order("p1", "buy", "limit", "0.004", "59000"))
    prices.set("binance", BTC, D("58000"), utcnow())

    filled = []
    for _ in range(3):
        gateway().match(BTC)
        stored = PaperOrderStore().get("binance", client_order_id("p1"))
        assert stored is not None
        filled.append(stored.filled)

    assert filled == [D("0.002"), D("0.003"), D("0.0035")]
