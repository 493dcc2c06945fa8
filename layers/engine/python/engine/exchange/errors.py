"""Exchange failures grouped by how the engine reacts to them (DESIGN §5).

===================  =============================================  ===================================
class                ccxt errors                                     engine reaction
===================  =============================================  ===================================
``TemporaryFailure`` NetworkError (RequestTimeout, InvalidNonce...),  retry (reads, cancels); during a
                     BadResponse, CancelPending, OperationFailed     create: look the order up first
``BackOff``          RateLimitExceeded, DDoSProtection,              wait, try again later
                     ExchangeNotAvailable (OnMaintenance)
``OutcomeUnknown``   (raised by the gateway, never by ccxt)          reconcile by client order id;
                                                                     never resend blindly
``OrderMissing``     OrderNotFound, OrderNotCached                   the exchange does not know it
``OrderRefused``     every other ExchangeError (InsufficientFunds,   final: record ``reason``; a plain
                     InvalidOrder, BadSymbol, BadRequest,            ``ExchangeError`` (see below) is
                     AuthenticationError, PermissionDenied,          not final during a create
                     AccountSuspended, ArgumentsRequired, ...)
===================  =============================================  ===================================

A plain ``ExchangeError`` is what ccxt raises for an answer it cannot classify (bybit ``retCode 10016
"System error"``, okx ``sCode 51149 "Order timed out"``, a code ccxt does not know yet). It proves
nothing about a create: :func:`is_unclassified` tells the gateway to look the order up by client id,
as after a timeout, instead of taking it as a refusal.

ccxt 4.5 quirks honoured here: ``RateLimitExceeded`` is a sibling of ``DDoSProtection`` (both under
``NetworkError``), so back-off classes are matched before ``NetworkError``; ``OrderNotFound`` and
``ArgumentsRequired`` are ``ExchangeError`` subclasses, so they are matched before ``ExchangeError``.

ccxt is never imported by this module: :func:`map_ccxt_error` only looks at ccxt's classes when ccxt
is already loaded (an exception cannot be a ccxt error otherwise).
"""

from __future__ import annotations

import sys
from functools import cache

__all__ = [
    "BackOff",
    "ExchangeFailure",
    "OrderMissing",
    "OrderRefused",
    "OutcomeUnknown",
    "TemporaryFailure",
    "is_unclassified",
    "map_ccxt_error",
]

_MAX_DETAIL = 300


class ExchangeFailure(Exception):
    """Base of every exchange failure.

    ``reason`` is readable by a trader; ``error`` names the underlying condition (the ccxt class name,
    e.g. ``"InsufficientFunds"``, or the gateway's own label); ``label`` is the short, stable, readable
    name of that condition without the exchange's detail (``"rate limit exceeded"``): the readable name
    of ``error`` when known, else ``reason``.
    """

    def __init__(self, reason: str, *, error: str | None = None, label: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error or type(self).__name__
        self.label = label or _LABELS.get(self.error) or reason


class TemporaryFailure(ExchangeFailure):
    """Network-class failure: the same request may succeed if retried."""


class BackOff(ExchangeFailure):
    """The exchange asks us to slow down or is unavailable: nothing was done, try again later."""


class OutcomeUnknown(ExchangeFailure):
    """A create may or may not have reached the exchange: reconcile by client order id, never resend."""


class OrderRefused(ExchangeFailure):
    """Final refusal (funds, parameters, symbol, credentials, permissions): do not retry."""


class OrderMissing(ExchangeFailure):
    """The exchange does not know the order."""


#: Trader-readable labels for the ccxt classes a trader is most likely to meet.
_LABELS: dict[str, str] = {
    "InsufficientFunds": "insufficient funds",
    "InvalidOrder": "order rejected by the exchange",
    "BadSymbol": "unknown or unsupported market",
    "BadRequest": "request rejected by the exchange",
    "AuthenticationError": "authentication failed (check the API key and secret)",
    "PermissionDenied": "the API key lacks the permission for this action",
    "AccountNotEnabled": "the account is not enabled for this action",
    "AccountSuspended": "the exchange account is suspended",
    "ArgumentsRequired": "the exchange needs more arguments for this call",
    "NotSupported": "the exchange does not support this action",
    "MarketClosed": "the market is closed",
    "OperationRejected": "the exchange rejected the operation",
    "RestrictedLocation": "the exchange refuses requests from this location",
    "OrderNotFound": "order not found on the exchange",
    "RateLimitExceeded": "rate limit exceeded",
    "DDoSProtection": "blocked by the exchange's DDoS protection",
    "ExchangeNotAvailable": "exchange not available",
    "OnMaintenance": "exchange under maintenance",
    "RequestTimeout": "request timed out",
    "NetworkError": "network error",
}


@cache
def _ccxt_table() -> tuple[tuple[type[BaseException], type[ExchangeFailure]], ...]:
    """(ccxt class, our class) pairs, most specific first; isinstance picks the first match."""
    from ccxt.base import errors as ce

    return (
        # back off: NetworkError subclasses, matched before NetworkError
        (ce.RateLimitExceeded, BackOff),
        (ce.DDoSProtection, BackOff),
        (ce.ExchangeNotAvailable, BackOff),  # includes OnMaintenance
        (ce.NetworkError, TemporaryFailure),  # RequestTimeout, InvalidNonce, ChecksumError
        # ExchangeError subclasses before ExchangeError
        (ce.OrderNotFound, OrderMissing),
        (ce.OrderNotCached, OrderMissing),
        (ce.ExchangeError, OrderRefused),  # InsufficientFunds, InvalidOrder, BadSymbol, Auth...
        (ce.BadResponse, TemporaryFailure),  # includes NullResponse
        (ce.OperationFailed, TemporaryFailure),  # includes CancelPending
        (ce.BaseError, TemporaryFailure),
    )


def _reason(exc: BaseException, error: str) -> str:
    detail = " ".join(str(exc).split())[:_MAX_DETAIL]
    label = _LABELS.get(error, error)
    return f"{label}: {detail}" if detail else label


def map_ccxt_error(exc: BaseException) -> ExchangeFailure:
    """Translate a ccxt (or transport) exception into the engine's hierarchy.

    An ``ExchangeFailure`` is returned unchanged; ``OSError``/``TimeoutError`` raised outside ccxt count
    as ``TemporaryFailure``; anything else becomes a plain ``ExchangeFailure`` (no known reaction).
    """
    if isinstance(exc, ExchangeFailure):
        return exc
    error = type(exc).__name__
    if "ccxt" in sys.modules:
        for ccxt_class, failure_class in _ccxt_table():
            if isinstance(exc, ccxt_class):
                return failure_class(_reason(exc, error), error=error, label=_LABELS.get(error, error))
    if isinstance(exc, OSError | TimeoutError):
        return TemporaryFailure(_reason(exc, "NetworkError"), error=error, label=_LABELS["NetworkError"])
    return ExchangeFailure(_reason(exc, error), error=error, label=_LABELS.get(error, error))


#: ccxt's base class for exchange answers: raised as itself only when ccxt could not classify the answer.
_UNCLASSIFIED = "ExchangeError"


def is_unclassified(failure: ExchangeFailure) -> bool:
    """True for a refusal ccxt could not classify (a plain ``ExchangeError``): it does not prove that
    the exchange turned a create away, so the order must be looked up before anything is decided."""
    return isinstance(failure, OrderRefused) and failure.error == _UNCLASSIFIED
