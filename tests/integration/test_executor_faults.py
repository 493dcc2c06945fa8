"""Exchange faults end to end: executor and order_sync over the real CcxtGateway and a fake ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from engine.app.context import Stores, engine_context
from engine.app.execution import SEND_CLAIM_TTL, process_order, send_claim_id
from engine.app.sync import run_sync
from engine.domain.models import Order, OrderStatus, utcnow
from engine.exchange.client_ids import client_order_id
from engine.exchange.errors import TemporaryFailure
from tests.support.builders import make_order, new_id
from tests.support.fake_exchange import FakeCcxtClient, install_exchange
from tests.support.scenario import engine_session
from tests.support.streams import Streams, deliver, failed_items, load_function

PREFIX = "/ee-test/faults/"


@pytest.fixture
def engine(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    with engine_session(monkeypatch, PREFIX) as ctx:
        s = ctx.stores
        yield s


@pytest.fixture
def exchange(engine: Stores, monkeypatch: pytest.MonkeyPatch) -> FakeCcxtClient:
    """Every account talks to one fake ccxt exchange through the real CcxtGateway."""
    client = FakeCcxtClient()
    install_exchange(client)
    return client


def pending_leg(s: Stores) -> Order:
    order_id = new_id("o-")
    order = make_order(
        id=order_id,
        exchange="binance",
        symbol="BTC/USDT",
        amount=Decimal("0.001"),
        price=Decimal("59000"),
        client_order_id=client_order_id(order_id),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    assert s.orders.put_new(order)
    return order


def stored(s: Stores, order: Order) -> Order:
    found = s.orders.get(order.id)
    assert found is not None
    return found


def test_timeout_after_accept_becomes_unknown_then_sync_finds_it_without_a_second_create(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given an exchange that takes the order but loses the answer, and does not show it yet
    exchange.script["create_order"] = [exchange.accept_then(ccxt.RequestTimeout("timed out"), hide=True)]
    order = pending_leg(engine)
    now = utcnow()
    # When the executor sends it
    process_order(engine_context(), order.id, now)
    # Then the outcome is unknown (never resent blindly)
    unknown = stored(engine, order)
    assert unknown.status is OrderStatus.UNKNOWN
    assert unknown.reason is not None and "prove it absent" in unknown.reason
    # And when the exchange shows it by the next sync, it is recorded open, with one create in all
    exchange.reveal(order.client_order_id)
    summary = run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    assert summary.unknown_found == 1
    found = stored(engine, order)
    assert found.status is OrderStatus.OPEN and found.exchange_order_id == "ex-1" and found.reason is None
    process_order(engine_context(), order.id, now + timedelta(minutes=1))
    run_sync(engine_context(), now + timedelta(minutes=2), force=True)
    assert exchange.count("create_order") == 1


def test_network_error_on_create_is_resolved_by_the_gateways_retried_lookup(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given the create's answer is lost and the first lookup hits a network error too
    exchange.script["create_order"] = [exchange.accept_then(ccxt.NetworkError("connection reset"))]
    exchange.script["fetch_order"] = [ccxt.NetworkError("connection reset")]
    order = pending_leg(engine)
    # When the executor sends it
    process_order(engine_context(), order.id, utcnow())
    # Then the gateway retried its lookup, found the order, and it is recorded open after one create
    assert stored(engine, order).status is OrderStatus.OPEN
    assert exchange.count("create_order") == 1
    assert exchange.count("fetch_order") == 2


def test_create_lost_before_the_exchange_is_resent_only_after_two_spaced_misses(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given a create that never reached the exchange (network error before it was accepted)
    exchange.script["create_order"] = [ccxt.NetworkError("connection refused")]
    order = pending_leg(engine)
    now = utcnow()
    process_order(engine_context(), order.id, now)
    assert stored(engine, order).status is OrderStatus.UNKNOWN
    # When order_sync looks for it: a first miss, and an immediate second lookup, prove nothing yet
    first = run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    again = run_sync(engine_context(), now + timedelta(minutes=1, seconds=10), force=True)
    assert (first.unknown_waiting, again.unknown_waiting) == (1, 1)
    assert stored(engine, order).status is OrderStatus.UNKNOWN
    assert exchange.count("create_order") == 1
    # And a miss one sync later proves it absent: back to pending and resent with the same client id
    resent = run_sync(engine_context(), now + timedelta(minutes=2), force=True)
    assert resent.unknown_resent == 1
    after = stored(engine, order)
    assert after.status is OrderStatus.OPEN
    assert exchange.count("create_order") == 2
    assert list(exchange.orders) == [order.client_order_id]
    # And nothing is sent again afterwards
    run_sync(engine_context(), now + timedelta(minutes=3), force=True)
    process_order(engine_context(), order.id, now + timedelta(minutes=3))
    assert exchange.count("create_order") == 2


def test_resend_turned_away_by_a_rate_limit_is_re_driven_by_a_later_sync(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given an unknown order proven absent while the exchange is rate limiting
    exchange.script["create_order"] = [
        ccxt.NetworkError("connection refused"),
        ccxt.RateLimitExceeded("slow down"),
    ]
    order = pending_leg(engine)
    now = utcnow()
    process_order(engine_context(), order.id, now)
    run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    resent = run_sync(engine_context(), now + timedelta(minutes=2), force=True)
    # Then it is pending again (the resend was turned away), and says so
    assert resent.unknown_resent == 1
    after = stored(engine, order)
    assert after.status is OrderStatus.PENDING
    assert after.reason == "not sent yet: rate limit exceeded; will retry"
    # And a sync once it has been stale for a while looks it up, then sends it
    redrive = run_sync(engine_context(), now + timedelta(minutes=6), force=True)
    assert redrive.redriven == 1
    assert stored(engine, order).status is OrderStatus.OPEN
    assert exchange.count("create_order") == 3
    assert list(exchange.orders) == [order.client_order_id]


def test_rate_limited_create_stays_pending_and_the_retried_record_sends_it(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given the exchange answers the first create with a rate limit
    exchange.script["create_order"] = [ccxt.RateLimitExceeded("too many requests")]
    executor = load_function("order_executor")
    streams = Streams()
    streams.skip("orders")
    order = pending_leg(engine)
    other = pending_leg(engine)
    event = streams.next_event("orders")
    # When the executor handles the batch
    response = deliver(executor, event)
    # Then the rate-limited record is reported failed and its order is still pending, saying why
    assert failed_items(response) == [event["Records"][0]["dynamodb"]["SequenceNumber"]]
    waiting = stored(engine, order)
    assert waiting.status is OrderStatus.PENDING
    assert waiting.reason == "not sent yet: rate limit exceeded; will retry"
    assert stored(engine, other).status is OrderStatus.OPEN
    # And Lambda's retry of the batch sends it once (the other order is not sent again)
    assert failed_items(deliver(executor, event)) == []
    assert stored(engine, order).status is OrderStatus.OPEN
    assert exchange.count("create_order") == 3
    assert sorted(exchange.orders) == sorted([order.client_order_id, other.client_order_id])


def test_exchange_refusal_rejects_the_order_with_the_exchange_reason(
    engine: Stores, exchange: FakeCcxtClient
):
    exchange.script["create_order"] = [ccxt.InsufficientFunds("Account has insufficient balance")]
    order = pending_leg(engine)
    process_order(engine_context(), order.id, utcnow())
    after = stored(engine, order)
    assert after.status is OrderStatus.REJECTED
    assert after.reason == "insufficient funds: Account has insufficient balance"


def test_send_deferred_twice_is_sent_by_the_next_delivery_of_its_record(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given the exchange rate-limits the first two creates
    exchange.script["create_order"] = [ccxt.RateLimitExceeded("429")] * 2
    executor = load_function("order_executor")
    streams = Streams()
    streams.skip("orders")
    order = pending_leg(engine)
    insert = streams.next_event("orders")
    # When the new record and then the deferral's own update record are handled: both fail (a batch
    # whose every record failed is raised, for Lambda to retry it)
    with pytest.raises(BatchProcessingError):
        deliver(executor, insert)
    update = streams.next_event("orders")
    with pytest.raises(BatchProcessingError):
        deliver(executor, update)
    assert streams.next_event("orders")["Records"] == []  # the second deferral wrote nothing
    # Then Lambda's retry of the record sends it at once: nothing placed means nothing claimed
    assert failed_items(deliver(executor, update)) == []
    assert stored(engine, order).status is OrderStatus.OPEN
    assert exchange.count("create_order") == 3


def test_pending_order_whose_send_crashed_is_looked_up_before_the_re_drive_sends_it(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given an attempt that reached the exchange and then crashed before recording anything
    order = pending_leg(engine)
    assert engine.state.mark_once(send_claim_id(order), SEND_CLAIM_TTL, now=utcnow())
    exchange.accept("BTC/USDT", "limit", "buy", 0.001, 59000.0, {"clientOrderId": order.client_order_id})
    now = utcnow()
    # When the executor sees the order again, the claim held by the crashed attempt stops it
    assert process_order(engine_context(), order.id, now) == stored(engine, order)
    # And order_sync re-drives it once stale: it finds the order by client id instead of creating it
    summary = run_sync(engine_context(), now + timedelta(minutes=3), force=True)
    assert summary.redriven == 1
    after = stored(engine, order)
    assert after.status is OrderStatus.OPEN and after.exchange_order_id == "ex-1" and after.reason is None
    assert exchange.count("create_order") == 0


def test_cancel_that_cannot_reach_the_exchange_says_so_and_sync_completes_it(
    engine: Stores, exchange: FakeCcxtClient
):
    # Given an open order whose cancel is requested while the network fails (three tries in the gateway)
    order = pending_leg(engine)
    process_order(engine_context(), order.id, utcnow())
    opened = stored(engine, order)
    opened.cancel_requested = True
    engine.orders.save(opened, now=utcnow())
    exchange.script["cancel_order"] = [ccxt.NetworkError("connection reset")] * 3
    # When the executor tries to cancel it
    with pytest.raises(TemporaryFailure):
        process_order(engine_context(), order.id, utcnow())
    # Then the order is still open and says the cancel is not confirmed
    waiting = stored(engine, order)
    assert waiting.status is OrderStatus.OPEN
    assert waiting.reason == "cancel not confirmed yet: network error; will retry"
    # And the next sync cancels it
    summary = run_sync(engine_context(), utcnow(), force=True)
    assert summary.cancels_driven == 1
    after = stored(engine, order)
    assert after.status is OrderStatus.CANCELLED and after.reason == "cancelled on request"
    assert exchange.orders[order.client_order_id]["status"] == "canceled"
