"""The webhook's HTTP answers (DESIGN §3.1): the one place a signal's outcome or refusal becomes a status.

- 202 ``{"outcome", "reason", "group_id"?, "queue_id"?, "accounts"}`` for every valid signal (rule refusals
  included): the first account's answer, and every account's under ``accounts`` (DESIGN §3.10);
- 503 ``accounts_incomplete`` with the same ``accounts`` map when some account failed in a way worth a
  resend (the resend re-runs only the accounts without a stored answer);
- 4xx ``{"outcome": "rejected", "error", "reason"}`` for unacceptable input (nothing written): 401 no
  credentials, 403 wrong ones, 413 body too large, 400 everything else — including a number that Decimal
  cannot hold wherever it surfaces (``decimal.DecimalException`` -> 400 ``out_of_range``: resending the
  same alert would fail the same way, so it is never a 5xx);
- 5xx ``{"outcome": "error", "error", "reason"}`` only when a resend by TradingView is wanted:
  503 ``config_unavailable`` (SSM could not be read: nothing was decided or stored, the resend is
  processed afresh), 503 ``in_progress`` (the same alert is still being processed by another delivery;
  a resend then gets the stored answer), 503 ``conflict`` (concurrent writers kept changing the key or
  the group),
  500 ``secret_unavailable`` (the webhook secret cannot be read), 500 ``internal_error`` (anything else: a
  store failure; Powertools removes the idempotency record, so the resend processes the alert afresh and
  finds writes already made by their derived ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import DecimalException
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from engine.app.context import EngineContext
from engine.app.intake import AccountsIncomplete, RoutingConflict, receive_signal
from engine.config import ConfigUnavailable, SecretError
from engine.domain.signal import SignalError
from engine.store import StaleWrite

__all__ = ["REFUSAL_STATUS", "WebhookReply", "handle_webhook", "reply_for_error"]

logger = Logger(child=True)

#: Status of a refused signal by its code; every other code is 400.
REFUSAL_STATUS: dict[str, HTTPStatus] = {
    "missing_secret": HTTPStatus.UNAUTHORIZED,
    "bad_secret": HTTPStatus.FORBIDDEN,
    "bad_signature": HTTPStatus.FORBIDDEN,
    "body_too_large": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
}


@dataclass(frozen=True)
class WebhookReply:
    """HTTP status and JSON body of the webhook's answer."""

    status: int
    body: dict[str, Any]


#: The 5xx answers (a resend by TradingView is wanted): status, code, reason.
IN_PROGRESS = (
    HTTPStatus.SERVICE_UNAVAILABLE,
    "in_progress",
    "the same alert is still being processed; resend later",
)
CONFIG_UNAVAILABLE = (
    HTTPStatus.SERVICE_UNAVAILABLE,
    "config_unavailable",
    "the configuration cannot be read right now; resend the alert",
)
CONFLICT = (HTTPStatus.SERVICE_UNAVAILABLE, "conflict", "concurrent changes to this key; resend later")
SECRET_UNAVAILABLE = (
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "secret_unavailable",
    "the webhook secret cannot be read",
)
#: A Decimal overflow or invalid operation anywhere on the path: the alert's numbers are the cause.
OUT_OF_RANGE = SignalError(
    "out_of_range",
    "a number in the alert is too large or too precise to trade at the market's precision;"
    " check entry_price, close_price and order_size",
)
ACCOUNTS_INCOMPLETE = (
    HTTPStatus.SERVICE_UNAVAILABLE,
    "accounts_incomplete",
    "some accounts could not be routed; resend the alert (accounts already done keep their answer)",
)
INTERNAL_ERROR = (
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "internal_error",
    "the signal could not be processed; resend it",
)


def _refusal(exc: SignalError) -> WebhookReply:
    status = REFUSAL_STATUS.get(str(exc.code), HTTPStatus.BAD_REQUEST)
    logger.warning("signal refused", status=int(status), error=exc.code, field=exc.field, reason=exc.reason)
    return WebhookReply(int(status), {"outcome": "rejected", "error": str(exc.code), "reason": exc.reason})


def _error(answer: tuple[HTTPStatus, str, str]) -> WebhookReply:
    status, code, reason = answer
    return WebhookReply(int(status), {"outcome": "error", "error": code, "reason": reason})


def reply_for_error(exc: Exception) -> WebhookReply:
    """The answer for an exception raised while handling a webhook (the only error mapping)."""
    if isinstance(exc, SignalError):
        return _refusal(exc)
    if isinstance(exc, AccountsIncomplete):
        logger.warning("some accounts not done: answering 503 so the alert is resent", error=str(exc))
        status, code, reason = ACCOUNTS_INCOMPLETE
        body = {"outcome": "error", "error": code, "reason": reason, "accounts": exc.accounts}
        return WebhookReply(int(status), body)
    if isinstance(exc, DecimalException):
        logger.warning("decimal arithmetic failed on the alert's numbers", error=repr(exc))
        return _refusal(OUT_OF_RANGE)
    if isinstance(exc, IdempotencyAlreadyInProgressError):
        logger.warning("the same alert is still being processed by another delivery")
        return _error(IN_PROGRESS)
    if isinstance(exc, RoutingConflict | StaleWrite):
        logger.warning("routing conflict", error=str(exc))
        return _error(CONFLICT)
    if isinstance(exc, ConfigUnavailable):
        logger.warning("configuration unreadable: answering 503 so the alert is resent", error=str(exc))
        return _error(CONFIG_UNAVAILABLE)
    if isinstance(exc, SecretError):
        logger.error("webhook secret unavailable", error=str(exc))
        return _error(SECRET_UNAVAILABLE)
    logger.exception("webhook failed")
    return _error(INTERNAL_ERROR)


def handle_webhook(
    ctx: EngineContext,
    body: str | bytes,
    headers: Mapping[str, str] | None,
    *,
    lambda_context: Any = None,
) -> WebhookReply:
    """Answer one webhook request (raw body and headers), received now on the context's clock."""
    try:
        answer = receive_signal(ctx, body, headers, ctx.now(), lambda_context=lambda_context)
    except Exception as exc:
        return reply_for_error(exc)
    return WebhookReply(int(HTTPStatus.ACCEPTED), dict(answer))
