"""TradingView alert payloads (DESIGN §3.1): parsing, validation and normalisation into a :class:`Signal`.

Pure: no boto3/ccxt. Every refusal is a :class:`SignalError` carrying the HTTP status, a machine code and a
sentence naming the offending field. Decisions where the design is silent:

- The body is parsed as JSON whatever the content type; numbers may be JSON numbers or strings (parsed
  exactly as ``Decimal``). An empty string for an optional number counts as absent. Unknown keys are kept
  in ``raw`` and otherwise ignored (users add their own fields to alerts).
- Any string still containing ``{{`` anywhere in the payload is refused (``placeholder``): TradingView
  did not fill the alert template in.
- Symbols: ``BTCUSDT``, ``btcusdt``, ``BTC/USDT``, ``BTC-USDT``, ``BINANCE:BTCUSDT``, ``BTCUSDT.P`` (perp
  suffix) and ccxt's ``BTC/USDT:USDT`` all become ``BTC/USDT`` (settle currency dropped: the exchange
  adapter maps to the account's market type).
- ``execution_intent.position_size_type`` defaults to ``quote``: a misread quote amount can only make
  orders too small (refused by the minimums), never larger than meant.
- ``execution_intent.side`` (or ``tv.action`` when absent) may be an order action (``buy``/``sell``) or a
  position side (``long``/``short``). A ``sell`` while ``tv.market_position`` is still ``long`` (or a ``buy``
  while ``short``) is a partial close: refused as ``unsupported_intent`` like ``reduce``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.domain.config import AccountConfig
from engine.domain.models import Side
from engine.domain.signal_fields import (
    EPOCH,
    MAX_FUTURE_SECONDS,
    MINUTES_PER_WEEK,
    QUOTE_CURRENCIES,
    WEEK_ORIGIN,
    SignalCode,
    SignalError,
    as_utc,
    normalize_symbol,
    parse_timeframe,
    parse_timestamp,
)

__all__ = [
    "MAX_NUMBER",
    "QUOTE_CURRENCIES",
    "Signal",
    "SignalCode",
    "SignalError",
    "check_account",
    "check_numbers",
    "check_quote",
    "check_timestamp",
    "normalize_symbol",
    "parse_signal",
    "parse_timeframe",
    "parse_timestamp",
]

Intent = Literal["entry", "exit"]
PositionSizeType = Literal["quote", "base", "contracts"]
MarketPosition = Literal["long", "short", "flat"]


#: Largest price or size accepted (DESIGN §3.1: a number Decimal cannot hold at the market's precision is
#: 400 ``out_of_range``). With 12 decimals it still fits the 28 digits of Decimal's default context.
MAX_NUMBER = Decimal(10) ** 15
#: Finest increment a number must be quantizable to.
_FINEST = Decimal("1e-12")
_NUMBER_FIELDS = (
    ("tv.entry_price", "entry_price"),
    ("tv.close_price", "close_price"),
    ("tv.order_size", "order_size"),
    ("tv.market_position_size", "market_position_size"),
    ("tv.prev_market_position_size", "prev_market_position_size"),
    ("risk.stop_loss", "stop_loss"),
    ("risk.take_profit", "take_profit"),
    ("risk.max_slippage_percent", "max_slippage_percent"),
)


def _out_of_range(field_name: str, value: Decimal, increment: Decimal) -> SignalError | None:
    if not value.is_finite():
        return SignalError("out_of_range", f"{field_name} must be a finite number", field_name)
    try:
        value.quantize(increment)
    except InvalidOperation:
        pass
    else:
        if abs(value) < MAX_NUMBER:
            return None
    return SignalError(
        "out_of_range",
        f"{field_name} {value} is out of range (at most {MAX_NUMBER:.0E} at a precision of {increment})",
        field_name,
    )


def _optional_number(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value.strip() if isinstance(value, str) else value


def _optional_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


Price = Annotated[Annotated[Decimal, Field(gt=0)] | None, BeforeValidator(_optional_number)]
Amount = Annotated[Annotated[Decimal, Field(ge=0)] | None, BeforeValidator(_optional_number)]
Text = Annotated[str | None, BeforeValidator(_optional_text)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class TvFields(_Section):
    """``tv``: what TradingView fills in from the chart and the strategy."""

    exchange: Text = None
    symbol: Annotated[str, BeforeValidator(_optional_text)]
    timeframe: Annotated[str, BeforeValidator(_optional_text)]
    action: Text = None
    market_position: Text = None
    market_position_size: Amount = None
    prev_market_position: Text = None
    prev_market_position_size: Amount = None
    entry_price: Price = None
    close_price: Price = None
    order_size: Price = None


class StrategyInfo(_Section):
    """``strategy_info``: the strategy's order id and alert texts."""

    trade_id: Text = None
    alert_name: Text = None
    alert_message: Text = None


