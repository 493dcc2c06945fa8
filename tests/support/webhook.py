"""Driving the webhook Lambda in tests: real API Gateway proxy events into ``functions/webhook/handler.py``.

- :func:`load_webhook_handler`: the handler module, loaded by path (every function's module is ``handler``).
- :class:`WebhookClient`: POST an alert (dict / text / bytes) and get ``(status, body)`` back.
- :func:`alert`: a TradingView alert body with sensible defaults (binance BTCUSDT 60, buy at 50000).
- :func:`minute_times`: timestamps in distinct 1-minute candles, all inside the 300 s replay window.
- :func:`same_candle_times`: timestamps inside one candle of ``timeframe`` minutes, inside the window.
- :func:`table_counts`: items per engine table (to prove that nothing was written).
- :func:`capture_powertools_logs`: the JSON lines every Powertools ``Logger`` writes, into a buffer.
- :func:`json_lines`: the JSON objects among captured output lines (log records, EMF metrics).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from engine.local.events import api_gateway_event
from engine.local.functions import LambdaContext
from engine.store.tables import TABLES, table_name

ROOT = Path(__file__).resolve().parents[2]
HANDLER_PATH = ROOT / "functions" / "webhook" / "handler.py"
SECRET = "test-webhook-secret"
TRADINGVIEW_IP = "52.89.214.238"
_MODULE_NAME = "_test_function_webhook_handler"


def load_webhook_handler() -> ModuleType:
    """``functions/webhook/handler.py`` as a module (loaded once per process, like a warm Lambda)."""
    module = sys.modules.get(_MODULE_NAME)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, HANDLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def alert(
    *,
    action: str = "buy",
    exchange: str = "BINANCE",
    symbol: str = "BTCUSDT",
    timeframe: str = "60",
    entry_price: str | None = "50000",
    timestamp: datetime | None = None,
    secret: str | None = SECRET,
    market_position: str | None = None,
    intent: str | None = None,
    trade_id: str | None = None,
    order_size: str | None = None,
) -> dict[str, Any]:
    """A TradingView alert body; ``timestamp`` defaults to now (within the replay window)."""
    moment = timestamp or datetime.now(UTC)
    tv: dict[str, Any] = {
        "exchange": exchange,
        "symbol": symbol,
        "timeframe": timeframe,
        "action": action,
        "market_position": market_position or ("long" if action == "buy" else "flat"),
    }
    if entry_price is not None:
        tv["entry_price"] = entry_price
    if order_size is not None:
        tv["order_size"] = order_size
    body: dict[str, Any] = {
        "source": "tradingview",
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "tv": tv,
        "strategy_info": {"trade_id": trade_id or f"t-{moment.timestamp()}", "alert_name": "test"},
        "execution_intent": {"type": intent or "signal", "position_size_type": "quote"},
    }
    if secret is not None:
        body["secret"] = secret
    return body


def exit_alert(**fields: Any) -> dict[str, Any]:
    """A sell-to-flat (exit of the long group) alert."""
    return alert(action="sell", market_position="flat", **fields)


def sign(body: bytes, secret: str = SECRET) -> str:
    """The ``X-Signature`` of ``body``: hex HMAC-SHA256 keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def minute_times(count: int, now: datetime | None = None) -> list[datetime]:
    """``count`` (≤ 6) timestamps 61 s apart: each in its own 1-minute candle, none older than 280 s."""
    start = (now or datetime.now(UTC)) - timedelta(seconds=280)
    return [start + timedelta(seconds=61 * index) for index in range(count)]


