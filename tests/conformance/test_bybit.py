"""bybit: an order partially filled and then cancelled is cancelled on every read path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conformance.venues import CID, Bybit, Fill

PARTIAL = Fill("0.001", "30000", "0.000001", "BTC")


@pytest.fixture
def bybit() -> Bybit:
    venue = Bybit()
    venue.serve_order(venue.order("canceled", PARTIAL))  # orderStatus PartiallyFilledCanceled
    return venue


def test_fetch_by_client_id_reports_partially_filled_canceled_as_canceled(bybit: Bybit) -> None:
    # Given bybit reports PartiallyFilledCanceled (ccxt maps it to "closed")
    # When the order is fetched by client id
    order = bybit.gateway.fetch_order(CID, "BTC/USDT")
    # Then it is cancelled with its partial fill, not filled
    assert order is not None
    assert (order.status, order.filled, order.amount) == ("canceled", Decimal("0.001"), Decimal("0.002"))


def test_closed_listing_reports_partially_filled_canceled_as_canceled(bybit: Bybit) -> None:
    [order] = bybit.gateway.fetch_closed_orders("BTC/USDT")
    assert (order.client_order_id, order.status, order.filled) == (CID, "canceled", Decimal("0.001"))


def test_cancel_answer_of_partially_filled_canceled_is_canceled(bybit: Bybit) -> None:
    bybit.serve_cancel(bybit.order("canceled", PARTIAL))
    order = bybit.gateway.cancel_order(CID, "BTC/USDT")
    assert order is not None and order.status == "canceled"
    assert (order.fee_cost, order.fee_currency) == (Decimal("0.000001"), "BTC")


def test_a_fully_filled_order_stays_closed() -> None:
    # Given an order bybit reports Filled for its whole amount
    venue = Bybit()
    venue.serve_order(venue.order("filled", Fill("0.002", "30000", "0.000002", "BTC")))
    # When it is fetched
    order = venue.gateway.fetch_order(CID, "BTC/USDT")
    # Then it is closed (filled), not cancelled
    assert order is not None and (order.status, order.filled) == ("closed", Decimal("0.002"))
