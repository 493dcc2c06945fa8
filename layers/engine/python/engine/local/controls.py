"""Parsing of the ``/_local/*`` control requests (the runtime performs them)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from engine.domain.signal import SignalError, normalize_symbol


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
