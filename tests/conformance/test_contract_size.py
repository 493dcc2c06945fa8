"""Swap contract size through the real ccxt okx class (HTTP faked): okx's BTC-USDT-SWAP is 0.01 BTC per
contract, and ccxt's amounts for it are contracts (DESIGN §3.5, issue 12 finding 14)."""

from __future__ import annotations

from decimal import Decimal

from engine.domain.models import OrderSide, OrderType
from engine.exchange.gateway import OrderRequest
from tests.conformance.venues import CID, Fill, Okx

PERP = "BTC/USDT:USDT"


def test_okx_swap_orders_go_out_in_contracts_and_fills_come_back_in_btc() -> None:
    # Given an okx swap account that knows its markets and accepts the order
    okx = Okx("swap")
    okx.gateway.load_markets()
    okx.serve_create()
    # When the engine buys 0.0025 BTC of the perpetual
    order = okx.gateway.create_order(
        OrderRequest(CID, PERP, OrderSide.BUY, OrderType.LIMIT, Decimal("0.0025"), Decimal("60000"))
    )
    # Then okx is asked for 0.25 contracts (sz) and the answer reads 0.0025 BTC
    [sent] = okx.creates()
    assert Decimal(sent.params["sz"]) == Decimal("0.25")
    assert order.amount == Decimal("0.0025")
    # And when okx reports the order filled (0.25 contracts at 60000), it reads 0.0025 BTC filled
    filled = okx.order("filled", Fill("0.25", "60000", "0.06", "USDT"), amount="0.25", price="60000")
    filled.update(instId="BTC-USDT-SWAP", instType="SWAP")
    okx.serve_order(filled)
    found = okx.gateway.fetch_order(CID, PERP)
    assert found is not None
    btc = Decimal("0.0025")
    assert (found.amount, found.filled, found.average) == (btc, btc, Decimal(60000))
    assert not okx.http.unrouted
