"""Field-level parsing of TradingView alerts: the refusal type, symbols, timeframes and timestamps.

Pure: no boto3/ccxt. Split from :mod:`engine.domain.signal` (which re-exports these names) so each module
holds one concern: this one turns single field values into normalised ones or a :class:`SignalError`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

SignalCode = Literal[
    "malformed",
    "invalid_field",
    "placeholder",
    "unsupported_intent",
    "unknown_intent",
    "unsupported_side",
    "unknown_exchange",
    "stale_signal",
    "future_signal",
    "unknown_symbol",
    "unsupported_quote",
    "out_of_range",
]

#: Quote currencies recognised in a symbol without separator, in order of preference.
QUOTE_CURRENCIES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "BTC", "ETH", "EUR", "TRY")
#: Longest match first (``BTCFDUSD`` is BTC/FDUSD, not BTCFD/USD), then by preference.
_QUOTES_BY_MATCH = sorted(QUOTE_CURRENCIES, key=lambda quote: -len(quote))
MAX_FUTURE_SECONDS = 60
MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 10080
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: 1970-01-01 was a Thursday; weekly candles start on Monday 00:00 UTC, four days later.
WEEK_ORIGIN = EPOCH + timedelta(days=4)
_CODE_PART = re.compile(r"^[A-Z0-9]+$")


class SignalError(Exception):
    """A refused signal: a machine ``code``, a readable ``reason`` and the ``field`` it is about.

    This module raises the :data:`SignalCode` codes; callers raise their own (``missing_secret``,
    ``bad_secret``, ``bad_signature``, ``body_too_large``, ``unknown_symbol``). What a code becomes on the
    wire is the HTTP edge's business (``engine.api.webhook``).
    """

    def __init__(self, code: SignalCode | str, reason: str, field: str | None = None) -> None:
        self.code = code
        self.reason = reason
        self.field = field
        super().__init__(reason)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


# --------------------------------------------------------------------------- payload models


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --------------------------------------------------------------------------- normalisation


def normalize_symbol(text: str, field_name: str = "tv.symbol") -> tuple[str | None, str]:
    """Split ``BINANCE:BTCUSDT`` forms into (exchange prefix or None, ccxt ``BASE/QUOTE``)."""
    value = text.strip().upper()
    prefix: str | None = None
    head, colon, rest = value.partition(":")
    if colon and "/" not in head:
        prefix, value = head.strip().lower() or None, rest.strip()
    value = value.split(":", 1)[0]  # ccxt swap form BTC/USDT:USDT
    value = value.removesuffix(".P")
    separator = "/" if "/" in value else "-" if "-" in value else None
    if separator is not None:
        base, _, quote = value.partition(separator)
    else:
        base, quote = "", ""
        for candidate in _QUOTES_BY_MATCH:
            if value.endswith(candidate) and len(value) > len(candidate):
                base, quote = value[: -len(candidate)], candidate
                break
        if not quote:
            raise SignalError(
                "invalid_field",
                f"{field_name}: cannot tell the quote currency of {text!r}; write it as BASE/QUOTE, "
                f"e.g. BTC/USDT (recognised quotes: {', '.join(QUOTE_CURRENCIES)})",
                field_name,
            )
    if not (_CODE_PART.match(base) and _CODE_PART.match(quote)):
        raise SignalError("invalid_field", f"{field_name}: {text!r} is not a market symbol", field_name)
    return prefix, f"{base}/{quote}"


def parse_timeframe(text: str, field_name: str = "tv.timeframe") -> int:
    """TradingView interval -> minutes: ``1``…``240``, ``D``/``1D`` (1440), ``W``/``1W`` (10080)."""
    value = text.strip().upper()
    named = {"D": MINUTES_PER_DAY, "1D": MINUTES_PER_DAY, "W": MINUTES_PER_WEEK, "1W": MINUTES_PER_WEEK}
    if value in named:
        return named[value]
    if value.isdigit():
        minutes = int(value)
        if 1 <= minutes <= 240 or minutes in (MINUTES_PER_DAY, MINUTES_PER_WEEK):
            return minutes
    raise SignalError(
        "invalid_field",
        f"{field_name}: unsupported timeframe {text!r}; use minutes 1 to 240, D/1D or W/1W",
        field_name,
    )


def parse_timestamp(value: str | int | Decimal, field_name: str = "timestamp") -> datetime:
    """ISO-8601 (``2026-11-26T12:00:00Z``; naive = UTC) or epoch seconds / milliseconds -> UTC datetime."""
    try:
        if isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            return as_utc(datetime.fromisoformat(value))
        seconds = Decimal(value)
        if abs(seconds) >= Decimal(10) ** 11:  # 1e11 s is the year 5138: this is milliseconds
            seconds /= 1000
        return EPOCH + timedelta(seconds=float(seconds))
    except (ValueError, InvalidOperation, OverflowError) as exc:
        raise SignalError(
            "invalid_field",
            f"{field_name}: {str(value)!r} is not a time; use ISO-8601 like 2026-11-26T12:00:00Z "
            "(TradingView's {{timenow}}) or epoch seconds",
            field_name,
        ) from exc
