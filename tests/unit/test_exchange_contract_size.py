"""Swap contract size at the gateway boundary (DESIGN §3.5, issue 12 finding 14): the engine speaks the base
coin, ccxt's amounts for a contract market are contracts of ``contractSize`` base coin each."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.domain.models import MarketPrecision, OrderSide, OrderType
from engine.exchange.ccxt_gateway import CcxtGateway
from engine.exchange.gateway import OrderRequest
from engine.exchange.markets import paper_markets
from tests.support.fake_exchange import FakeCcxtClient

D = Decimal
CID = "0123456789abcdef0123456789abcdef"
PERP = "BTC/USDT:USDT"


def okx_perp(contract_size: float = 0.01) -> dict[str, Any]:
    """okx's BTC-USDT-SWAP as ccxt describes it: 0.01 BTC per contract, lots of 0.01 contracts."""
    return {
        "symbol": PERP,
        "type": "swap",
        "contract": True,
        "linear": True,
        "contractSize": contract_size,
        "active": True,
        "precision": {"price": 0.1, "amount": 0.01},
        "limits": {"amount": {"min": 0.01, "max": None}, "cost": {"min": None, "max": None}},
    }


def swap_gateway(client: FakeCcxtClient) -> CcxtGateway:
    return CcxtGateway("okx", client=client, market_type="swap", sleep=lambda _s: None)


def client_with_perp() -> FakeCcxtClient:
    client = FakeCcxtClient()
    client.markets = {PERP: okx_perp()}
    return client


def buy(amount: str, symbol: str = PERP) -> OrderRequest:
    return OrderRequest(CID, symbol, OrderSide.BUY, OrderType.LIMIT, D(amount), D("60000"))


def test_a_swap_markets_step_and_minimum_are_read_in_the_base_coin() -> None:
    # Given okx's perpetual: lots of 0.01 contracts of 0.01 BTC
    gateway = swap_gateway(client_with_perp())
    # When a swap account loads its markets
    [market] = gateway.load_markets()
    # Then step and minimum are in BTC (0.0001) and the contract size is carried for the conversions
    assert market == MarketPrecision(PERP, D("0.1"), D("0.0001"), D("0.0001"), D(0), contract_size=D("0.01"))


def test_an_order_for_a_swap_is_sent_in_contracts_and_read_back_in_the_base_coin() -> None:
    # Given a swap account on okx's perpetual
    client = client_with_perp()
    gateway = swap_gateway(client)
    # When the engine buys 0.0025 BTC
    order = gateway.create_order(buy("0.0025"))
    # Then ccxt is asked for 0.25 contracts, and the answer reads 0.0025 BTC
    [(_, args)] = [call for call in client.calls if call[0] == "create_order"]
    assert D(str(args[3])) == D("0.25")
    assert (order.amount, order.filled) == (D("0.0025"), 0)


def test_a_swap_fill_is_read_back_in_the_base_coin() -> None:
    # Given a swap order of 0.25 contracts that filled at 60000 (ccxt's cost counts contractSize)
    client = client_with_perp()
    gateway = swap_gateway(client)
    gateway.create_order(buy("0.0025"))
    client.orders[CID].update(
        filled=0.25, average=60000.0, cost=150.0, status="closed", fee={"cost": 0.06, "currency": "USDT"}
    )
    # When the order is read back (by client id, and in the open/closed listings)
    fetched = gateway.fetch_order(CID, PERP)
    [closed] = gateway.fetch_closed_orders(PERP)
    # Then amount and filled are BTC, while price, cost and the USDT fee are as ccxt gave them
    assert fetched is not None
    for order in (fetched, closed):
        assert (order.amount, order.filled, order.average, order.cost) == (
            D("0.0025"),
            D("0.0025"),
            D("60000.0"),
            D("150.0"),
        )
        assert (order.fee_cost, order.fee_currency) == (D("0.06"), "USDT")


def test_a_swap_account_loads_the_markets_once_to_learn_a_contract_size() -> None:
    # Given a swap gateway whose ccxt client has not loaded its markets yet
    client = FakeCcxtClient()
    client.script["load_markets"] = [{PERP: okx_perp()}]
    gateway = swap_gateway(client)
    # When it sends two orders
    gateway.create_order(buy("0.0025"))
    gateway.create_order(OrderRequest("f" * 32, PERP, OrderSide.BUY, OrderType.MARKET, D("0.01")))
    # Then ccxt's markets were read once (its cache), and the second order went out as 1 contract
    assert client.count("load_markets") == 1
    assert D(str(client.calls[-1][1][3])) == D("1")


def test_a_spot_account_never_converts_nor_reads_markets() -> None:
    # Given a spot account whose ccxt market even states a contract size
    client = FakeCcxtClient()
    client.markets = {"BTC/USDT": {**okx_perp(), "symbol": "BTC/USDT", "type": "spot"}}
    gateway = CcxtGateway("okx", client=client, sleep=lambda _s: None)
    # When it buys 0.0025 BTC, then 0.0025 is sent as is and no markets call is made
    order = gateway.create_order(buy("0.0025", "BTC/USDT"))
    assert D(str(client.calls[-1][1][3])) == D("0.0025") and order.amount == D("0.0025")
    assert client.count("load_markets") == 0


def test_a_market_without_contracts_counts_as_one_base_coin() -> None:
    # Given a swap account and a symbol whose ccxt market is not a contract (or unknown)
    client = FakeCcxtClient()
    gateway = swap_gateway(client)
    # When an order goes out, then its amount is unchanged
    gateway.create_order(buy("0.0025", "ETH/USDT:USDT"))
    assert D(str(client.calls[-1][1][3])) == D("0.0025")


def test_paper_swap_markets_carry_their_contract_size() -> None:
    # Given engine.paper.markets with a perpetual of 0.01 BTC per contract (rules in the base coin)
    class Rules:
        tick, step, min_qty, min_notional, contract_size = D("0.1"), D("0.0001"), D("0.0001"), D(5), D("0.01")

    # When the paper exchange's table is built, then the market carries the contract size
    markets = paper_markets({PERP: Rules()})
    assert markets[PERP].contract_size == D("0.01")
    # And the built-in spot markets count one base coin per unit
    assert markets["BTC/USDT"].contract_size == D(1)
