"""Issue 12 finding 4 and the fill ledger (DESIGN §3.5) through order_sync, the executor and the real
CcxtGateway over a fake ccxt client: each observed growth of ``filled`` is one ledger entry, a fee paid
in BNB is converted at the BNB/USDT ticker when the fill is recorded, and a replayed read adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, engine_context
from engine.app.execution import apply_exchange_order, process_order, save_change
from engine.app.sync import run_sync
from engine.domain.accounting import compute_figures
from engine.domain.models import ExchangeOrder, Order, OrderSide, OrderStatus, OrderType, Side, utcnow
from engine.exchange.client_ids import client_order_id
from tests.support.builders import make_order, new_id
from tests.support.fake_exchange import FakeCcxtClient, install_exchange
from tests.support.scenario import engine_session

PREFIX = "/ee-test/ledger/"


@pytest.fixture
def engine(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    with engine_session(monkeypatch, PREFIX) as ctx:
        yield ctx.stores


@pytest.fixture
def exchange(engine: Stores) -> FakeCcxtClient:
    client = FakeCcxtClient()
    install_exchange(client)
    return client


def _sent_leg(stores: Stores, exchange: FakeCcxtClient, amount: str = "0.2") -> Order:
    """A limit buy of ETH/USDT at 3000, sent to the fake exchange (open there)."""
    order_id = new_id("o-")
    order = make_order(
        id=order_id,
        exchange="binance",
        symbol="ETH/USDT",
        amount=Decimal(amount),
        price=Decimal("3000"),
        client_order_id=client_order_id(order_id),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    assert stores.orders.put_new(order)
    process_order(engine_context(), order.id, utcnow())
    return order


def _exchange_fills(exchange: FakeCcxtClient, order: Order, filled: float, fee_bnb: float) -> None:
    raw = exchange.orders[order.client_order_id]
    raw.update(
        filled=filled,
        average=3000.0,
        cost=filled * 3000.0,
        fee={"cost": fee_bnb, "currency": "BNB"},
        status="closed" if filled >= raw["amount"] else "open",
        lastTradeTimestamp=1_700_000_060_000,
    )


def _stored(stores: Stores, order: Order) -> Order:
    found = stores.orders.get(order.id)
    assert found is not None
    return found


def test_bnb_fee_is_converted_at_the_bnb_usdt_ticker_when_the_fill_is_recorded(
    engine: Stores, exchange: FakeCcxtClient
) -> None:
    # Given a leg of 0.2 ETH resting at 3000 and BNB at 600 USDT on the exchange's ticker
    order = _sent_leg(engine, exchange)
    exchange.tickers["BNB/USDT"] = {"last": 600.0}
    # When the exchange fills 0.1 of it paying 0.075 BNB and order_sync reads it
    _exchange_fills(exchange, order, 0.1, 0.075)
    run_sync(engine_context(), utcnow() + timedelta(minutes=1), force=True)
    # Then one ledger entry records 0.1 @ 3000 with its fee of 0.075 BNB = 45 USD (not 0.075 USD)
    stored = _stored(engine, order)
    assert stored.status is OrderStatus.PARTIALLY_FILLED
    assert [(f.quantity, f.price, f.fee, f.fee_currency) for f in stored.fills] == [
        (Decimal("0.1"), Decimal("3000.0"), Decimal("0.075"), "BNB")
    ]
    assert stored.fills[0].fee_usd == Decimal("45.000") and stored.fee_usd == Decimal("45.000")
    # And the group's fees count it in USD
    figures = compute_figures([stored], side=Side.LONG, base_currency="ETH", price=None, total_legs=1)
    assert figures.fees_usd == Decimal("45.000")
    # When the rest fills (0.15 BNB in all) after BNB moved to 610 and order_sync reads it again
    exchange.tickers["BNB/USDT"] = {"last": 610.0}
    _exchange_fills(exchange, order, 0.2, 0.15)
    run_sync(engine_context(), utcnow() + timedelta(minutes=2), force=True)
    # Then a second entry carries only the increment, converted at the price of its own time
    stored = _stored(engine, order)
    assert stored.status is OrderStatus.FILLED
    assert [(f.quantity, f.fee, f.fee_usd) for f in stored.fills] == [
        (Decimal("0.1"), Decimal("0.075"), Decimal("45.000")),
        (Decimal("0.1"), Decimal("0.075"), Decimal("45.750")),
    ]
    assert stored.fee_usd == Decimal("90.750")


def test_a_replayed_exchange_read_adds_no_second_ledger_entry(
    engine: Stores, exchange: FakeCcxtClient
) -> None:
    # Given a leg the exchange filled 0.1 of (fee in USDT), recorded by one order_sync pass
    order = _sent_leg(engine, exchange)
    raw = exchange.orders[order.client_order_id]
    raw.update(filled=0.1, average=3000.0, cost=300.0, fee={"cost": 0.3, "currency": "USDT"})
    run_sync(engine_context(), utcnow() + timedelta(minutes=1), force=True)
    assert len(_stored(engine, order).fills) == 1
    # When order_sync reads the same answer again
    run_sync(engine_context(), utcnow() + timedelta(minutes=2), force=True)
    # And the same exchange order is applied twice more to the stored order (a replayed read)
    now = utcnow()
    same = ExchangeOrder(
        id=str(raw["id"]),
        client_order_id=order.client_order_id,
        exchange="binance",
        symbol="ETH/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=Decimal("0.2"),
        price=Decimal("3000"),
        status="open",
        filled=Decimal("0.1"),
        average=Decimal("3000.0"),
        cost=Decimal("300.0"),
        fee_cost=Decimal("0.3"),
        fee_currency="USDT",
    )
    for _ in range(2):
        save_change(engine, _stored(engine, order), lambda o: apply_exchange_order(o, same, now), now)
    # Then the ledger still holds the one fill of 0.1 with its 0.3 USD fee
    stored = _stored(engine, order)
    assert [(f.quantity, f.price, f.fee_usd) for f in stored.fills] == [
        (Decimal("0.1"), Decimal("3000.0"), Decimal("0.3"))
    ]
    assert stored.fee_usd == Decimal("0.3") and stored.filled == Decimal("0.1")
