"""binance: commissions come from the order's trades, fetched only when its fill changed; a cancel
answer is reported under our client order id."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from engine.exchange.errors import TemporaryFailure
from tests.conformance.venues import CID, Binance, Fill

FIRST = Fill("0.001", "30000", "0.000001", "BTC")
SECOND = Fill("0.001", "30020", "0.000001", "BTC")


@pytest.fixture
def binance() -> Binance:
    return Binance()


def trade_lookups(venue: Binance) -> int:
    return len(venue.http.requests_to("GET", "/api/v3/myTrades"))


def test_a_filled_order_reports_the_sum_of_its_trades_commissions(binance: Binance) -> None:
    # Given an order filled in two trades, each paying 0.000001 BTC (GET order states no commission)
    binance.serve_order(binance.order("filled", Fill("0.002", "30010")))
    binance.serve_trades(FIRST, SECOND)
    # When it is fetched by client id
    order = binance.gateway.fetch_order(CID, "BTC/USDT")
    # Then its fee is the two commissions, in BTC, read from the order's own trades
    assert order is not None and order.status == "closed"
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.000002"), "BTC")
    [lookup] = binance.http.requests_to("GET", "/api/v3/myTrades")
    assert lookup.params["orderId"] == "9780331417" and lookup.params["symbol"] == "BTCUSDT"


def test_trades_are_fetched_only_when_the_fill_changed(binance: Binance) -> None:
    gateway = binance.gateway
    # Given an order with nothing filled: no trade lookup
    binance.serve_order(binance.order("new"))
    gateway.fetch_order(CID, "BTC/USDT")
    assert trade_lookups(binance) == 0
    # When it half fills, it is looked up once, and not again while the fill stays the same
    binance.serve_order(binance.order("partial", FIRST))
    binance.serve_trades(FIRST)
    gateway.fetch_order(CID, "BTC/USDT")
    again = gateway.fetch_order(CID, "BTC/USDT")
    assert trade_lookups(binance) == 1
    assert again is not None and again.fee_cost == Decimal("0.000001")
    # And once the fill grows, its trades are read again
    binance.serve_order(binance.order("filled", Fill("0.002", "30010")))
    binance.serve_trades(FIRST, SECOND)
    filled = gateway.fetch_order(CID, "BTC/USDT")
    assert trade_lookups(binance) == 2
    assert filled is not None and filled.fee_cost == Decimal("0.000002")


def test_a_base_coin_commission_is_reported_when_an_order_paid_in_two_coins(binance: Binance) -> None:
    # Given BNB ran out mid-order: one trade paid BNB, the next BTC
    binance.serve_order(binance.order("filled", Fill("0.002", "30010")))
    binance.serve_trades(Fill("0.001", "30000", "0.00002", "BNB"), SECOND)
    order = binance.gateway.fetch_order(CID, "BTC/USDT")
    # Then the BTC commission is the one reported: it is what changes the BTC held
    assert order is not None and (order.fee_cost, order.fee_currency) == (Decimal("0.000001"), "BTC")


def test_a_read_whose_trades_cannot_be_fetched_fails_rather_than_report_no_fee(binance: Binance) -> None:
    binance.serve_order(binance.order("filled", Fill("0.002", "30010")))
    binance.http.on("GET", "/api/v3/myTrades", requests.exceptions.ConnectionError("connection reset"))
    with pytest.raises(TemporaryFailure):
        binance.gateway.fetch_order(CID, "BTC/USDT")


def test_cancel_answer_is_reported_under_our_client_order_id(binance: Binance) -> None:
    # Given binance answers the cancel with the cancel request's own id in clientOrderId
    binance.serve_cancel(binance.order("new"))
    # When our order is cancelled
    order = binance.gateway.cancel_order(CID, "BTC/USDT")
    # Then the order comes back under our client order id (binance's origClientOrderId)
    assert order is not None and (order.status, order.client_order_id) == ("canceled", CID)
    [cancel] = binance.http.requests_to("DELETE", "/api/v3/order")
    assert cancel.params["origClientOrderId"] == CID
    assert trade_lookups(binance) == 0
