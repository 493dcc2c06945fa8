"""Bad input at the webhook (DESIGN §3.1): a corpus of malformed TradingView alerts.

Given a webhook that already holds an open group (so a wrongly accepted alert would pyramid, be
recorded as a duplicate or close it — all writes), when each malformed alert arrives as a real API
Gateway proxy event, then it is answered 4xx ``{"outcome": "rejected", "error", "reason"}``, the reason
names the problem in a trader's words, the refusal is logged and counted (``WebhookSignals`` metric),
and not one item is written to any of the twelve tables (idempotency and signals audit included).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from engine.app.intake import reset_persistence_layer
from engine.config import clear_cache
from engine.store import create_all_tables, reset_connections
from engine.store.tables import TABLES
from tests.integration.conftest import FAKE_ENV
from tests.support.webhook import (
    SECRET,
    WebhookClient,
    alert,
    capture_powertools_logs,
    emf_metrics,
    json_lines,
    prepare_webhook,
    sign,
    table_counts,
)

Body = dict[str, Any] | list[Any] | str | bytes
_DELETE = object()


@dataclass(frozen=True)
class Request:
    """One HTTP request to the webhook."""

    body: Body
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Bad:
    """A malformed alert and the answer DESIGN §3.1 asks for; ``word`` must appear in the reason."""

    case: str
    make: Callable[[], Request]
    status: int
    code: str
    word: str


# --------------------------------------------------------------------------- body builders


def edited(*changes: tuple[str, Any], **alert_fields: Any) -> Callable[[], Request]:
    """A valid alert with dotted paths set (or removed with ``_DELETE``)."""

    def make() -> Request:
        body = alert(**alert_fields)
        for path, value in changes:
            *parents, leaf = path.split(".")
            node: Any = body
            for part in parents:
                node = node.setdefault(part, {})
            if value is _DELETE:
                node.pop(leaf, None)
            else:
                node[leaf] = copy.deepcopy(value)
        return Request(body)

    return make


def raw(text: str | bytes, content_type: str = "application/json") -> Callable[[], Request]:
    return lambda: Request(text, content_type=content_type)


def valid_json_with(*changes: tuple[str, Any]) -> Callable[[], Request]:
    """A body serialised by ``json.dumps`` defaults (``NaN``/``Infinity`` literals allowed)."""

    def make() -> Request:
        request = edited(*changes)()
        assert isinstance(request.body, dict)
        return Request(json.dumps(request.body))

    return make


def truncated() -> Request:
    text = json.dumps(alert())
    return Request(text[: len(text) // 2])


def wrapped_in_array() -> Request:
    return Request([alert()])


def form_encoded() -> Request:
    return Request(
        f"secret={SECRET}&exchange=BINANCE&symbol=BTCUSDT&timeframe=60&action=buy&entry_price=50000",
        content_type="application/x-www-form-urlencoded",
    )


def padded(size: int, **alert_fields: Any) -> Request:
    """An otherwise valid alert whose JSON is exactly ``size`` bytes."""
    body = alert(**alert_fields)
    body["note"] = ""
    body["note"] = "x" * (size - len(json.dumps(body).encode()))
    text = json.dumps(body).encode()
    assert len(text) == size
    return Request(text)


def signed(
    key: str | None = None, signature: str | None = None, **alert_fields: Any
) -> Callable[[], Request]:
    """An alert authenticated by ``X-Signature`` (HMAC with ``key``, or the literal ``signature``)."""

    def make() -> Request:
        body = json.dumps(alert(**alert_fields)).encode()
        value = signature if signature is not None else sign(body, key or SECRET)
        return Request(body, headers=[("X-Signature", value)])

    return make


def signed_other_body() -> Request:
    body = json.dumps(alert(secret=None, trade_id="sent")).encode()
    other = json.dumps(alert(secret=None, trade_id="signed")).encode()
    return Request(body, headers=[("X-Signature", sign(other))])


def at(offset_seconds: float) -> Callable[[], Request]:
    return lambda: Request(alert(timestamp=datetime.now(UTC) + timedelta(seconds=offset_seconds)))


def epoch_timestamp(value: Any) -> Callable[[], Request]:
    return edited(("timestamp", value))


def future_epoch_ms() -> Request:
    moment = datetime.now(UTC) + timedelta(hours=1)
    return edited(("timestamp", int(moment.timestamp() * 1000)))()


# --------------------------------------------------------------------------- the corpus

CORPUS: list[Bad] = [
    # broken JSON and wrong top-level shapes
    Bad("plain text", raw("buy BTCUSDT now"), 400, "malformed", "JSON"),
    Bad("truncated JSON", truncated, 400, "malformed", "JSON"),
    Bad("trailing comma", raw('{"secret": "x", "tv": {"symbol": "BTCUSDT"},}'), 400, "malformed", "JSON"),
    Bad("python dict quotes", raw("{'secret': 'x', 'tv': {}}"), 400, "malformed", "JSON"),
    Bad("empty body", raw(""), 400, "malformed", "JSON"),
    Bad("whitespace body", raw("  \n "), 400, "malformed", "JSON"),
    Bad("array instead of object", wrapped_in_array, 400, "malformed", "object"),
    Bad("JSON string", raw('"buy"'), 400, "malformed", "object"),
    Bad("JSON null", raw("null"), 400, "malformed", "object"),
    Bad("JSON number", raw("42"), 400, "malformed", "object"),
    Bad("form-encoded body", form_encoded, 400, "malformed", "JSON"),
    Bad("not UTF-8", raw(b"\xff\xfe\x00{\x81"), 400, "malformed", "JSON"),
    # missing fields
    Bad("missing tv", edited(("tv", _DELETE)), 400, "invalid_field", "tv"),
    Bad("missing symbol", edited(("tv.symbol", _DELETE)), 400, "invalid_field", "symbol"),
    Bad("empty symbol", edited(("tv.symbol", "")), 400, "invalid_field", "symbol"),
    Bad("missing timeframe", edited(("tv.timeframe", _DELETE)), 400, "invalid_field", "timeframe"),
    Bad("missing action", edited(("tv.action", _DELETE)), 400, "invalid_field", "action"),
    Bad("missing exchange", edited(("tv.exchange", _DELETE)), 400, "invalid_field", "exchange"),
    # wrong types and values
    Bad("tv is text", edited(("tv", "BINANCE:BTCUSDT")), 400, "invalid_field", "object"),
    Bad("tv is a list", edited(("tv", ["BTCUSDT", "buy"])), 400, "invalid_field", "object"),
    Bad("execution_intent is text", edited(("execution_intent", "exit")), 400, "invalid_field", "object"),
    Bad("strategy_info is a list", edited(("strategy_info", ["t-1"])), 400, "invalid_field", "object"),
    Bad("price is a list", edited(("tv.entry_price", [50000])), 400, "invalid_field", "number"),
    Bad("price in words", edited(("tv.entry_price", "fifty thousand")), 400, "invalid_field", "number"),
    Bad("timeframe is a boolean", edited(("tv.timeframe", True)), 400, "invalid_field", "timeframe"),
    Bad("timeframe 7 hours", edited(("tv.timeframe", "7h")), 400, "invalid_field", "timeframe"),
    Bad("timeframe 0", edited(("tv.timeframe", "0")), 400, "invalid_field", "timeframe"),
    Bad("timestamp in words", edited(("timestamp", "yesterday")), 400, "invalid_field", "time"),
    Bad("action hold", edited(("tv.action", "hold")), 400, "invalid_field", "action"),
    Bad(
        "market position sideways",
        edited(("tv.market_position", "sideways")),
        400,
        "invalid_field",
        "position",
    ),
    Bad(
        "size type lots",
        edited(("execution_intent.position_size_type", "lots")),
        400,
        "invalid_field",
        "size",
    ),
    Bad("symbol without quote", edited(("tv.symbol", "BTC")), 400, "invalid_field", "quote"),
    Bad("symbol of punctuation", edited(("tv.symbol", "B$C/US#T")), 400, "invalid_field", "symbol"),
    # NaN and infinities
    Bad(
        "NaN literal price", valid_json_with(("tv.entry_price", float("nan"))), 400, "invalid_field", "finite"
    ),
    Bad(
        "Infinity literal size",
        valid_json_with(("tv.order_size", float("inf"))),
        400,
        "invalid_field",
        "finite",
    ),
    Bad("NaN string price", edited(("tv.entry_price", "NaN")), 400, "invalid_field", "finite"),
    Bad("inf string price", edited(("tv.entry_price", "inf")), 400, "invalid_field", "finite"),
    Bad("-Infinity string size", edited(("tv.order_size", "-Infinity")), 400, "invalid_field", "size"),
    # zero and negative prices and sizes
    Bad("zero price", edited(("tv.entry_price", 0)), 400, "invalid_field", "positive"),
    Bad("negative price", edited(("tv.entry_price", -50000)), 400, "invalid_field", "positive"),
    Bad("negative price string", edited(("tv.entry_price", "-50000")), 400, "invalid_field", "positive"),
    Bad("zero order size", edited(("tv.order_size", "0")), 400, "invalid_field", "positive"),
    Bad("negative order size", edited(("tv.order_size", -100)), 400, "invalid_field", "positive"),
    Bad("negative close price", edited(("tv.close_price", "-1")), 400, "invalid_field", "positive"),
    Bad("zero stop loss", edited(("risk.stop_loss", 0)), 400, "invalid_field", "positive"),
    Bad("negative position size", edited(("tv.market_position_size", -1)), 400, "invalid_field", "negative"),
    # unfilled placeholders
    Bad("placeholder price", edited(("tv.entry_price", "{{close}}")), 400, "placeholder", "placeholder"),
    Bad("placeholder timestamp", edited(("timestamp", "{{timenow}}")), 400, "placeholder", "placeholder"),
    Bad("placeholder symbol", edited(("tv.symbol", "{{ticker}}")), 400, "placeholder", "placeholder"),
    Bad(
        "placeholder alert message",
        edited(("strategy_info.alert_message", "{{strategy.order.alert_message}}")),
        400,
        "placeholder",
        "placeholder",
    ),
    # intents TradingView strategies can send that the engine does not do
    Bad("reduce intent", edited(intent="reduce"), 400, "unsupported_intent", "reduce"),
    Bad("reverse intent", edited(intent="reverse"), 400, "unsupported_intent", "reverse"),
    Bad("unknown intent", edited(intent="close_all"), 400, "unknown_intent", "close_all"),
    Bad(
        "sell while staying long",
        edited(action="sell", market_position="long"),
        400,
        "unsupported_intent",
        "partial",
    ),
    Bad(
        "short on a spot account",
        edited(action="sell", market_position="short"),
        400,
        "unsupported_side",
        "spot",
    ),
    # exchange and symbol
    Bad("unknown exchange", edited(exchange="KRAKEN"), 400, "unknown_exchange", "kraken"),
    Bad(
        "unknown exchange prefix",
        edited(("tv.exchange", _DELETE), symbol="COINBASE:BTCUSDT"),
        400,
        "unknown_exchange",
        "coinbase",
    ),
    Bad("unknown symbol", edited(symbol="FOOUSDT"), 400, "unknown_symbol", "FOO/USDT"),
    Bad("unknown slash symbol", edited(symbol="XYZ/USDT"), 400, "unknown_symbol", "XYZ/USDT"),
    # size cap (checked before anything else)
    Bad("body 1 byte over 8 KiB", lambda: padded(8193), 413, "body_too_large", "KiB"),
    Bad("body of 64 KiB", lambda: padded(64 * 1024), 413, "body_too_large", "KiB"),
    Bad("oversized and unauthenticated", lambda: padded(9000, secret=None), 413, "body_too_large", "KiB"),
    # authentication
    Bad("no secret, no signature", edited(secret=None), 401, "missing_secret", "secret"),
    Bad("empty secret", edited(secret=""), 401, "missing_secret", "secret"),
    Bad(
        "empty X-Signature",
        lambda: Request(alert(secret=None), headers=[("X-Signature", "")]),
        401,
        "missing_secret",
        "secret",
    ),
    Bad("wrong secret", edited(secret="guess"), 403, "bad_secret", "secret"),
    Bad("secret in the wrong case", edited(secret=SECRET.upper()), 403, "bad_secret", "secret"),
    Bad("all-zero HMAC", signed(signature="00" * 32, secret=None), 403, "bad_signature", "Signature"),
    Bad("HMAC with another key", signed(key="another-key", secret=None), 403, "bad_signature", "Signature"),
    Bad("HMAC of another body", signed_other_body, 403, "bad_signature", "Signature"),
    Bad("HMAC not hex", signed(signature="sha256=not-hex!", secret=None), 403, "bad_signature", "Signature"),
    Bad("right secret, bad HMAC", signed(signature="ab" * 32), 403, "bad_signature", "Signature"),
    Bad("right HMAC, wrong secret", signed(secret="guess"), 403, "bad_secret", "secret"),
    # timestamps
    Bad("stale by 400 s", at(-400), 400, "stale_signal", "old"),
    Bad("stale by a day", at(-86400), 400, "stale_signal", "old"),
    Bad("stale epoch seconds", epoch_timestamp(1_000_000_000), 400, "stale_signal", "old"),
    Bad("future by 120 s", at(120), 400, "future_signal", "future"),
    Bad("future epoch milliseconds", future_epoch_ms, 400, "future_signal", "future"),
]


def test_the_corpus_is_large_and_its_cases_are_distinct() -> None:
    # Given the corpus, then it holds at least 40 differently named cases
    names = [bad.case for bad in CORPUS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


# --------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def client() -> Iterator[WebhookClient]:
    """Default config, the webhook secret, and one group already open on binance BTC/USDT 60.

    Module-scoped (the ``aws_credentials`` + ``dynamodb`` fixtures' steps, once): the corpus writes
    nothing by definition and each case compares its own before/after counts, so sharing one world
    loses no isolation and saves ~2 s of moto setup per case.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in FAKE_ENV.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            monkeypatch.delenv(name, raising=False)
        reset_connections()
        with mock_aws():
            create_all_tables()
            webhook = prepare_webhook(monkeypatch)
            first = alert(timestamp=datetime.now(UTC) - timedelta(seconds=30), trade_id="first")
            status, body = webhook.post(first)
            assert (status, body["outcome"]) == (202, "opened"), body
            yield webhook
            reset_persistence_layer()
            clear_cache()
        reset_connections()


@pytest.mark.parametrize("bad", [pytest.param(bad, id=bad.case) for bad in CORPUS])
def test_malformed_alert_is_refused_in_words_and_writes_nothing(
    client: WebhookClient, bad: Bad, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given every table counted (all twelve, with the first group's items in them)
    before = table_counts()
    assert len(before) == len(TABLES) == 12
    assert before[next(name for name in before if name.endswith("idempotency"))] == 1
    # the first group's signal event and its "opened" event
    assert before[next(name for name in before if name.endswith("events"))] == 2
    request = bad.make()
    capsys.readouterr()

    # When the alert arrives as an API Gateway proxy event
    with capture_powertools_logs() as logs:
        status, body = client.post(request.body, headers=request.headers, content_type=request.content_type)
    printed = capsys.readouterr().out

    # Then: 4xx rejected with the code and a reason naming the problem
    assert (status, body.get("outcome"), body.get("error")) == (bad.status, "rejected", bad.code), body
    assert set(body) == {"outcome", "error", "reason"}
    assert bad.word.lower() in body["reason"].lower(), body["reason"]
    # and nothing was written anywhere
    assert table_counts() == before
    # and the refusal is logged and counted (log line + metric only)
    assert any(line.get("error") == bad.code for line in json_lines(logs.getvalue(), printed))
    counted = emf_metrics(printed, "WebhookSignals")
    assert [blob.get("Result") for blob in counted] == [bad.code]


def test_a_resent_refusal_still_writes_nothing(client: WebhookClient) -> None:
    # Given a refused alert (unknown symbol) sent once
    body = alert(symbol="FOOUSDT", trade_id="again")
    before = table_counts()
    first = client.post(body)
    # When TradingView resends exactly the same body
    second = client.post(body)
    # Then both get the same refusal and still nothing is written (no idempotency record either)
    assert first == second
    assert first[0] == 400
    assert table_counts() == before
