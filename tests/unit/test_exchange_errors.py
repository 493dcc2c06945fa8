"""ccxt exceptions map to the engine's failure classes by reaction (DESIGN §5)."""

from __future__ import annotations

import ccxt
import pytest

from engine.exchange.errors import (
    BackOff,
    ExchangeFailure,
    OrderMissing,
    OrderRefused,
    OutcomeUnknown,
    TemporaryFailure,
    map_ccxt_error,
)

ERROR_MATRIX = [
    # network class: retry
    (ccxt.RequestTimeout, TemporaryFailure),
    (ccxt.NetworkError, TemporaryFailure),
    (ccxt.InvalidNonce, TemporaryFailure),
    (ccxt.ChecksumError, TemporaryFailure),
    (ccxt.BadResponse, TemporaryFailure),
    (ccxt.NullResponse, TemporaryFailure),
    (ccxt.CancelPending, TemporaryFailure),
    (ccxt.OperationFailed, TemporaryFailure),
    # back off (NetworkError subclasses, RateLimitExceeded is not under DDoSProtection)
    (ccxt.RateLimitExceeded, BackOff),
    (ccxt.DDoSProtection, BackOff),
    (ccxt.ExchangeNotAvailable, BackOff),
    (ccxt.OnMaintenance, BackOff),
    # the exchange does not know the order (an InvalidOrder subclass)
    (ccxt.OrderNotFound, OrderMissing),
    (ccxt.OrderNotCached, OrderMissing),
    # final refusals
    (ccxt.InsufficientFunds, OrderRefused),
    (ccxt.InvalidOrder, OrderRefused),
    (ccxt.DuplicateOrderId, OrderRefused),
    (ccxt.BadSymbol, OrderRefused),
    (ccxt.BadRequest, OrderRefused),
    (ccxt.AuthenticationError, OrderRefused),
    (ccxt.PermissionDenied, OrderRefused),
    (ccxt.AccountNotEnabled, OrderRefused),
    (ccxt.AccountSuspended, OrderRefused),
    (ccxt.ArgumentsRequired, OrderRefused),
    (ccxt.NotSupported, OrderRefused),
    (ccxt.MarketClosed, OrderRefused),
    (ccxt.OperationRejected, OrderRefused),
    (ccxt.ExchangeError, OrderRefused),
]


@pytest.mark.parametrize(("ccxt_class", "expected"), ERROR_MATRIX, ids=lambda v: getattr(v, "__name__", v))
def test_ccxt_error_maps_to_its_reaction_class(ccxt_class, expected):
    # Given a ccxt exception raised by an exchange call
    exc = ccxt_class("binance {'code': -1, 'msg': 'boom'}")

    # When it is mapped
    failure = map_ccxt_error(exc)

    # Then it lands in exactly the class that decides the engine's reaction, naming the ccxt class
    assert type(failure) is expected
    assert failure.error == ccxt_class.__name__
    assert "boom" in failure.reason


def test_every_reaction_class_is_an_exchange_failure_and_they_are_distinct():
    classes = [TemporaryFailure, BackOff, OutcomeUnknown, OrderRefused, OrderMissing]
    assert all(issubclass(cls, ExchangeFailure) for cls in classes)
    # no reaction class inherits another one (a BackOff must never be retried as a TemporaryFailure)
    assert not any(issubclass(a, b) for a in classes for b in classes if a is not b)


@pytest.mark.parametrize(
    ("ccxt_class", "words"),
    [
        (ccxt.InsufficientFunds, "insufficient funds"),
        (ccxt.AuthenticationError, "authentication failed"),
        (ccxt.BadSymbol, "unknown or unsupported market"),
    ],
)
def test_refusal_reason_is_readable_by_a_trader(ccxt_class, words):
    failure = map_ccxt_error(ccxt_class('okx {"code":"51008","msg":"Order failed"}'))
    assert failure.reason.startswith(words)
    assert "Order failed" in failure.reason


def test_reason_is_single_line_and_bounded():
    failure = map_ccxt_error(ccxt.InvalidOrder("line one\nline two " + "x" * 1000))
    assert "\n" not in failure.reason
    assert len(failure.reason) < 400


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError("read timed out"), TemporaryFailure),
        (ConnectionResetError("reset"), TemporaryFailure),
        (ValueError("not an exchange problem"), ExchangeFailure),
    ],
)
def test_non_ccxt_exceptions(exc, expected):
    assert type(map_ccxt_error(exc)) is expected


def test_an_exchange_failure_is_returned_unchanged():
    failure = OrderRefused("insufficient USDT", error="InsufficientFunds")
    assert map_ccxt_error(failure) is failure