class ExecutionIntent(_Section):
    """``execution_intent``: what the alert asks for."""

    #: signal | exit | reduce | reverse; absent or empty = signal.
    type: Text = None
    side: Text = None
    position_size_type: Text = None
    precision_mode: Text = None


class RiskFields(_Section):
    """``risk``: optional per-signal protections."""

    stop_loss: Price = None
    take_profit: Price = None
    max_slippage_percent: Amount = None


class TradingViewPayload(_Section):
    """The whole alert body (DESIGN §3.1)."""

    secret: Text = None
    source: Text = None
    timestamp: Annotated[str | int | Decimal | None, BeforeValidator(_optional_number)] = None
    tv: TvFields
    strategy_info: StrategyInfo | None = None
    execution_intent: ExecutionIntent | None = None
    risk: RiskFields | None = None


# --------------------------------------------------------------------------- the signal


@dataclass(frozen=True)
class Signal:
    """A validated, normalised alert. ``side`` is the position side (for an exit: the side being closed).

    ``raw`` is the parsed body without the secret (JSON numbers with a fraction are ``Decimal``, as boto3
    wants them); the secret never appears in ``repr``.
    """

    exchange: str
    symbol: str
    timeframe: int
    intent: Intent
    side: Side
    action: Literal["buy", "sell"]
    secret: str | None = field(default=None, repr=False)
    source: str | None = None
    market_position: MarketPosition | None = None
    prev_market_position: MarketPosition | None = None
    market_position_size: Decimal | None = None
    prev_market_position_size: Decimal | None = None
    entry_price: Decimal | None = None
    close_price: Decimal | None = None
    order_size: Decimal | None = None
    position_size_type: PositionSizeType = "quote"
    precision_mode: str | None = None
    trade_id: str | None = None
    alert_name: str | None = None
    alert_message: str | None = None
    timestamp: datetime | None = None
    max_slippage_percent: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_entry(self) -> bool:
        """True for an entry (opens a group or adds a pyramid)."""
        return self.intent == "entry"

    @property
    def is_exit(self) -> bool:
        """True for an exit (closes the group of ``side``)."""
        return self.intent == "exit"

    @property
    def reference_price(self) -> Decimal | None:
        """The signal's price: ``entry_price``, else ``close_price``, else None."""
        return self.entry_price if self.entry_price is not None else self.close_price

    def capital_usd(self, price: Decimal) -> Decimal | None:
        """Capital asked for by ``order_size`` (quote as is; base/contracts times ``price``), or None."""
        if self.order_size is None:
            return None
        if self.position_size_type == "quote":
            return self.order_size
        return self.order_size * price

    def candle(self, received_at: datetime) -> int:
        """Candle index of the signal: floor(epoch(timestamp or receipt) / timeframe); weeks from Monday."""
        moment = as_utc(self.timestamp if self.timestamp is not None else received_at)
        origin = WEEK_ORIGIN if self.timeframe == MINUTES_PER_WEEK else EPOCH
        return (moment - origin) // timedelta(minutes=self.timeframe)

    def idempotency_key(self, account: str, received_at: datetime | None = None) -> str:
        """SHA-256 over (account, symbol, timeframe, side, intent, trade_id, timestamp) (DESIGN §3.1).

        Without a timestamp, the candle of ``received_at`` (when given) stands in for it, so a resend is
        recognised while the next candle's alert is not mistaken for one.
        """
        if self.timestamp is not None:
            moment = as_utc(self.timestamp).isoformat()
        elif received_at is not None:
            moment = f"candle:{self.candle(received_at)}"
        else:
            moment = ""
        parts = [account.lower(), self.symbol, self.timeframe, self.side.value, self.intent]
        parts += [self.trade_id or "", moment]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-safe description for the audit table and logs, without the secret."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {key: _json_safe(value) for key, value in values.items() if key not in ("secret", "raw")}


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Side) else value


