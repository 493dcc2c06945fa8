"""Markets, create, fetch and cancel by client id through the real ccxt classes (HTTP faked)."""

from __future__ import annotations

from decimal import Decimal

from engine.domain.models import MarketPrecision, OrderSide, OrderType
from engine.exchange.gateway import OrderRequest
from tests.conformance.venues import CID, Fill, Venue

PRECISION = {
    "binance": MarketPrecision(
        "BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal(5)
    ),
    "bybit": MarketPrecision(
        "BTC/USDT", Decimal("0.01"), Decimal("0.000001"), Decimal("0.000048"), Decimal(1)
    ),
    "okx": MarketPrecision("BTC/USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"), Decimal(0)),
}


def limit_buy(amount: str = "0.002", price: str = "30000") -> OrderRequest:
    return OrderRequest(CID, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal(amount), Decimal(price))


def test_markets_give_tick_step_and_minimums_of_the_spot_market(venue: Venue) -> None:
    # Given the exchange's instrument list (one spot BTC/USDT, plus contracts of other types)
    # When the gateway loads the markets of its spot account
    markets = venue.gateway.load_markets()
    # Then BTC/USDT comes back with the exchange's tick, step and minimums, and nothing else
    assert markets == [PRECISION[venue.name]]


SWAP_PRECISION = {
    "binance": MarketPrecision(
        "BTC/USDT:USDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal(100)
    ),
    "bybit": MarketPrecision("BTC/USDT:USDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"), Decimal(5)),
    # okx: lots of 0.01 contracts of 0.01 BTC, read in BTC with the contract size carried
    "okx": MarketPrecision(
        "BTC/USDT:USDT",
        Decimal("0.1"),
        Decimal("0.0001"),
        Decimal("0.0001"),
        Decimal(0),
        contract_size=Decimal("0.01"),
    ),
}


def test_markets_of_a_swap_account_give_the_perpetual_contract_rules(venue: Venue) -> None:
    # Given the same instrument lists, read by a swap account
    swap = type(venue)("swap")
    # When the gateway loads its markets
    markets = swap.gateway.load_markets()
    # Then only the USDT perpetual comes back, with its own tick and step (in the base coin)
    assert markets == [SWAP_PRECISION[venue.name]]
    assert not swap.http.unrouted


def test_create_sends_our_client_id_in_the_native_field_and_exact_strings(venue: Venue) -> None:
    # Given an exchange that accepts the order
    venue.serve_create()
    # When a limit buy is placed
    order = venue.gateway.create_order(limit_buy("0.002", "30000.5"))
    # Then one create went out with our client id in the exchange's own field and exact numbers
    [sent] = venue.creates()
    spec = venue.spec
    assert sent.params[spec.client_id_field] == CID
    assert Decimal(sent.params[spec.amount_field]) == Decimal("0.002")
    assert Decimal(sent.params[spec.price_field]) == Decimal("30000.5")
    assert sent.params["side"] == spec.side_buy
    assert (
        sent.params[{"binance": "type", "bybit": "orderType", "okx": "ordType"}[venue.name]]
        == spec.type_limit
    )
    # And the answer is our open order with the exchange's id
    assert (order.client_order_id, order.status, order.filled) == (CID, "open", 0)
    assert order.id and order.symbol == "BTC/USDT" and order.side is OrderSide.BUY
    assert order.amount == Decimal("0.002")


def test_fetch_by_client_id_reports_a_partial_fill_with_average_and_fee(venue: Venue) -> None:
    # Given an order half filled at 30010 that paid 0.000001 BTC
    fill = Fill("0.001", "30010", "0.000001", "BTC")
    venue.serve_order(venue.order("partial", fill))
    if venue.name == "binance":
        venue.serve_trades(fill)
    # When it is fetched by client id
    order = venue.gateway.fetch_order(CID, "BTC/USDT")
    # Then fill, average and fee are the exchange's
    assert order is not None
    assert (order.client_order_id, order.status) == (CID, "open")
    assert (order.filled, order.average, order.amount) == (
        Decimal("0.001"),
        Decimal("30010"),
        Decimal("0.002"),
    )
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.000001"), "BTC")


def test_fetch_of_an_order_the_exchange_does_not_know_is_none(venue: Venue) -> None:
    venue.serve_order(None)
    assert venue.gateway.fetch_order(CID, "BTC/USDT") is None


def test_cancel_of_an_unknown_order_is_none(venue: Venue) -> None:
    # Given an exchange that does not know the order
    venue.serve_cancel(None)
    # When it is cancelled by client id
    # Then the gateway says it is not there
    assert venue.gateway.cancel_order(CID, "BTC/USDT") is None


def test_cancel_of_a_partially_filled_order_keeps_its_fill_and_our_client_id(venue: Venue) -> None:
    # Given an order that had filled 0.001 of 0.002 when it was cancelled
    fill = Fill("0.001", "30000", "0.000001", "BTC")
    venue.serve_cancel(venue.order("canceled", fill))
    if venue.name == "binance":
        venue.serve_trades(fill)
    # When it is cancelled by client id
    order = venue.gateway.cancel_order(CID, "BTC/USDT")
    # Then the cancel addressed our client id in the exchange's own field
    method, path, field = venue.spec.cancel
    [cancel] = venue.http.requests_to(method, path)
    assert cancel.params[field] == CID
    # And it is cancelled, with its partial fill, its fee, and our client order id
    assert order is not None
    assert (order.status, order.client_order_id) == ("canceled", CID)
    assert (order.filled, order.amount) == (Decimal("0.001"), Decimal("0.002"))
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.000001"), "BTC")
