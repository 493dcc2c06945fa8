"""Typed state instead of text: close reason codes, their close purposes, order waits, config problems."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.app.execution.exchange_orders import apply_exchange_order, wait_reason
from engine.domain.accounting import end_reason
from engine.domain.config import ConfigProblem, ConfigSnapshot
from engine.domain.models import (
    CloseReason,
    ExchangeOrder,
    GroupStatus,
    OrderPurpose,
    OrderStatus,
    OrderWait,
    close_purpose,
)
from engine.exchange.errors import BackOff, TemporaryFailure, map_ccxt_error
from engine.store.convert import close_reason_from_item
from tests.support.builders import T0, make_order

# --------------------------------------------------------------------------- close reasons


def test_close_reason_codes_are_the_design_list() -> None:
    assert [reason.value for reason in CloseReason] == [
        "take_profit",
        "exit",
        "risk",
        "operator",
        "stop_loss",
        "trailing_take_profit",
        "trailing_stop",
        "breakeven_stop",
        "time_limit",
        "failed",
    ]


@pytest.mark.parametrize(
    ("reason", "purpose"),
    [
        (CloseReason.TAKE_PROFIT, OrderPurpose.TP),
        (CloseReason.RISK, OrderPurpose.RISK_CLOSE),
        (CloseReason.EXIT, OrderPurpose.EXIT),
        (CloseReason.OPERATOR, OrderPurpose.EXIT),
        (CloseReason.STOP_LOSS, OrderPurpose.EXIT),
        (CloseReason.TRAILING_TAKE_PROFIT, OrderPurpose.EXIT),
        (CloseReason.TRAILING_STOP, OrderPurpose.EXIT),
        (CloseReason.BREAKEVEN_STOP, OrderPurpose.EXIT),
        (CloseReason.TIME_LIMIT, OrderPurpose.EXIT),
        (CloseReason.FAILED, OrderPurpose.EXIT),
        (None, OrderPurpose.EXIT),
    ],
)
def test_each_close_reason_closes_with_its_purpose(reason: CloseReason | None, purpose: OrderPurpose) -> None:
    assert close_purpose(reason) is purpose


def test_every_close_reason_has_a_closing_purpose() -> None:
    for reason in CloseReason:
        assert close_purpose(reason) in (OrderPurpose.TP, OrderPurpose.EXIT, OrderPurpose.RISK_CLOSE)


@pytest.mark.parametrize(
    ("stored", "note", "expected"),
    [
        (None, None, (None, None)),
        ("", None, (None, None)),
        ("take_profit", "aggregate take-profit", (CloseReason.TAKE_PROFIT, "aggregate take-profit")),
        ("operator", None, (CloseReason.OPERATOR, None)),
        ("exit: exit signal", None, (CloseReason.EXIT, "exit signal")),
        ("tp: aggregate take-profit", None, (CloseReason.TAKE_PROFIT, "aggregate take-profit")),
        ("risk_close: risk engine loser", None, (CloseReason.RISK, "risk engine loser")),
        ("exit: operator close", None, (CloseReason.OPERATOR, "operator close")),
        ("entry: odd", None, (CloseReason.EXIT, "entry: odd")),
        ("stopped by hand", None, (CloseReason.EXIT, "stopped by hand")),
        ("tp:", None, (CloseReason.EXIT, "tp:")),
    ],
)
def test_old_close_reason_texts_convert_to_a_code_and_a_note(
    stored: str | None, note: str | None, expected: tuple[CloseReason | None, str | None]
) -> None:
    assert close_reason_from_item(stored, note) == expected


def test_a_failed_group_and_a_group_its_take_profits_closed_get_their_reasons() -> None:
    rejected = make_order(status=OrderStatus.REJECTED)
    failed = end_reason(GroupStatus.FAILED, [rejected])
    assert failed is not None and failed[0] is CloseReason.FAILED and failed[1]
    tp = make_order(purpose=OrderPurpose.TP, status=OrderStatus.FILLED, filled=Decimal("0.0004"))
    leg = make_order(status=OrderStatus.FILLED, filled=Decimal("0.0004"))
    taken = end_reason(GroupStatus.CLOSED, [leg, tp])
    assert taken == (CloseReason.TAKE_PROFIT, "take-profits sold the position")
    cancelled = make_order(status=OrderStatus.CANCELLED)
    reason = end_reason(GroupStatus.CLOSED, [cancelled])
    assert reason is not None and reason[0] is CloseReason.EXIT
    assert end_reason(GroupStatus.ACTIVE, [leg]) is None


# --------------------------------------------------------------------------- order waits


def _exchange_says(status: str) -> ExchangeOrder:
    order = make_order()
    return ExchangeOrder(
        id="ex-1",
        client_order_id=order.client_order_id,
        exchange=order.exchange,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        amount=order.amount,
        price=order.price,
        status=status,
        timestamp=T0,
    )


@pytest.mark.parametrize("wait", list(OrderWait))
def test_an_exchange_answer_ends_the_wait_and_its_reason(wait: OrderWait) -> None:
    order = make_order(status=OrderStatus.OPEN, wait=wait, reason="anything the people read")
    assert apply_exchange_order(order, _exchange_says("open"), T0) is True
    assert (order.wait, order.reason) == (None, None)


def test_a_reason_without_a_wait_is_kept_whatever_its_text() -> None:
    # The text alone decides nothing: a reason that merely looks like a wait stays
    order = make_order(status=OrderStatus.OPEN, reason="not sent yet: but kept")
    apply_exchange_order(order, _exchange_says("open"), T0)
    assert order.reason == "not sent yet: but kept"


def test_wait_reasons_read_as_before() -> None:
    not_sent = wait_reason(OrderWait.NOT_SENT, "rate limit exceeded")
    assert not_sent == "not sent yet: rate limit exceeded; will retry"
    assert wait_reason(OrderWait.CANCEL_PENDING, "network error") == (
        "cancel not confirmed yet: network error; will retry"
    )


def test_exchange_failures_carry_their_own_label() -> None:
    ccxt = pytest.importorskip("ccxt")
    failure = map_ccxt_error(ccxt.RateLimitExceeded("binance 429: slow down: now"))
    assert isinstance(failure, BackOff) and failure.label == "rate limit exceeded"
    assert map_ccxt_error(ConnectionError("reset: by peer")).label == "network error"
    assert TemporaryFailure("x: y", error="RequestTimeout").label == "request timed out"
    assert BackOff("odd: text", error="Mine").label == "odd: text"
    assert BackOff("odd: text", label="odd").label == "odd"


# --------------------------------------------------------------------------- config problems


def test_config_problems_are_typed_and_read_as_before() -> None:
    problem = ConfigProblem("risk", "risk (no valid version; latest 3: bad)")
    assert str(problem) == "risk (no valid version; latest 3: bad)"
    snapshot = ConfigSnapshot(problems=[problem, ConfigProblem("queue", "queue (unreadable: x)")])
    assert snapshot.refusal_reason == (
        "configuration invalid, no valid version of: "
        "risk (no valid version; latest 3: bad), queue (unreadable: x)"
    )
    assert [p.document for p in snapshot.problems] == ["risk", "queue"]
