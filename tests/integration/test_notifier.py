"""The notifier (DESIGN §3.11): the events stream becomes one short message per configured event.

A fake Telegram Bot API (``tests.support.fake_telegram``) receives the messages; the notifier function is
driven with moto's real stream records of the events table, as Lambda would deliver them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from engine.app.context import Stores
from engine.config import clear_cache
from engine.domain.events import KIND_CONFIG, KIND_GROUP, KIND_RISK, KIND_SIGNAL, Event
from engine.store import table_name
from engine.store.tables import EventModel
from tests.support.fake_telegram import FakeTelegram
from tests.support.streams import StreamTap, load_function
from tests.support.webhook import WebhookClient

CHAT = "4242"
TOKEN = "123456:TEST-token"


def _notify(document: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/execution-engine/local/notify", Value=json.dumps(document), Type="String", Overwrite=True
    )
    clear_cache()


@pytest.fixture
def telegram(client: WebhookClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelegram]:
    """A fake Bot API, the notify document turning Telegram on, the bot token stored."""
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="execution-engine/local/telegram", SecretString=TOKEN
    )
    _notify({"telegram": {"enabled": True, "chat_id": CHAT}, "sns": False})
    monkeypatch.setenv("TELEGRAM_TIMEOUT_SECONDS", "0.5")
    monkeypatch.delenv("NOTIFY_TOPIC_ARN", raising=False)
    with FakeTelegram(retry_after=1, hold_seconds=1.5) as fake:
        monkeypatch.setenv("TELEGRAM_API_URL", fake.url)
        yield fake


def _events(now: datetime) -> list[Event]:
    common = {"account": "binance", "symbol": "BTC/USDT", "side": "long", "timeframe": 60}
    return [
        Event(
            id="group#g1#v1",
            at=now,
            kind=KIND_GROUP,
            name="opened",
            group_id="g1",
            data={"entry_price": "50000", "capital_usd": "200"},
            **common,
        ),
        Event(
            id="group#g1#v5",
            at=now,
            kind=KIND_GROUP,
            name="closed",
            group_id="g1",
            reason="exit signal",
            data={
                "avg_entry": "50000",
                "last_price": "50500",
                "realized_pnl_usd": "1.79",
                "close_reason": "exit",
            },
            **common,
        ),
        Event(id="signal#s1", at=now, kind=KIND_SIGNAL, name="rejected", reason="engine paused", **common),
        Event(id="signal#s2", at=now, kind=KIND_SIGNAL, name="opened", reason="not told", **common),
        Event(id="group#g1#v3", at=now, kind=KIND_GROUP, name="active", group_id="g1", **common),
        Event(id="risk#r1", at=now, kind=KIND_RISK, name="risk_offset", reason="worst loser closed"),
        Event(id="config#c1", at=now, kind=KIND_CONFIG, name="config_invalid", reason="risk: bad field"),
    ]


def _deliver(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    from engine.local.functions import LambdaContext

    context = LambdaContext(function_name="notifier", invoked_function_arn="arn:aws:lambda:::function:n")
    response: dict[str, Any] = handler.lambda_handler(event, context)
    return response


def test_one_message_per_configured_event_even_after_a_429_and_a_timeout(
    telegram: FakeTelegram, st: Stores
) -> None:
    # Given seven events in the log, five of them configured for a message
    now = datetime.now(UTC)
    for event in _events(now):
        assert st.events.record(event)
    # And Telegram answering the first request 429 (retry after 1 s) and holding the second past the timeout
    telegram.script.extend(["429", "timeout"])
    notifier = load_function("notifier")
    batches = StreamTap(table_name(EventModel)).read_events()
    assert len(batches) == 1
    # When the notifier gets the stream batch
    response = _deliver(notifier, batches[0])
    # Then nothing failed and each configured event reached the chat exactly once, in order
    assert response == {"batchItemFailures": []}
    texts = telegram.texts()
    assert len(texts) == 5
    assert texts[0].startswith("OPENED BTC/USDT long · binance 60m")
    assert "CLOSED BTC/USDT long · binance 60m" in texts[1] and "PnL +1.79 USD" in texts[1]
    assert "exit 50500" in texts[1]
    assert texts[2] == "REJECTED BTC/USDT long · binance 60m: engine paused"
    assert texts[3].startswith("RISK risk_offset") and texts[4] == "CONFIG ERROR: risk: bad field"
    assert all(message["chat_id"] == CHAT for message in telegram.messages)
    assert set(telegram.tokens) == {TOKEN}
    # And the 429's retry_after was waited out before the next try
    first, second = telegram.requests[0], telegram.requests[1]
    assert (first[1], second[1]) == ("429", "timeout")
    assert second[0] - first[0] >= 1.0
    # When the same batch is delivered again (a replay), then nothing is sent twice
    assert _deliver(notifier, batches[0]) == {"batchItemFailures": []}
    assert len(telegram.texts()) == 5


def test_a_failed_delivery_is_retried_by_the_stream_and_sends_only_what_is_missing(
    telegram: FakeTelegram, st: Stores
) -> None:
    # Given two configured events, and Telegram failing every try of the second message
    now = datetime.now(UTC)
    opened, closed = _events(now)[:2]
    st.events.record(opened)
    st.events.record(closed)
    telegram.script.extend(["ok", "500", "500", "500", "500"])
    notifier = load_function("notifier")
    (batch,) = StreamTap(table_name(EventModel)).read_events()
    # When the notifier gets the batch, then the second record is reported failed (the stream retries it)
    response = _deliver(notifier, batch)
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed == [batch["Records"][1]["dynamodb"]["SequenceNumber"]]
    assert len(telegram.texts()) == 1
    # When the stream delivers the batch again, then only the missing message is sent
    assert _deliver(notifier, batch) == {"batchItemFailures": []}
    texts = telegram.texts()
    assert len(texts) == 2 and texts[1].startswith("CLOSED")


def test_events_not_configured_and_a_disabled_telegram_send_nothing(
    telegram: FakeTelegram, st: Stores
) -> None:
    # Given only "closed" configured and Telegram off
    _notify({"events": ["closed"], "telegram": {"enabled": False, "chat_id": CHAT}, "sns": False})
    now = datetime.now(UTC)
    for event in _events(now):
        st.events.record(event)
    (batch,) = StreamTap(table_name(EventModel)).read_events()
    # When delivered, then nothing reaches Telegram, and the closed event is kept as a would-be message
    assert _deliver(load_function("notifier"), batch) == {"batchItemFailures": []}
    assert telegram.requests == []
    kept = [data for _name, data in st.state.list_documents("notifications/")]
    summary = [(item["event"], item["channels"], item["account"]) for item in kept]
    assert summary == [("closed", [], "binance")]
