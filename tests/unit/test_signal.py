"""TradingView alert parsing and normalisation (DESIGN §3.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.config import AccountConfig, EngineConfig
from engine.domain.models import Side
from engine.domain.signal import (
    Signal,
    SignalError,
    check_account,
    check_timestamp,
    normalize_symbol,
    parse_signal,
    parse_timeframe,
)

EXAMPLE = Path("/work/shared/examples/tradingview-alert.json")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def payload(**changes: Any) -> dict[str, Any]:
    """A filled-in alert (a long entry on BINANCE:BTCUSDT 60); ``changes`` use "section.key" names."""
    body: dict[str, Any] = {
        "secret": "s3cret-value",
        "source": "tradingview",
        "timestamp": "2026-11-26T12:00:00Z",
        "tv": {
            "exchange": "BINANCE",
            "symbol": "BTCUSDT",
            "timeframe": "60",
            "action": "buy",
            "market_position": "long",
            "market_position_size": "0.002",
            "prev_market_position": "flat",
            "prev_market_position_size": "0",
            "entry_price": "50000",
            "close_price": "50010.5",
            "order_size": "0.002",
        },
        "strategy_info": {"trade_id": "Long 1", "alert_name": "BTC DCA", "alert_message": "enter"},
        "execution_intent": {
            "type": "signal",
            "side": "buy",
            "position_size_type": "contracts",
            "precision_mode": "auto",
        },
        "risk": {"stop_loss": None, "take_profit": None, "max_slippage_percent": 1.0},
    }
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        target = body[section] if section else body
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value
    return body


_DELETE = object()


def parse(**changes: Any) -> Signal:
    return parse_signal(json.dumps(payload(**changes)))


def refusal(body: dict[str, Any] | str | bytes) -> SignalError:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    with pytest.raises(SignalError) as caught:
        parse_signal(raw)
    return caught.value


# --------------------------------------------------------------------------- the happy path


def test_filled_example_alert_parses_to_a_long_entry() -> None:
    # Given the shipped alert template with TradingView's placeholders filled in
    text = EXAMPLE.read_text()
    fills = {
        "<your webhook secret>": "s3cret-value",
        "{{timenow}}": "2026-11-26T12:00:00Z",
        "{{exchange}}": "BINANCE",
        "{{ticker}}": "BTCUSDT",
        "{{interval}}": "60",
        "{{strategy.order.action}}": "buy",
        "{{strategy.market_position}}": "long",
        "{{strategy.market_position_size}}": "0.002",
        "{{strategy.prev_market_position}}": "flat",
        "{{strategy.prev_market_position_size}}": "0",
        "{{strategy.order.price}}": "50000",
        "{{close}}": "50010.5",
        "{{strategy.order.contracts}}": "0.002",
        "{{strategy.order.id}}": "Long 1",
        "{{alert_name}}": "BTC DCA",
        "{{strategy.order.comment}}": "enter",
    }
    for placeholder, value in fills.items():
        text = text.replace(placeholder, value)
    # When parsed
    signal = parse_signal(text.encode())
    # Then it is a normalised long entry
    assert (signal.exchange, signal.symbol, signal.timeframe) == ("binance", "BTC/USDT", 60)
    assert (signal.intent, signal.side, signal.action) == ("entry", Side.LONG, "buy")
    assert signal.entry_price == Decimal(50000)
    assert signal.close_price == Decimal("50010.5")
    assert signal.order_size == Decimal("0.002")
    assert signal.position_size_type == "contracts"
    assert signal.max_slippage_percent == Decimal("1.0")
    assert signal.stop_loss is None and signal.take_profit is None
    assert signal.timestamp == NOW
    assert (signal.trade_id, signal.alert_name, signal.alert_message) == ("Long 1", "BTC DCA", "enter")
    assert signal.secret == "s3cret-value"


def test_secret_never_appears_in_repr_summary_or_raw() -> None:
    signal = parse()
    assert "s3cret-value" not in repr(signal)
    assert "s3cret-value" not in str(signal)
    assert "s3cret-value" not in json.dumps(signal.summary())
    assert "secret" not in signal.raw
    assert signal.raw["tv"]["symbol"] == "BTCUSDT"


def test_summary_is_json_safe() -> None:
    summary = parse().summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["entry_price"] == "50000"
    assert summary["side"] == "long"
    assert summary["timestamp"] == "2026-11-26T12:00:00+00:00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("50000", Decimal(50000)), (50000, Decimal(50000)), ("0.1", Decimal("0.1")), (0.1, Decimal("0.1"))],
)
def test_numbers_arrive_as_strings_or_numbers_and_stay_exact(value: object, expected: Decimal) -> None:
    assert parse(**{"tv.entry_price": value}).entry_price == expected


@pytest.mark.parametrize("value", [None, ""])
def test_empty_optional_numbers_are_absent(value: object) -> None:
    signal = parse(**{"tv.entry_price": value, "risk.stop_loss": value})
    assert signal.entry_price is None and signal.stop_loss is None
    assert signal.reference_price == Decimal("50010.5")


def test_minimal_payload_uses_defaults() -> None:
    body = {"tv": {"symbol": "BINANCE:ETHUSDT", "timeframe": 15, "action": "BUY"}}
    signal = parse_signal(json.dumps(body))
    assert (signal.exchange, signal.symbol, signal.timeframe) == ("binance", "ETH/USDT", 15)
    assert (signal.intent, signal.side) == ("entry", Side.LONG)
    assert signal.position_size_type == "quote"
    assert signal.timestamp is None and signal.secret is None
    assert signal.reference_price is None


# --------------------------------------------------------------------------- symbols and timeframes


@pytest.mark.parametrize(
    ("text", "prefix", "symbol"),
    [
        ("BTCUSDT", None, "BTC/USDT"),
        ("btcusdt", None, "BTC/USDT"),
        ("BTC/USDT", None, "BTC/USDT"),
        ("BTC-USDT", None, "BTC/USDT"),
        ("BINANCE:BTCUSDT", "binance", "BTC/USDT"),
        ("bybit:btcusdt.p", "bybit", "BTC/USDT"),
        ("BTCUSDT.P", None, "BTC/USDT"),
        ("BTC/USDT:USDT", None, "BTC/USDT"),
        ("OKX:BTC/USDT:USDT", "okx", "BTC/USDT"),
        ("ETHBTC", None, "ETH/BTC"),
        ("BTCFDUSD", None, "BTC/FDUSD"),
        ("BTCUSDC", None, "BTC/USDC"),
        ("ETHUSD", None, "ETH/USD"),
        ("BTCEUR", None, "BTC/EUR"),
        ("USDTTRY", None, "USDT/TRY"),
        ("1000PEPEUSDT", None, "1000PEPE/USDT"),
    ],
)
def test_symbol_forms_normalise_to_ccxt(text: str, prefix: str | None, symbol: str) -> None:
    assert normalize_symbol(text) == (prefix, symbol)


@pytest.mark.parametrize("text", ["XYZABC", "USDT", "BTC/", "/USDT", "BTC USDT", "BTC/US$"])
def test_unreadable_symbols_are_refused(text: str) -> None:
    error = refusal(payload(**{"tv.symbol": text}))
    assert (error.code, error.field) == ("invalid_field", "tv.symbol")


def test_exchange_comes_from_symbol_prefix_when_tv_exchange_is_absent() -> None:
    assert parse(**{"tv.exchange": _DELETE, "tv.symbol": "BYBIT:ETHUSDT"}).exchange == "bybit"
    assert parse(**{"tv.exchange": "OKX", "tv.symbol": "BYBIT:ETHUSDT"}).exchange == "okx"


def test_missing_exchange_is_refused() -> None:
    error = refusal(payload(**{"tv.exchange": _DELETE}))
    assert (error.code, error.field) == ("invalid_field", "tv.exchange")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("1", 1),
        ("5", 5),
        ("60", 60),
        ("240", 240),
        (15, 15),
        ("D", 1440),
        ("1D", 1440),
        ("d", 1440),
        ("W", 10080),
        ("1W", 10080),
    ],
)
def test_timeframes(text: str | int, minutes: int) -> None:
    assert parse(**{"tv.timeframe": text}).timeframe == minutes


@pytest.mark.parametrize("text", ["0", "241", "2D", "M", "1M", "30S", "-5", "1.5", "hourly"])
def test_unsupported_timeframes_are_refused(text: str) -> None:
    error = refusal(payload(**{"tv.timeframe": text}))
    assert (error.code, error.field) == ("invalid_field", "tv.timeframe")
    assert text in error.reason


@given(st.integers(min_value=1, max_value=240))
def test_every_minute_timeframe_up_to_240_is_accepted(minutes: int) -> None:
    assert parse_timeframe(str(minutes)) == minutes


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "body",
    ["not json", b"\xff\xfe", "[1, 2]", '"text"', "42", ""],
)
def test_malformed_bodies(body: str | bytes) -> None:
    assert refusal(body).code == "malformed"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tv.symbol", "{{ticker}}"),
        ("timestamp", "{{timenow}}"),
        ("tv.entry_price", "{{strategy.order.price}}"),
        ("strategy_info.alert_message", "closing {{strategy.order.comment}}"),
        ("execution_intent.side", "{{strategy.order.action}}"),
        ("risk.note", ["ok", "{{plot_0}}"]),
        ("extra", {"nested": "{{close}}"}),
    ],
)
def test_placeholders_left_anywhere_are_refused(field: str, value: object) -> None:
    error = refusal(payload(**{field: value}))
    assert error.code == "placeholder"
    assert error.field is not None and error.field.startswith(field)
    assert error.field in error.reason


def test_unfilled_example_is_refused_as_placeholder() -> None:
    assert refusal(EXAMPLE.read_text()).code == "placeholder"


@pytest.mark.parametrize(
    ("field", "value", "reason_part"),
    [
        ("tv.entry_price", "-5", "positive"),
        ("tv.entry_price", 0, "positive"),
        ("tv.entry_price", "NaN", "finite"),
        ("tv.entry_price", "Infinity", "finite"),
        ("tv.entry_price", "-inf", "finite"),
        ("tv.entry_price", "abc", "number"),
        ("tv.entry_price", True, "number"),
        ("tv.close_price", "-0.01", "positive"),
        ("tv.order_size", "0", "positive"),
        ("tv.order_size", "nan", "finite"),
        ("risk.stop_loss", -1, "positive"),
        ("risk.take_profit", "x", "number"),
        ("risk.max_slippage_percent", -1, "negative"),
        ("tv.market_position_size", "-1", "negative"),
        ("tv.symbol", _DELETE, "required"),
        ("tv.timeframe", None, "required"),
        ("tv.symbol", ["BTCUSDT"], "text"),
        ("strategy_info.trade_id", {"id": 1}, "text"),
        ("tv", "BTCUSDT", "JSON object"),
        ("risk", 3, "JSON object"),
        ("tv.market_position", "sideways", "long, short, flat"),
        ("tv.action", "hold", "buy, sell"),
        ("execution_intent.side", "up", "buy, sell"),
        ("execution_intent.position_size_type", "lots", "quote, base, contracts"),
        ("timestamp", "yesterday", "ISO-8601"),
        ("timestamp", True, "number"),
        ("timestamp", "1e400", "ISO-8601"),
        ("timestamp", 10**30, "ISO-8601"),
        ("timestamp", ["2026-11-26T12:00:00Z"], "text"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, reason_part: str) -> None:
    error = refusal(payload(**{field: value}))
    assert (error.code, error.field) == ("invalid_field", field)
    assert field in error.reason and reason_part in error.reason


def test_nan_as_json_literal_is_refused() -> None:
    body = json.dumps(payload()).replace('"50000"', "NaN")
    error = refusal(body)
    assert (error.code, error.field) == ("invalid_field", "tv.entry_price")


def test_missing_action_is_refused() -> None:
    error = refusal(payload(**{"tv.action": _DELETE, "execution_intent.side": _DELETE}))
    assert (error.code, error.field) == ("invalid_field", "tv.action")


# --------------------------------------------------------------------------- intent and side


@pytest.mark.parametrize(
    ("changes", "intent", "side", "action"),
    [
        ({}, "entry", Side.LONG, "buy"),
        # a strategy's closing sell: flat after it -> exit of the long
        (
            {"tv.action": "sell", "execution_intent.side": "sell", "tv.market_position": "flat"},
            "exit",
            Side.LONG,
            "sell",
        ),
        # a closing buy of a short
        (
            {
                "tv.action": "buy",
                "tv.market_position": "flat",
                "tv.prev_market_position": "short",
            },
            "exit",
            Side.SHORT,
            "buy",
        ),
        # sell opening a short
        (
            {"tv.action": "sell", "execution_intent.side": "sell", "tv.market_position": "short"},
            "entry",
            Side.SHORT,
            "sell",
        ),
        (
            {"tv.action": "sell", "execution_intent.side": _DELETE, "tv.market_position": _DELETE},
            "entry",
            Side.SHORT,
            "sell",
        ),
        # buy while flat with no short before: an entry
        ({"tv.market_position": "flat", "tv.prev_market_position": "flat"}, "entry", Side.LONG, "buy"),
        # explicit exits
        ({"execution_intent.type": "exit", "execution_intent.side": "sell"}, "exit", Side.LONG, "sell"),
        ({"execution_intent.type": "EXIT", "execution_intent.side": "buy"}, "exit", Side.SHORT, "buy"),
        ({"execution_intent.type": "exit", "execution_intent.side": "long"}, "exit", Side.LONG, "sell"),
        ({"execution_intent.type": "exit", "execution_intent.side": "short"}, "exit", Side.SHORT, "buy"),
        # execution_intent.side absent -> tv.action decides
        ({"execution_intent.side": _DELETE, "tv.action": "buy"}, "entry", Side.LONG, "buy"),
        ({"execution_intent.side": "short", "tv.market_position": "short"}, "entry", Side.SHORT, "sell"),
        ({"execution_intent": _DELETE}, "entry", Side.LONG, "buy"),
        ({"execution_intent.type": None}, "entry", Side.LONG, "buy"),
    ],
)
def test_intent_and_side(changes: dict[str, Any], intent: str, side: Side, action: str) -> None:
    signal = parse(**changes)
    assert (signal.intent, signal.side, signal.action) == (intent, side, action)
    assert signal.is_exit == (intent == "exit") and signal.is_entry == (intent == "entry")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"execution_intent.type": "reduce"}, "unsupported_intent", "execution_intent.type"),
        ({"execution_intent.type": "Reverse"}, "unsupported_intent", "execution_intent.type"),
        ({"execution_intent.type": "hedge"}, "unknown_intent", "execution_intent.type"),
        ({"execution_intent.type": "close"}, "unknown_intent", "execution_intent.type"),
        # partial closes: the strategy still holds the position after the order
        ({"execution_intent.side": "sell", "tv.action": "sell"}, "unsupported_intent", "tv.market_position"),
        (
            {"execution_intent.side": "buy", "tv.market_position": "short"},
            "unsupported_intent",
            "tv.market_position",
        ),
    ],
)
def test_intent_refusals(changes: dict[str, Any], code: str, field: str) -> None:
    error = refusal(payload(**changes))
    assert (error.code, error.field) == (code, field)


# --------------------------------------------------------------------------- capital, candle, keys


@pytest.mark.parametrize(
    ("size_type", "order_size", "price", "capital"),
    [
        ("quote", "150", "50000", Decimal(150)),
        ("base", "0.002", "50000", Decimal(100)),
        ("contracts", "0.5", "3000.5", Decimal("1500.25")),
        ("QUOTE", "25.5", "1", Decimal("25.5")),
    ],
)
def test_capital_per_size_type(size_type: str, order_size: str, price: str, capital: Decimal) -> None:
    signal = parse(**{"execution_intent.position_size_type": size_type, "tv.order_size": order_size})
    assert signal.capital_usd(Decimal(price)) == capital


def test_no_order_size_means_no_capital() -> None:
    assert parse(**{"tv.order_size": None}).capital_usd(Decimal(100)) is None


def test_reference_price_prefers_entry_price() -> None:
    assert parse().reference_price == Decimal(50000)
    assert parse(**{"tv.entry_price": None}).reference_price == Decimal("50010.5")
    assert parse(**{"tv.entry_price": None, "tv.close_price": None}).reference_price is None


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-26T12:00:00Z", NOW),
        ("2026-11-26T13:00:00+01:00", NOW),
        ("2026-11-26T12:00:00", NOW),
        (int(NOW.timestamp()), NOW),
        (str(int(NOW.timestamp())), NOW),
        (int(NOW.timestamp()) * 1000, NOW),
        (int(NOW.timestamp()) * 1000 + 500, NOW + timedelta(milliseconds=500)),
    ],
)
def test_timestamp_forms(timestamp: object, expected: datetime) -> None:
    assert parse(timestamp=timestamp).timestamp == expected


@pytest.mark.parametrize(
    ("timeframe", "moment", "expected"),
    [
        ("1", "1970-01-01T00:00:59Z", 0),
        ("1", "1970-01-01T00:01:00Z", 1),
        ("60", "1970-01-02T00:59:59Z", 24),
        ("240", "1970-01-01T08:00:00Z", 2),
        ("D", "1970-01-03T23:59:59Z", 2),
        # weeks start on Monday 00:00 UTC: 1970-01-05 was the first Monday
        ("W", "1970-01-04T23:59:59Z", -1),
        ("W", "1970-01-05T00:00:00Z", 0),
        ("W", "1970-01-11T23:59:59Z", 0),
        ("W", "1970-01-12T00:00:00Z", 1),
    ],
)
def test_candle(timeframe: str, moment: str, expected: int) -> None:
    signal = parse(**{"tv.timeframe": timeframe, "timestamp": moment})
    assert signal.candle(NOW) == expected


def test_weekly_candle_changes_on_monday_midnight() -> None:
    # Given 2026-11-29 (a Sunday) 23:59 and the Monday after
    sunday = parse(**{"tv.timeframe": "1W", "timestamp": "2026-11-29T23:59:59Z"})
    monday = parse(**{"tv.timeframe": "1W", "timestamp": "2026-11-30T00:00:00Z"})
    tuesday_before = parse(**{"tv.timeframe": "1W", "timestamp": "2026-11-24T10:00:00Z"})
    # Then Sunday is in the same week as the Tuesday before it, Monday starts the next week
    assert sunday.candle(NOW) == tuesday_before.candle(NOW)
    assert monday.candle(NOW) == sunday.candle(NOW) + 1


def test_candle_uses_receipt_time_without_timestamp() -> None:
    signal = parse(timestamp=None, **{"tv.timeframe": "60"})
    assert signal.candle(NOW) == int(NOW.timestamp()) // 3600
    assert signal.candle(NOW.replace(tzinfo=None)) == int(NOW.timestamp()) // 3600


def test_idempotency_key_depends_on_each_part() -> None:
    base = parse()
    key = base.idempotency_key("binance")
    assert key == parse().idempotency_key("BINANCE")
    assert len(key) == 64
    variants = [
        parse(**{"tv.symbol": "ETHUSDT"}),
        parse(**{"tv.timeframe": "15"}),
        parse(**{"execution_intent.side": "short", "tv.market_position": "short"}),
        parse(**{"execution_intent.type": "exit", "execution_intent.side": "buy"}),
        parse(**{"strategy_info.trade_id": "Long 2"}),
        parse(timestamp="2026-11-26T12:00:01Z"),
    ]
    keys = {variant.idempotency_key("binance") for variant in variants}
    assert key not in keys and len(keys) == len(variants)
    assert base.idempotency_key("bybit") != key
    # prices and sizes are not part of the key: a resend with another close price is the same alert
    assert parse(**{"tv.close_price": "1"}).idempotency_key("binance") == key


def test_idempotency_key_without_timestamp_uses_the_receipt_candle() -> None:
    signal = parse(timestamp=None)
    same_candle = signal.idempotency_key("binance", NOW + timedelta(minutes=59))
    assert signal.idempotency_key("binance", NOW) == same_candle
    assert signal.idempotency_key("binance", NOW + timedelta(hours=1)) != same_candle


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("offset_seconds", "code"),
    [
        (-300, None),
        (-301, "stale_signal"),
        (-3600, "stale_signal"),
        (0, None),
        (60, None),
        (61, "future_signal"),
    ],
)
def test_check_timestamp(offset_seconds: int, code: str | None) -> None:
    signal = parse(timestamp=(NOW + timedelta(seconds=offset_seconds)).isoformat())
    if code is None:
        check_timestamp(signal, NOW, 300)
        return
    with pytest.raises(SignalError) as caught:
        check_timestamp(signal, NOW, 300)
    assert (caught.value.code, caught.value.field) == (code, "timestamp")


def test_check_timestamp_without_timestamp_passes() -> None:
    check_timestamp(parse(timestamp=None), NOW, 1)


def test_check_timestamp_respects_configured_age() -> None:
    signal = parse(timestamp=(NOW - timedelta(seconds=100)).isoformat())
    check_timestamp(signal, NOW, 100)
    with pytest.raises(SignalError, match="stale_signal"):
        check_timestamp(signal, NOW, 99)


SHORT_ENTRY = {"execution_intent.side": "sell", "tv.action": "sell", "tv.market_position": "short"}
SHORT_EXIT = {"execution_intent.type": "exit", "execution_intent.side": "buy"}


@pytest.mark.parametrize(
    ("changes", "accounts", "code"),
    [
        ({}, {"binance": AccountConfig()}, None),
        ({"tv.exchange": "Binance"}, {"BINANCE": AccountConfig()}, None),
        ({"tv.exchange": "kraken"}, {"binance": AccountConfig()}, "unknown_exchange"),
        ({}, {}, "unknown_exchange"),
        (SHORT_ENTRY, {"binance": AccountConfig(market_type="spot")}, "unsupported_side"),
        (SHORT_ENTRY, {"binance": AccountConfig(market_type="swap")}, None),
        (SHORT_EXIT, {"binance": AccountConfig(market_type="spot")}, None),
    ],
)
def test_check_account(changes: dict[str, Any], accounts: dict[str, AccountConfig], code: str | None) -> None:
    signal = parse(**changes)
    if code is None:
        assert check_account(signal, accounts) == accounts[next(iter(accounts))]
        return
    with pytest.raises(SignalError) as caught:
        check_account(signal, accounts)
    assert caught.value.code == code
    assert signal.exchange in caught.value.reason


def test_default_accounts_are_spot_paper_and_long_only() -> None:
    accounts = EngineConfig().accounts
    for exchange in ("binance", "bybit", "okx"):
        assert check_account(parse(**{"tv.exchange": exchange}), accounts).mode == "paper"
        with pytest.raises(SignalError, match="unsupported_side"):
            check_account(parse(**{"tv.exchange": exchange, **SHORT_ENTRY}), accounts)


def test_signal_is_frozen() -> None:
    signal = parse()
    with pytest.raises(AttributeError):
        signal.symbol = "ETH/USDT"  # type: ignore[misc]


# --------------------------------------------------------------------------- quotes, ranges


def _body(**tv: object) -> str:
    import json as _json

    fields = {"exchange": "binance", "symbol": "BTCUSDT", "timeframe": "60", "action": "buy", **tv}
    return _json.dumps({"tv": fields})


@pytest.mark.parametrize("symbol", ["ETHBTC", "BTC/EUR", "BINANCE:ETHBTC"])
def test_a_non_usd_quote_is_refused_before_the_market_lookup(symbol: str) -> None:
    from engine.domain.config import EngineConfig
    from engine.domain.signal import check_quote

    signal = parse_signal(_body(symbol=symbol))
    with pytest.raises(SignalError) as error:
        check_quote(signal, EngineConfig().usd_quotes)
    assert (error.value.code, error.value.field) == ("unsupported_quote", "tv.symbol")


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC/USDC", "BTCFDUSD", "BTC-USD"])
def test_usd_quotes_pass(symbol: str) -> None:
    from engine.domain.config import EngineConfig
    from engine.domain.signal import check_quote

    check_quote(parse_signal(_body(symbol=symbol)), EngineConfig().usd_quotes)


@pytest.mark.parametrize(
    ("field", "value"),
    [("entry_price", 1e26), ("entry_price", "1E+26"), ("order_size", "1e16"), ("close_price", "1e400")],
)
def test_a_huge_number_is_400_out_of_range(field: str, value: object) -> None:
    with pytest.raises(SignalError) as error:
        parse_signal(_body(**{field: value}))
    assert (error.value.code, error.value.field) == ("out_of_range", f"tv.{field}")


def test_a_number_finer_than_decimal_holds_at_the_market_precision_is_out_of_range() -> None:
    from decimal import Decimal

    from engine.domain.signal import check_numbers

    signal = parse_signal(_body(entry_price="123456789012345.5"))
    check_numbers(signal, Decimal("0.01"), Decimal("0.00001"))
    with pytest.raises(SignalError) as error:
        check_numbers(signal, Decimal("1e-20"), Decimal("1"))
    assert error.value.code == "out_of_range"