def _find_placeholder(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "{{" in value else None
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [
            (f"{path}.{key}" if path else str(key), v) for key, v in value.items()
        ]
    elif isinstance(value, list):
        items = [(f"{path}[{index}]", v) for index, v in enumerate(value)]
    else:
        return None
    for child_path, child in items:
        found = _find_placeholder(child, child_path)
        if found is not None:
            return found
    return None


#: Names pydantic adds to an error location for the branches of a union.
_UNION_BRANCHES = frozenset({"str", "int", "decimal", "Decimal"})
_PHRASES = {
    "missing": "is required",
    "greater_than": "must be a positive number",
    "greater_than_equal": "must not be negative",
    "finite_number": "must be a finite number",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
    "string_type": "must be text",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def _schema_error(exc: ValidationError) -> SignalError:
    error = exc.errors()[0]
    parts = [str(part) for part in error["loc"]]
    field_name = ".".join(part for part in parts if part not in _UNION_BRANCHES and "function-" not in part)
    kind = error["type"]
    if kind == "string_type" and error.get("input") is None:
        kind = "missing"
    if kind == "value_error":
        phrase = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        phrase = _PHRASES.get(kind, error["msg"][:1].lower() + error["msg"][1:])
    value = error.get("input")
    # Never echo the secret back, whatever shape it was sent in (a list, a number, ...).
    echo = kind != "missing" and not isinstance(value, dict) and parts[:1] != ["secret"]
    got = f" (got {json.dumps(value, default=str)})" if echo else ""
    return SignalError("invalid_field", f"{field_name} {phrase}{got}", field_name)


def _choose(field_name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in allowed:
        raise SignalError(
            "invalid_field", f"{field_name} must be one of {', '.join(allowed)} (got {value!r})", field_name
        )
    return lowered


def _market_position(field_name: str, value: str | None) -> MarketPosition | None:
    return cast(MarketPosition | None, _choose(field_name, value, ("long", "short", "flat")))


def _intent_and_side(
    payload: TradingViewPayload, position: MarketPosition | None, previous: MarketPosition | None
) -> tuple[Intent, Side, Literal["buy", "sell"]]:
    """Entry or exit, the position side and the order action (DESIGN §3.1)."""
    intent_fields = payload.execution_intent or ExecutionIntent()
    kind = (intent_fields.type or "signal").lower()
    if kind in ("reduce", "reverse"):
        raise SignalError(
            "unsupported_intent",
            f"execution_intent.type {kind!r} is not supported; send an exit and a new entry instead",
            "execution_intent.type",
        )
    if kind not in ("signal", "exit"):
        raise SignalError(
            "unknown_intent",
            f"execution_intent.type {intent_fields.type!r} is unknown; use signal or exit",
            "execution_intent.type",
        )
    _choose("tv.action", payload.tv.action, ("buy", "sell", "long", "short"))
    field_name = "execution_intent.side" if intent_fields.side is not None else "tv.action"
    raw_side = intent_fields.side if intent_fields.side is not None else payload.tv.action
    if raw_side is None:
        raise SignalError("invalid_field", "tv.action is required (buy or sell)", "tv.action")
    direction = _choose(field_name, raw_side, ("buy", "sell", "long", "short"))
    if kind == "exit":
        side = Side.LONG if direction in ("sell", "long") else Side.SHORT
        return "exit", side, "sell" if side is Side.LONG else "buy"
    if direction in ("long", "short"):
        side = Side(direction)
        return "entry", side, "buy" if side is Side.LONG else "sell"
    if direction == "sell" and position == "flat":
        return "exit", Side.LONG, "sell"
    if direction == "buy" and position == "flat" and previous == "short":
        return "exit", Side.SHORT, "buy"
    if (direction, position) in (("sell", "long"), ("buy", "short")):
        raise SignalError(
            "unsupported_intent",
            f"a {direction} while the strategy's position stays {position} is a partial close, which is not "
            "supported; close the whole position (market_position flat) instead",
            "tv.market_position",
        )
    return ("entry", Side.LONG, "buy") if direction == "buy" else ("entry", Side.SHORT, "sell")


def parse_signal(body: str | bytes) -> Signal:
    """Parse, validate and normalise an alert body; :class:`SignalError` (400) when it is not acceptable."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignalError("malformed", "the body is not JSON; paste the alert template as JSON") from exc
    if not isinstance(data, dict):
        raise SignalError("malformed", f"the body must be a JSON object, got {type(data).__name__}")
    placeholder = _find_placeholder(data, "")
    if placeholder is not None:
        raise SignalError(
            "placeholder",
            f"{placeholder} still contains a {{{{...}}}} placeholder; TradingView did not fill it in "
            "(check the alert message and that the placeholder exists for this alert type)",
            placeholder,
        )
    try:
        payload = TradingViewPayload.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc) from exc
    tv = payload.tv
    prefix, symbol = normalize_symbol(tv.symbol)
    exchange = (tv.exchange or prefix or "").lower()
    if not exchange:
        raise SignalError(
            "invalid_field",
            "tv.exchange is required (or prefix the symbol, e.g. BINANCE:BTCUSDT)",
            "tv.exchange",
        )
    position = _market_position("tv.market_position", tv.market_position)
    previous = _market_position("tv.prev_market_position", tv.prev_market_position)
    intent, side, action = _intent_and_side(payload, position, previous)
    execution = payload.execution_intent or ExecutionIntent()
    size_type = _choose(
        "execution_intent.position_size_type", execution.position_size_type, ("quote", "base", "contracts")
    )
    _check_ranges(payload)
    info = payload.strategy_info or StrategyInfo()
    risk = payload.risk or RiskFields()
    raw = {key: value for key, value in data.items() if key != "secret"}
    return Signal(
        exchange=exchange,
        symbol=symbol,
        timeframe=parse_timeframe(tv.timeframe),
        intent=intent,
        side=side,
        action=action,
        secret=payload.secret,
        source=payload.source,
        market_position=position,
        prev_market_position=previous,
        market_position_size=tv.market_position_size,
        prev_market_position_size=tv.prev_market_position_size,
        entry_price=tv.entry_price,
        close_price=tv.close_price,
        order_size=tv.order_size,
        position_size_type=cast(PositionSizeType, size_type or "quote"),
        precision_mode=execution.precision_mode,
        trade_id=info.trade_id,
        alert_name=info.alert_name,
        alert_message=info.alert_message,
        timestamp=parse_timestamp(payload.timestamp) if payload.timestamp is not None else None,
        max_slippage_percent=risk.max_slippage_percent,
        stop_loss=risk.stop_loss,
        take_profit=risk.take_profit,
        raw=raw,
    )


def _check_ranges(payload: TradingViewPayload) -> None:
    risk = payload.risk or RiskFields()
    values = {
        "tv.entry_price": payload.tv.entry_price,
        "tv.close_price": payload.tv.close_price,
        "tv.order_size": payload.tv.order_size,
        "tv.market_position_size": payload.tv.market_position_size,
        "tv.prev_market_position_size": payload.tv.prev_market_position_size,
        "risk.stop_loss": risk.stop_loss,
        "risk.take_profit": risk.take_profit,
        "risk.max_slippage_percent": risk.max_slippage_percent,
    }
    for field_name, value in values.items():
        if value is not None and (error := _out_of_range(field_name, value, _FINEST)) is not None:
            raise error


# --------------------------------------------------------------------------- checks


def check_quote(signal: Signal, usd_quotes: Iterable[str]) -> None:
    """Refuse a market whose quote is not a USD quote (400 ``unsupported_quote``, DESIGN §3.5).

    Call it before the market lookup: the engine's money is USD, so ``ETH/BTC`` would be sized in BTC
    as if it were dollars.
    """
    quote = signal.symbol.partition("/")[2].split(":", 1)[0].upper()
    allowed = [code.upper() for code in usd_quotes]
    if quote not in allowed:
        raise SignalError(
            "unsupported_quote",
            f"{signal.symbol}: quote {quote or '?'} is not a USD quote; the engine trades markets quoted in "
            f"{', '.join(allowed)} (engine.usd_quotes)",
            "tv.symbol",
        )


def check_numbers(signal: Signal, tick: Decimal, step: Decimal) -> None:
    """Refuse prices that Decimal cannot hold at the market's ``tick`` and sizes at its ``step``, and a
    base/contracts ``order_size`` whose notional at the signal's price is out of range (400
    ``out_of_range``): call it once the market's precision is known, before any rounding."""
    for field_name, attribute in _NUMBER_FIELDS:
        value = getattr(signal, attribute)
        if value is None or attribute == "max_slippage_percent":
            continue
        increment = step if attribute.endswith("size") else tick
        if (error := _out_of_range(field_name, value, min(increment, _FINEST))) is not None:
            raise error
    price = signal.reference_price
    if signal.order_size is not None and signal.position_size_type != "quote" and price is not None:
        notional = signal.order_size * price
        if notional >= MAX_NUMBER:
            raise SignalError(
                "out_of_range",
                f"tv.order_size {signal.order_size} {signal.position_size_type} at {price} is worth "
                f"{notional:.3E}, out of range (at most {MAX_NUMBER:.0E})",
                "tv.order_size",
            )


def check_timestamp(signal: Signal, now: datetime, max_age_seconds: int) -> None:
    """Refuse a signal older than ``max_age_seconds`` (stale) or more than 60 s ahead of ``now`` (future)."""
    if signal.timestamp is None:
        return
    age = (as_utc(now) - signal.timestamp).total_seconds()
    if age > max_age_seconds:
        raise SignalError(
            "stale_signal",
            f"timestamp {signal.timestamp.isoformat()} is {int(age)} s old, older than the "
            f"{max_age_seconds} s allowed (engine.max_signal_age_seconds)",
            "timestamp",
        )
    if -age > MAX_FUTURE_SECONDS:
        raise SignalError(
            "future_signal",
            f"timestamp {signal.timestamp.isoformat()} is {int(-age)} s in the future "
            f"(more than {MAX_FUTURE_SECONDS} s); check the sender's clock",
            "timestamp",
        )


def check_account(signal: Signal, accounts: Mapping[str, AccountConfig]) -> AccountConfig:
    """The account for the signal's exchange (case-insensitive); refuse unknown ones and spot shorts."""
    by_name = {name.lower(): account for name, account in accounts.items()}
    account = by_name.get(signal.exchange.lower())
    if account is None:
        configured = ", ".join(sorted(by_name)) or "none"
        raise SignalError(
            "unknown_exchange",
            f"exchange {signal.exchange!r} is not configured in engine.accounts (configured: {configured})",
            "tv.exchange",
        )
    if signal.is_entry and signal.side is Side.SHORT and account.market_type == "spot":
        raise SignalError(
            "unsupported_side",
            f"a sell that opens a short is refused: {signal.exchange} is a spot account (long only); "
            "set market_type swap to trade shorts",
            "tv.action",
        )
    return account
