"""Create failures through the real ccxt error handling: what is final, what is looked up, and that a
create is never sent twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from engine.domain.models import OrderSide, OrderType
from engine.exchange.errors import BackOff, OrderRefused, OutcomeUnknown
from engine.exchange.gateway import OrderRequest
from tests.conformance.venues import CID, Venue

REQUEST = OrderRequest(CID, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal("0.002"), Decimal("30000"))


def test_insufficient_balance_is_a_final_refusal_sent_once(venue: Venue) -> None:
    # Given an exchange that refuses the order for lack of funds
    venue.serve_create(venue.error("insufficientBalance"))
    # When the order is placed
    with pytest.raises(OrderRefused) as refused:
        venue.gateway.create_order(REQUEST)
    # Then it is refused for insufficient funds after exactly one create
    assert refused.value.error == "InsufficientFunds"
    assert len(venue.creates()) == 1


def test_rate_limit_backs_off_without_a_second_create(venue: Venue) -> None:
    venue.serve_create(venue.error("rateLimit"), venue.create_answer())
    with pytest.raises(BackOff):
        venue.gateway.create_order(REQUEST)
    assert len(venue.creates()) == 1


def test_timeout_of_a_create_that_landed_returns_the_order_without_resending(venue: Venue) -> None:
    # Given a create whose answer times out, though the exchange placed the order
    venue.serve_create(requests.exceptions.ReadTimeout("read timed out"), venue.create_answer())
    venue.serve_order(venue.order("new"))
    # When the order is placed
    order = venue.gateway.create_order(REQUEST)
    # Then the gateway found it by client id and sent one create only
    assert (order.client_order_id, order.status) == (CID, "open")
    assert len(venue.creates()) == 1


def test_timeout_of_a_create_that_is_not_found_is_an_unknown_outcome(venue: Venue) -> None:
    venue.serve_create(requests.exceptions.ReadTimeout("read timed out"), venue.create_answer())
    venue.serve_order(None)
    with pytest.raises(OutcomeUnknown):
        venue.gateway.create_order(REQUEST)
    assert len(venue.creates()) == 1


def test_an_error_ccxt_cannot_classify_is_looked_up_not_taken_as_a_refusal(venue: Venue) -> None:
    # Given a create answered by a server error ccxt has no class for (bybit 10016, okx 51149...)
    venue.serve_create(venue.error("unclassified"), venue.create_answer())
    venue.serve_order(None)
    # When the order is placed
    # Then the outcome is unknown (it may be live), not a final refusal, and no second create went out
    with pytest.raises(OutcomeUnknown):
        venue.gateway.create_order(REQUEST)
    assert len(venue.creates()) == 1


def test_an_unclassified_error_on_an_order_that_landed_returns_the_order(venue: Venue) -> None:
    venue.serve_create(venue.error("unclassified"), venue.create_answer())
    venue.serve_order(venue.order("new"))
    order = venue.gateway.create_order(REQUEST)
    assert (order.client_order_id, order.status) == (CID, "open")
    assert len(venue.creates()) == 1