def same_candle_times(count: int, timeframe_minutes: int, now: datetime | None = None) -> list[datetime]:
    """``count`` timestamps one second apart inside the current candle and the replay window."""
    moment = now or datetime.now(UTC)
    length = timedelta(minutes=timeframe_minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    candle_start = epoch + ((moment - epoch) // length) * length
    first = max(candle_start, moment - timedelta(seconds=250))
    return [first + timedelta(seconds=index) for index in range(count)]


class WebhookClient:
    """Posts alerts to the webhook Lambda as API Gateway would."""

    def __init__(self) -> None:
        self.handler = load_webhook_handler()

    def event(
        self,
        body: dict[str, Any] | list[Any] | str | bytes,
        *,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        text = body if isinstance(body, str | bytes) else json.dumps(body)
        raw = text if isinstance(text, bytes) else text.encode()
        return api_gateway_event(
            method="POST",
            path="/webhook",
            query="",
            headers=[("Content-Type", content_type), ("User-Agent", "Go-http-client/1.1"), *(headers or [])],
            body=raw,
            resource="/webhook",
            source_ip=TRADINGVIEW_IP,
        )

    def respond(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's whole proxy response (status, headers, body) for ``event``."""
        context = LambdaContext(
            function_name="execution-engine-local-webhook",
            invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:execution-engine-local-webhook",
        )
        response: dict[str, Any] = self.handler.lambda_handler(event, context)
        return response

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.respond(event)
        return int(response["statusCode"]), json.loads(response["body"])

    def post(
        self, body: dict[str, Any] | list[Any] | str | bytes, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        return self.invoke(self.event(body, **kwargs))

    def post_base64(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        event = self.event(body)
        event["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        event["isBase64Encoded"] = True
        return self.invoke(event)


def table_counts() -> dict[str, int]:
    """Items in every engine table (full scans; fine for tests)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    counts: dict[str, int] = {}
    for _env, _short, model in TABLES:
        name = table_name(model)
        pages = client.get_paginator("scan").paginate(TableName=name, Select="COUNT")
        counts[name] = sum(page["Count"] for page in pages)
    return counts


def prepare_webhook(monkeypatch: Any) -> WebhookClient:
    """Inside ``mock_aws`` (or the moto server): config seeded and read fresh, webhook secret stored,
    idempotency persistence re-created for this AWS endpoint; returns a client for the handler."""
    from engine.app.intake import reset_persistence_layer
    from engine.config import seed_webhook_secret
    from tests.support.scenario import engine_env

    engine_env(monkeypatch)
    seed_webhook_secret(SECRET)
    reset_persistence_layer()
    return WebhookClient()


@contextlib.contextmanager
def capture_powertools_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Every Powertools ``Logger`` (one stdlib logger per service name) writes into the yielded buffer.

    A Powertools ``Logger`` binds ``sys.stdout`` when its service's logger is first configured, so
    ``capsys`` misses it once another test configured it: this swaps the stream of each Powertools
    handler (and lowers the level to ``level``) for the duration, then restores both. Loggers first
    configured inside the block still write to the ``sys.stdout`` of that moment (``capsys``).
    """
    buffer = io.StringIO()
    restore: list[tuple[logging.Logger, logging.StreamHandler[Any], Any, int]] = []
    for candidate in list(logging.root.manager.loggerDict.values()):
        handler = getattr(candidate, "powertools_handler", None)
        if not isinstance(candidate, logging.Logger) or not isinstance(handler, logging.StreamHandler):
            continue
        with handler.lock or contextlib.nullcontext():
            previous = handler.stream
            handler.stream = buffer  # not setStream(): that flushes the old stream, maybe a closed one
        restore.append((candidate, handler, previous, candidate.level))
        candidate.setLevel(level)
    try:
        yield buffer
    finally:
        for candidate, handler, previous, old_level in restore:
            with handler.lock or contextlib.nullcontext():
                handler.stream = previous
            candidate.setLevel(old_level)


def json_lines(*texts: str) -> list[dict[str, Any]]:
    """The JSON objects among the lines of ``texts`` (Powertools log records, EMF metric blobs)."""
    found: list[dict[str, Any]] = []
    for text in texts:
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                blob = json.loads(line)
            except ValueError:
                continue
            if isinstance(blob, dict):
                found.append(blob)
    return found


def emf_metrics(output: str, name: str) -> list[dict[str, Any]]:
    """The EMF blobs in ``output`` that carry metric ``name`` (with their dimension values)."""
    return [blob for blob in json_lines(output) if "_aws" in blob and name in blob]
