"""order_executor against the real paper exchange (moto tables, SSM config, real stream records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from engine.app.context import Stores, engine_context
from engine.app.execution import process_order
from engine.config import clear_cache
from engine.domain.config import default_documents
from engine.domain.models import Order, OrderStatus, OrderType, utcnow
from engine.exchange.client_ids import client_order_id
from tests.support.builders import make_order, new_id
from tests.support.scenario import engine_session
from tests.support.streams import Streams, deliver, failed_items, load_function

PREFIX = "/ee-test/executor/"
EXCHANGE = "binance"
SYMBOL = "BTC/USDT"


@pytest.fixture
def engine(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    """Tables + default config in SSM (read fresh on every call), paper BTC/USDT at 60000."""
    with engine_session(monkeypatch, PREFIX) as ctx:
        s = ctx.stores
        s.prices.set(EXCHANGE, SYMBOL, Decimal("60000"), utcnow())
        yield s


def edit_engine_document(**paper: Any) -> None:
    """Overwrite the engine document with the defaults plus ``paper`` settings (a new SSM version)."""
    document = json.loads(default_documents()["engine"])
    document["paper"].update(paper)
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=PREFIX + "engine", Value=json.dumps(document), Type="String", Overwrite=True
    )
    clear_cache()


def pending_leg(s: Stores, **overrides: Any) -> Order:
    """A stored pending buy leg of 0.001 BTC (limit 59000 unless overridden)."""
    order_id = new_id("o-")
    fields: dict[str, Any] = {
        "id": order_id,
        "exchange": EXCHANGE,
        "symbol": SYMBOL,
        "amount": Decimal("0.001"),
        "price": Decimal("59000"),
        "client_order_id": client_order_id(order_id),
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    fields.update(overrides)
    order = make_order(**fields)
    assert s.orders.put_new(order)
    return order


def stored(s: Stores, order: Order) -> Order:
    found = s.orders.get(order.id)
    assert found is not None
    return found


def test_pending_limit_leg_is_placed_on_the_paper_book_under_our_client_id(engine: Stores):
    # Given a pending limit buy below the market
    order = pending_leg(engine)
    # When the executor processes it
    process_order(engine_context(), order.id, utcnow())
    # Then it rests on the paper book under our client id and is recorded open
    after = stored(engine, order)
    paper = engine.paper.get(EXCHANGE, order.client_order_id)
    assert paper is not None and paper.status == "open" and paper.price == Decimal("59000")
    assert after.status is OrderStatus.OPEN
    assert after.exchange_order_id == paper.id
    assert after.exchange_status == "open"
    assert after.filled == 0 and after.reason is None


def test_market_leg_fills_at_the_current_price_with_the_quote_fee(engine: Stores):
    # Given a pending market buy and a price of 60000 (fee 0.1 %)
    order = pending_leg(engine, type=OrderType.MARKET, price=None)
    now = utcnow()
    # When it is sent
    process_order(engine_context(), order.id, now)
    # Then it is filled at 60000 with the fee in USDT
    after = stored(engine, order)
    assert after.status is OrderStatus.FILLED
    assert after.filled == Decimal("0.001")
    assert after.average == Decimal("60000")
    assert after.cost == Decimal("60")
    assert after.fee_cost == Decimal("0.06") and after.fee_currency == "USDT"
    assert after.last_fill_at is not None and after.exchange_status == "closed"


def test_order_the_balance_cannot_pay_for_is_rejected_with_the_reason(engine: Stores):
    # Given a paper account with only 10 USDT
    edit_engine_document(balance_usd=10)
    order = pending_leg(engine)
    # When a 59 USDT buy is sent
    process_order(engine_context(), order.id, utcnow())
    # Then it is rejected, says why, and nothing is on the paper book
    after = stored(engine, order)
    assert after.status is OrderStatus.REJECTED
    assert after.reason is not None and "insufficient USDT" in after.reason
    assert engine.paper.get(EXCHANGE, order.client_order_id) is None


def test_pending_order_with_cancel_requested_is_cancelled_without_reaching_the_exchange(engine: Stores):
    order = pending_leg(engine, cancel_requested=True)
    process_order(engine_context(), order.id, utcnow())
    after = stored(engine, order)
    assert after.status is OrderStatus.CANCELLED
    assert after.reason == "cancelled before it was sent"
    assert engine.paper.get(EXCHANGE, order.client_order_id) is None


@pytest.mark.parametrize(
    ("price_before_cancel", "expected_status", "expected_filled", "paper_status"),
    [
        (Decimal("60000"), OrderStatus.CANCELLED, Decimal("0"), "canceled"),
        # the price crossed the limit before the cancel arrived: it filled, and that is what we record
        (Decimal("58000"), OrderStatus.FILLED, Decimal("0.001"), "closed"),
    ],
)
def test_open_order_with_cancel_requested_is_cancelled_on_the_exchange(
    engine: Stores, price_before_cancel, expected_status, expected_filled, paper_status
):
    # Given an order resting on the paper book
    order = pending_leg(engine)
    process_order(engine_context(), order.id, utcnow())
    # When a close asks for its cancel (and the price is where the case puts it)
    opened = stored(engine, order)
    opened.cancel_requested = True
    engine.orders.save(opened, now=utcnow())
    engine.prices.set(EXCHANGE, SYMBOL, price_before_cancel, utcnow())
    process_order(engine_context(), order.id, utcnow())
    # Then our record matches the exchange's final state
    after = stored(engine, order)
    paper = engine.paper.get(EXCHANGE, order.client_order_id)
    assert after.status is expected_status
    assert after.filled == expected_filled
    assert paper is not None and paper.status == paper_status


def test_pending_leg_waiting_for_its_price_trigger_is_not_sent(engine: Stores):
    order = pending_leg(engine, type=OrderType.MARKET, price=None, trigger_price=Decimal("58000"))
    process_order(engine_context(), order.id, utcnow())
    assert stored(engine, order).status is OrderStatus.PENDING
    assert engine.paper.get(EXCHANGE, order.client_order_id) is None


def test_stream_record_delivered_twice_places_one_paper_order(engine: Stores):
    # Given the executor fed from the orders stream
    executor = load_function("order_executor")
    streams = Streams()
    streams.skip("orders")
    order = pending_leg(engine)
    event = streams.next_event("orders")
    assert [r["eventName"] for r in event["Records"]] == ["INSERT"]
    # When the same batch is delivered twice (at-least-once delivery)
    first = deliver(executor, event)
    after_first = stored(engine, order)
    second = deliver(executor, event)
    # Then one order is on the paper book, and the replay changed nothing
    assert failed_items(first) == [] and failed_items(second) == []
    assert [o.client_order_id for o in engine.paper.list_all(EXCHANGE)] == [order.client_order_id]
    assert stored(engine, order) == after_first
    assert after_first.status is OrderStatus.OPEN
    # And the record of our own save (MODIFY, status open) is a no-op too
    modify = streams.next_event("orders")
    assert [r["eventName"] for r in modify["Records"]] == ["MODIFY"]
    assert failed_items(deliver(executor, modify)) == []
    assert stored(engine, order) == after_first


def test_market_leg_without_a_price_stays_pending_and_its_record_is_retried(engine: Stores):
    # Given a batch of two new legs: a market buy of ETH (no ETH price yet) and a BTC limit buy
    executor = load_function("order_executor")
    streams = Streams()
    streams.skip("orders")
    eth = pending_leg(engine, symbol="ETH/USDT", amount=Decimal("0.01"), type=OrderType.MARKET, price=None)
    btc = pending_leg(engine)
    event = streams.next_event("orders")
    eth_sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
    # When the executor handles the batch
    response = deliver(executor, event)
    # Then only the ETH record is reported failed (Lambda retries it); the ETH leg waits, saying why
    assert failed_items(response) == [eth_sequence]
    waiting = stored(engine, eth)
    assert waiting.status is OrderStatus.PENDING
    assert waiting.reason == "not sent yet: no price for ETH/USDT yet; will retry"
    assert engine.paper.get(EXCHANGE, eth.client_order_id) is None
    assert stored(engine, btc).status is OrderStatus.OPEN
    # And when the retried batch arrives after a price is known, the ETH leg goes out once
    engine.prices.set(EXCHANGE, "ETH/USDT", Decimal("3000"), utcnow())
    assert failed_items(deliver(executor, event)) == []
    filled = stored(engine, eth)
    assert filled.status is OrderStatus.FILLED and filled.average == Decimal("3000") and filled.reason is None
    assert len(engine.paper.list_all(EXCHANGE)) == 2
