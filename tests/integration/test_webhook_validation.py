"""Given unacceptable webhook input, when it reaches the webhook Lambda, then it gets the 4xx of DESIGN §3.1
and nothing is written anywhere (not even an idempotency record); acceptable variants get 202."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from engine.api.webhook import reply_for_error
from engine.app.context import stores
from engine.app.intake import MAX_BODY_BYTES, RoutingConflict
from engine.config import SecretError
from engine.domain.models import MarketPrecision
from engine.domain.signal import SignalError
from engine.store import StaleWrite
from tests.support.webhook import (
    HANDLER_PATH,
    ROOT,
    WebhookClient,
    alert,
    sign,
    table_counts,
)


def _with(**fields: Any) -> Callable[[], dict[str, Any]]:
    return lambda: alert(**fields)


def _placeholder() -> dict[str, Any]:
    body = alert()
    body["tv"]["entry_price"] = "{{close}}"
    return body


def _padded(size: int) -> bytes:
    """A valid alert whose JSON is exactly ``size`` bytes (padding in an extra field)."""
    body = alert()
    body["note"] = ""
    base = len(json.dumps(body).encode())
    body["note"] = "x" * (size - base)
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


REFUSALS: list[tuple[str, Callable[[], Any], list[tuple[str, str]], int, str]] = [
    ("no secret, no signature", _with(secret=None), [], 401, "missing_secret"),
    ("wrong secret", _with(secret="guess"), [], 403, "bad_secret"),
    ("wrong signature", _with(secret=None), [("X-Signature", "00" * 32)], 403, "bad_signature"),
    ("not JSON", lambda: "hello", [], 400, "malformed"),
    ("placeholder left", _placeholder, [], 400, "placeholder"),
    ("unknown exchange", _with(exchange="KRAKEN"), [], 400, "unknown_exchange"),
    ("unknown symbol", _with(symbol="FOOUSDT"), [], 400, "unknown_symbol"),
    (
        "stale timestamp",
        lambda: alert(timestamp=datetime.now(UTC) - timedelta(seconds=400)),
        [],
        400,
        "stale_signal",
    ),
    (
        "future timestamp",
        lambda: alert(timestamp=datetime.now(UTC) + timedelta(seconds=120)),
        [],
        400,
        "future_signal",
    ),
    ("reduce intent", _with(intent="reduce"), [], 400, "unsupported_intent"),
    ("short on a spot account", _with(action="sell", market_position="short"), [], 400, "unsupported_side"),
    ("body over 8 KiB", lambda: _padded(MAX_BODY_BYTES + 1), [], 413, "body_too_large"),
]


@pytest.mark.parametrize(
    ("case", "make_body", "headers", "status", "code"), REFUSALS, ids=[case[0] for case in REFUSALS]
)
def test_unacceptable_input_is_refused_and_writes_nothing(
    client: WebhookClient,
    case: str,
    make_body: Callable[[], Any],
    headers: list[tuple[str, str]],
    status: int,
    code: str,
) -> None:
    # Given the tables before
    before = table_counts()
    # When the input arrives
    got_status, body = client.post(make_body(), headers=headers)
    # Then the answer names the problem and no table changed
    assert (got_status, body["outcome"], body["error"]) == (status, "rejected", code)
    assert body["reason"]
    assert table_counts() == before
    assert sum(before.values()) == 0


def test_body_of_exactly_8_kib_is_accepted(client: WebhookClient) -> None:
    status, body = client.post(_padded(MAX_BODY_BYTES))
    assert (status, body["outcome"]) == (202, "opened")


@pytest.mark.parametrize("header_name", ["X-Signature", "x-signature", "X-SIGNATURE"])
def test_a_valid_hmac_signature_authenticates_without_a_body_secret(
    client: WebhookClient, header_name: str
) -> None:
    raw = json.dumps(alert(secret=None)).encode()
    status, body = client.post(raw, headers=[(header_name, sign(raw))])
    assert (status, body["outcome"]) == (202, "opened")


def test_a_sha256_prefixed_signature_is_accepted(client: WebhookClient) -> None:
    raw = json.dumps(alert(secret=None)).encode()
    status, _ = client.post(raw, headers=[("X-Signature", "sha256=" + sign(raw))])
    assert status == 202


def test_a_signature_over_another_body_is_refused(client: WebhookClient) -> None:
    raw = json.dumps(alert(secret=None)).encode()
    other = json.dumps(alert(secret=None, entry_price="1")).encode()
    status, body = client.post(raw, headers=[("X-Signature", sign(other))])
    assert (status, body["error"]) == (403, "bad_signature")


def test_text_plain_content_type_is_parsed_as_json(client: WebhookClient) -> None:
    status, body = client.post(alert(), content_type="text/plain; charset=utf-8")
    assert (status, body["outcome"]) == (202, "opened")


def test_a_base64_encoded_body_is_decoded(client: WebhookClient) -> None:
    status, body = client.post_base64(alert())
    assert (status, body["outcome"]) == (202, "opened")


def test_a_symbol_from_the_markets_table_is_known(client: WebhookClient) -> None:
    # Given a market only the markets table knows (not in the paper table)
    precision = MarketPrecision("PEPE/USDT", Decimal("0.0000001"), Decimal(1), Decimal(1), Decimal(5))
    stores().markets.put_many("binance", [precision], datetime.now(UTC))
    status, body = client.post(alert(symbol="PEPEUSDT", entry_price="0.00001"))
    assert (status, body["outcome"]) == (202, "opened")


ERRORS: list[tuple[Exception, int, str]] = [
    (SignalError("placeholder", "x"), 400, "placeholder"),
    (SignalError("bad_secret", "x"), 403, "bad_secret"),
    (SignalError("bad_signature", "x"), 403, "bad_signature"),
    (SignalError("missing_secret", "x"), 401, "missing_secret"),
    (SignalError("body_too_large", "x"), 413, "body_too_large"),
    (SignalError("unknown_symbol", "x"), 400, "unknown_symbol"),
    (IdempotencyAlreadyInProgressError("busy"), 503, "in_progress"),
    (RoutingConflict("busy"), 503, "conflict"),
    (StaleWrite("moved"), 503, "conflict"),
    (SecretError("execution-engine/local/webhook", "missing"), 500, "secret_unavailable"),
    (RuntimeError("store down"), 500, "internal_error"),
]


@pytest.mark.parametrize(("error", "status", "code"), ERRORS, ids=[type(e[0]).__name__ for e in ERRORS])
def test_errors_map_to_answers_in_one_place(error: Exception, status: int, code: str) -> None:
    reply = reply_for_error(error)
    assert (reply.status, reply.body["error"]) == (status, code)
    assert reply.body["outcome"] == ("rejected" if status < 500 else "error")


def test_the_handler_does_not_import_ccxt() -> None:
    # Given a fresh interpreter, when the webhook handler module is imported, then ccxt is not loaded
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('webhook_handler', {str(HANDLER_PATH)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert callable(module.lambda_handler)\n"
        "print('ccxt' in sys.modules)\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "layers" / "engine" / "python"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
