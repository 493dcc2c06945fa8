"""The reconciliation report, kind by kind, against the paper book (its default source for paper accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores
from engine.domain.models import ExchangeOrder, GroupFigures, OrderSide, OrderStatus, OrderType, utcnow
from tests.support.builders import make_group, make_order, new_id
from tests.support.reconciliation import DriftKind, reconciliation_report
from tests.support.scenario import engine_env

AMOUNT = Decimal("0.001")
NOW = utcnow()
OLD = NOW - timedelta(minutes=10)


@pytest.fixture
def engine(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Stores:
    return engine_env(monkeypatch).stores


def book_order(client_id: str, status: str, filled: str = "0") -> ExchangeOrder:
    return ExchangeOrder(
        id=f"paper-{client_id}",
        client_order_id=client_id,
        exchange="binance",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=AMOUNT,
        price=Decimal("60000"),
        status=status,
        filled=Decimal(filled),
        timestamp=OLD,
    )


@dataclass(frozen=True)
class Case:
    name: str
    #: Engine order fields (status, filled, exchange id, updated_at, trigger_price).
    engine: dict[str, Any]
    #: The paper book's order (status, filled) or None.
    book: tuple[str, str] | None
    drift: DriftKind | None
    in_flight: bool = False


SENT = {"exchange_order_id": "paper-x"}
CASES = [
    Case("open on both", {"status": OrderStatus.OPEN, **SENT}, ("open", "0"), None),
    Case(
        "filled on both", {"status": OrderStatus.FILLED, "filled": AMOUNT, **SENT}, ("closed", "0.001"), None
    ),
    Case("fill not recorded", {"status": OrderStatus.OPEN, **SENT}, ("closed", "0.001"), DriftKind.FILL),
    Case(
        "cancelled, not recorded", {"status": OrderStatus.OPEN, **SENT}, ("canceled", "0"), DriftKind.STATUS
    ),
    Case(
        "placed order gone",
        {"status": OrderStatus.FILLED, "filled": AMOUNT, **SENT},
        None,
        DriftKind.MISSING_ON_EXCHANGE,
    ),
    Case("fresh intent", {"status": OrderStatus.PENDING, "updated_at": NOW}, None, None, in_flight=True),
    Case("stale intent", {"status": OrderStatus.PENDING, "updated_at": OLD}, None, DriftKind.STALE_INTENT),
    Case("waiting for its trigger", {"status": OrderStatus.PENDING, "trigger_price": Decimal(1)}, None, None),
    Case(
        "unknown outcome",
        {"status": OrderStatus.UNKNOWN, "reason": "timed out"},
        None,
        DriftKind.UNKNOWN_OUTCOME,
    ),
    Case(
        "sent, answer not saved",
        {"status": OrderStatus.PENDING, "updated_at": NOW},
        ("open", "0"),
        DriftKind.UNRECORDED,
    ),
    Case("unknown, on the exchange", {"status": OrderStatus.UNKNOWN}, ("open", "0"), DriftKind.UNRECORDED),
    Case("cancelled before sending", {"status": OrderStatus.CANCELLED}, None, None),
    Case("refused", {"status": OrderStatus.REJECTED, "reason": "insufficient funds"}, None, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_order_state_against_the_book(engine: Stores, case: Case) -> None:
    # Given one engine order (of no stored group) and what the paper book has for its client id
    fields = {"updated_at": OLD, "created_at": OLD, "amount": AMOUNT, **case.engine}
    order = make_order(id=new_id("o-"), **fields)
    assert engine.orders.put_new(order)
    if case.book is not None:
        engine.paper.put(book_order(order.client_order_id, *case.book), replaces=None)
    # When the report runs
    report = reconciliation_report(engine, NOW)
    # Then it lists exactly the expected drift, naming the order
    assert [(d.kind, d.order_id) for d in report.drift] == ([(case.drift, order.id)] if case.drift else [])
    assert report.in_flight == ([order.id] if case.in_flight else [])
    assert (report.orders_compared, report.exchange_orders) == (1, 1 if case.book else 0)
    assert report.clean is (case.drift is None)


def test_an_exchange_order_no_engine_order_claims_is_drift(engine: Stores) -> None:
    engine.paper.put(book_order("stray-client-id", "open"), replaces=None)
    report = reconciliation_report(engine, NOW)
    assert [(d.kind, d.client_order_id) for d in report.drift] == [
        (DriftKind.NOT_IN_ENGINE, "stray-client-id")
    ]
    assert report.summary() == {"not_in_engine": 1}


def test_a_position_that_lags_its_fills_is_drift_until_recomputed(engine: Stores) -> None:
    # Given a group whose stored figures hold nothing, while one of its legs filled on both sides
    group = make_group(id=new_id("g-"), figures=GroupFigures(total_legs=1))
    assert engine.groups.get(group.id) is None
    engine.groups.save(group, now=NOW)
    leg = make_order(group, amount=AMOUNT, status=OrderStatus.FILLED, filled=AMOUNT, average=Decimal(60000))
    leg.exchange_order_id = "paper-x"
    assert engine.orders.put_new(leg)
    engine.paper.put(book_order(leg.client_order_id, "closed", "0.001"), replaces=None)
    # Then the report names the group
    report = reconciliation_report(engine, NOW)
    assert [(d.kind, d.group_id) for d in report.drift] == [(DriftKind.POSITION, group.id)]
    # When the figures are recomputed (what position_update stores), then nothing drifts
    stored = engine.groups.get(group.id)
    assert stored is not None
    stored.figures = GroupFigures(quantity=AMOUNT, avg_entry=Decimal(60000), filled_legs=1, total_legs=1)
    engine.groups.save(stored, now=NOW)
    assert reconciliation_report(engine, NOW).drift == []
