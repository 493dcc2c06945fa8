"""Small parts of the local runtime: settings, price control parsing, activity lines, the view."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from engine.local.activity import ActivityLog, describe_record, released_groups
from engine.local.alert_example import alert_message
from engine.local.bootstrap import StateSnapshot, jsonable
from engine.local.controls import ControlError, parse_prices
from engine.local.settings import LocalSettings, configure_process_environment, default_functions_root
from engine.local.view import render

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/execution-engine-local-{}/stream/2026-01-01T00:00:00"
_serializer = TypeSerializer()


def _record(table: str, event_name: str, new: dict | None, old: dict | None) -> dict[str, Any]:
    dynamodb: dict = {"SequenceNumber": "1"}
    if new is not None:
        dynamodb["NewImage"] = {k: _serializer.serialize(v) for k, v in new.items()}
    if old is not None:
        dynamodb["OldImage"] = {k: _serializer.serialize(v) for k, v in old.items()}
    return {"eventName": event_name, "eventSourceARN": ARN.format(table), "dynamodb": dynamodb}


def test_settings_defaults_and_overrides():
    # Given no settings in the environment, then the documented defaults apply
    defaults = LocalSettings.from_env({})
    assert (defaults.host, defaults.port, defaults.region) == ("127.0.0.1", 8080, "us-east-1")
    assert (defaults.sync_seconds, defaults.risk_seconds) == (1.0, 30.0)
    assert defaults.functions_root == default_functions_root()
    assert default_functions_root().parent == Path(__file__).resolve().parents[2]

    # Given overrides, then they are used
    custom = LocalSettings.from_env(
        {"PORT": "0", "LOCAL_SYNC_SECONDS": "1.5", "LOCAL_RISK_SECONDS": "2", "ENGINE_FUNCTIONS_ROOT": "/x"}
    )
    assert (custom.port, custom.sync_seconds, custom.risk_seconds) == (0, 1.5, 2.0)
    assert custom.functions_root == Path("/x")


def test_a_non_positive_period_is_refused():
    with pytest.raises(ValueError, match="LOCAL_SYNC_SECONDS"):
        LocalSettings.from_env({"LOCAL_SYNC_SECONDS": "0"})


def test_the_process_environment_points_every_client_at_moto_and_keeps_explicit_names():
    # Given an environment with an explicit table name, a profile and a per-service endpoint override
    env = {"ORDERS_TABLE": "mine", "AWS_PROFILE": "prod", "AWS_ENDPOINT_URL_DYNAMODB": "https://real"}

    # When configured for a local endpoint
    configure_process_environment("http://127.0.0.1:5000", "us-east-1", env)

    # Then the endpoint, fake credentials and names are set; the explicit table name is kept
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in env and "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
    assert env["ORDERS_TABLE"] == "mine" and env["GROUPS_TABLE"] == "execution-engine-local-groups"
    assert env["RISK_ACTIONS_TABLE"] == "execution-engine-local-risk-actions"
    assert env["CONFIG_PREFIX"] == "/execution-engine/local/" and env["CONFIG_MAX_AGE_SECONDS"] == "5"
    assert env["WEBHOOK_SECRET_NAME"] == "execution-engine/local/webhook"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true" and env["POWERTOOLS_METRICS_NAMESPACE"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"BTC/USDT": 64000.5}', {"BTC/USDT": Decimal("64000.5")}),
        (
            b'{"ETHUSDT": "3100", "BINANCE:SOLUSDT": 150}',
            {"ETH/USDT": Decimal(3100), "SOL/USDT": Decimal(150)},
        ),
        (b'{"BTC/USDT": 0.1}', {"BTC/USDT": Decimal("0.1")}),  # exact, never through float
    ],
)
def test_prices_are_parsed_to_ccxt_symbols_and_exact_decimals(body, expected):
    assert parse_prices(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"BTC/USDT": 0}',
        b'{"BTC/USDT": -1}',
        b'{"BTC/USDT": "abc"}',
        b'{"BTC/USDT": "NaN"}',
        b'{"BTC/USDT": true}',
        b'{"???": 1}',
    ],
)
def test_bad_price_bodies_are_refused_with_a_reason(body):
    with pytest.raises(ControlError):
        parse_prices(body)


@pytest.mark.parametrize(
    ("table", "event_name", "new", "old", "expected"),
    [
        (
            "orders",
            "INSERT",
            {
                "id": "o1234567890",
                "purpose": "entry",
                "side": "buy",
                "amount": "0.1",
                "symbol": "BTC/USDT",
                "price": "100",
                "status": "pending",
            },
            None,
            "order o1234567 entry buy 0.1 BTC/USDT @ 100 placed (pending)",
        ),
        (
            "orders",
            "MODIFY",
            {
                "id": "o1",
                "purpose": "tp",
                "side": "sell",
                "amount": "1",
                "symbol": "X/USDT",
                "price": None,
                "status": "filled",
                "filled": "1",
                "average": "5",
            },
            {"status": "open"},
            "order o1 tp sell 1 X/USDT @ market open -> filled filled 1 avg 5",
        ),
        ("orders", "MODIFY", {"id": "o1", "status": "open"}, {"id": "o1", "status": "open"}, None),
        (
            "groups",
            "INSERT",
            {
                "id": "g1",
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "timeframe": 60,
                "side": "long",
                "status": "live",
            },
            None,
            "group g1 binance BTC/USDT 60 long opened (live)",
        ),
        (
            "groups",
            "MODIFY",
            {
                "id": "g1",
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "timeframe": 60,
                "side": "long",
                "status": "closed",
                "figures": {"realized_pnl_usd": "12.5"},
                "close_reason": "take_profit",
                "close_note": "aggregate take-profit",
            },
            {"status": "active"},
            "group g1 binance BTC/USDT 60 long active -> closed realised 12.5 USD "
            "(take_profit: aggregate take-profit)",
        ),
        ("other", "INSERT", {"id": "x"}, None, None),
    ],
)
def test_stream_records_are_described_in_one_line(table, event_name, new, old, expected):
    assert describe_record(_record(table, event_name, new, old)) == expected


def test_released_groups_are_those_entering_a_terminal_state():
    records = [
        _record("groups", "MODIFY", {"id": "a", "status": "closed"}, {"id": "a", "status": "closing"}),
        _record("groups", "MODIFY", {"id": "b", "status": "closed"}, {"id": "b", "status": "closed"}),
        _record("groups", "MODIFY", {"id": "c", "status": "active"}, {"id": "c", "status": "live"}),
        _record("groups", "MODIFY", {"id": "d", "status": "failed"}, {"id": "d", "status": "live"}),
    ]
    assert released_groups(records) == ["a", "d"]


def test_the_activity_log_keeps_the_newest_and_echoes_plain_lines():
    echo = io.StringIO()
    log = ActivityLog(size=2, echo=echo)
    for text in ("one", "two", "three"):
        log.add(text)
    assert [event["event"] for event in log.recent()] == ["two", "three"]
    assert echo.getvalue().splitlines()[-1].endswith("Z three")


def test_the_view_renders_pool_queue_groups_and_events():
    state = StateSnapshot(
        pool={"max_open_groups": 2, "open": 1, "free": 1},
        queue=[
            {
                "rank": 1,
                "exchange": "binance",
                "symbol": "ETH/USDT",
                "timeframe": 60,
                "side": "long",
                "entry_price": 3000,
                "replacement_count": 2,
                "queued_at": "2026-01-01T00:00:00Z",
            }
        ],
        groups=[
            {
                "id": "g123456789",
                "symbol": "BTC/USDT",
                "timeframe": 60,
                "side": "long",
                "pyramid_count": 2,
                "filled_legs": 3,
                "total_legs": 10,
                "avg_entry": 64000,
                "unrealized_pnl_usd": -5.5,
                "unrealized_pnl_percent": -0.4,
                "realized_pnl_usd": 0,
                "status": "partially_filled",
            }
        ],
    )
    screen = render(["HEADER"], state, 1, [{"at": "2026-01-01T00:00:09Z", "event": "group opened"}], 120)
    assert "HEADER" in screen and "1/2" in screen and "dead letters 1" in screen
    assert "g1234567" in screen and "3/10" in screen and "64,000.0000" in screen and "-5.50" in screen
    assert (
        "ETH/USDT" in screen and "replaced 2x" in screen and "00:00:09" in screen and "group opened" in screen
    )


def test_jsonable_renders_decimals_as_numbers_and_times_with_z():
    from datetime import UTC, datetime

    value = {
        "a": Decimal("1.50"),
        "b": Decimal(2),
        "c": datetime(2026, 1, 1, tzinfo=UTC),
        "d": [Decimal("0.1")],
    }
    assert json.dumps(jsonable(value)) == '{"a": 1.5, "b": 2, "c": "2026-01-01T00:00:00Z", "d": [0.1]}'


def test_the_alert_message_is_the_tradingview_template_with_the_secret():
    message = json.loads(alert_message("s3cret"))
    assert message["secret"] == "s3cret"
    assert message["tv"]["symbol"] == "{{ticker}}" and message["timestamp"] == "{{timenow}}"
    assert message["execution_intent"]["type"] == "signal"
