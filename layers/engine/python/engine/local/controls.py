"""Parsing of the ``/_local/*`` control requests (the runtime performs them), and the local notifier.

The notifier locally (DESIGN §3.11, §6): its own stream pump on the events table, in its own thread.

The main pump feeds the trading functions; a slow Telegram (timeouts, 429 waits) must never stall fills,
so the ``notifier`` function gets a separate :class:`~engine.local.pump.StreamPump` with the same Lambda
semantics (partial batch failures, bisect, retries, dead letters). Messages go where the ``notify``
document says: SNS is the local moto topic created at start (``NOTIFY_TOPIC_ARN``), Telegram the real
Bot API when enabled and a token is stored. ``GET /_local/notifications`` lists every message kept by
the notifier (sent, or that would have been sent where no channel is on).
"""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal, InvalidOperation
from typing import Any

import boto3

from engine.domain.signal import SignalError, normalize_symbol
from engine.local.functions import BACKGROUND, FunctionRegistry
from engine.local.pump import Consumer, StreamPump


class ControlError(ValueError):
    """A bad control request: answered 400 ``{"error": "bad_request", "reason": ...}``."""


def parse_prices(body: bytes) -> dict[str, Decimal]:
    """``{"BTC/USDT": 64000.5, "ETHUSDT": "3100"}`` -> ccxt symbol -> positive finite Decimal."""
    try:
        document = json.loads(body or b"null", parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise ControlError(f"body is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not document:
        raise ControlError('expected a JSON object of prices, e.g. {"BTC/USDT": 64000.5}')
    prices: dict[str, Decimal] = {}
    for raw_symbol, raw_price in document.items():
        try:
            _prefix, symbol = normalize_symbol(raw_symbol, "symbol")
        except SignalError as exc:
            raise ControlError(exc.reason) from exc
        try:
            price = Decimal(str(raw_price)) if isinstance(raw_price, Decimal | str) else None
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or price <= 0:
            raise ControlError(f"{raw_symbol}: price must be a positive number, got {raw_price!r}")
        prices[symbol] = price
    return prices


# --------------------------------------------------------------------------- the local notifier

log = logging.getLogger("engine.local.notifications")

NOTIFIER = "notifier"
TOPIC_NAME = "execution-engine-local-notifications"


def create_topic(region: str) -> str:
    """Create (or find) the local notifications topic and point the notifier at it; its ARN."""
    arn = str(boto3.client("sns", region_name=region).create_topic(Name=TOPIC_NAME)["TopicArn"])
    os.environ["NOTIFY_TOPIC_ARN"] = arn
    return arn


class LocalNotifier:
    """The notifier's pump (a daemon thread of its own)."""

    def __init__(self, registry: FunctionRegistry, region: str, poll_seconds: float) -> None:
        self.enabled = registry.exists(NOTIFIER)
        if not self.enabled:
            log.warning("function %s not found: no notifications", NOTIFIER)
        consumers = (
            [Consumer(NOTIFIER, os.environ["EVENTS_TABLE"], lambda event: registry.invoke(NOTIFIER, event))]
            if self.enabled
            else []
        )
        self.pump = StreamPump(
            consumers,
            dynamodb=boto3.client("dynamodb", region_name=region),
            streams=boto3.client("dynamodbstreams", region_name=region),
            region=region,
            poll_seconds=poll_seconds,
            lane_setup=lambda _lane: registry.priorities.assign(BACKGROUND) if registry.priorities else None,
        )

    def start(self) -> None:
        """Start the pump thread."""
        if self.enabled:
            self.pump.start()

    def stop(self) -> None:
        """Stop the pump thread after its current pass."""
        self.pump.stop()


def notifications() -> tuple[int, dict[str, Any]]:
    """``GET /_local/notifications``: ``{"notifications": [{"at", "event", "group_id"?, "account"?, "text",
    "channels"}]}``, oldest first."""
    from engine.app.context import engine_context
    from engine.app.notify import list_notifications

    return 200, {"notifications": list_notifications(engine_context().stores)}
