"""Where the paper exchange reads current prices: the ``PriceSource`` port and a ccxt ticker source.

Locally, prices come from the prices table (``engine.store`` implements ``PriceSource``); for a dry
run in AWS (:func:`paper_price_source` = ``tickers``), ``CcxtPriceSource`` reads the exchanges' public
tickers (no API key needed), and the paper gateway reads the table first and falls back to the ticker
(:class:`FallbackPriceSource`) for a symbol order_sync has not priced yet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from engine.exchange.ccxt_convert import decimal_or_none
from engine.exchange.errors import OrderRefused, map_ccxt_error

__all__ = ["CcxtPriceSource", "FallbackPriceSource", "PriceSource", "paper_price_source"]


def paper_price_source() -> str:
    """Where paper prices come from: ``table`` (default, set locally) or ``tickers`` (dry run in AWS)."""
    return (os.getenv("PAPER_PRICE_SOURCE") or "table").strip().lower()


@runtime_checkable
class PriceSource(Protocol):
    """Current price of a symbol on an exchange; ``None`` when no price is known."""

    def get(self, exchange: str, symbol: str) -> Decimal | None:
        """Last price of ``symbol`` on ``exchange``, or ``None``."""
        ...


class CcxtPriceSource:
    """``PriceSource`` over public ccxt tickers (``last``, else ``close``), cached briefly.

    With ``exchange_id`` every lookup uses that exchange's tickers; without it, the ``exchange``
    argument of :meth:`get` names the ccxt exchange. Unknown symbols read as ``None``; network
    failures raise ``TemporaryFailure``/``BackOff`` (no price is better than a stale guess).
    """

    def __init__(
        self,
        exchange_id: str | None = None,
        *,
        clients: Mapping[str, Any] | None = None,
        max_age_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exchange_id = exchange_id
        self._clients: dict[str, Any] = dict(clients or {})
        self._max_age = max_age_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Decimal | None]] = {}

    def _client(self, exchange_id: str) -> Any:
        client = self._clients.get(exchange_id)
        if client is None:
            import ccxt

            if exchange_id not in ccxt.exchanges:
                raise OrderRefused(f"unknown exchange {exchange_id!r}", error="NotSupported")
            client = getattr(ccxt, exchange_id)({"enableRateLimit": True})
            self._clients[exchange_id] = client
        return client

    def get(self, exchange: str, symbol: str) -> Decimal | None:
        """Ticker price of ``symbol``; reuses an answer younger than ``max_age_seconds``."""
        exchange_id = self._exchange_id or exchange
        key = (exchange_id, symbol)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1]
        client = self._client(exchange_id)
        try:
            ticker = client.fetch_ticker(symbol)
        except Exception as exc:
            failure = map_ccxt_error(exc)
            if isinstance(failure, OrderRefused):  # BadSymbol and friends: no price for this symbol
                price = None
                self._cache[key] = (now, price)
                return price
            raise failure from exc
        price = decimal_or_none(ticker.get("last")) or decimal_or_none(ticker.get("close"))
        if price is not None and price <= 0:
            price = None
        self._cache[key] = (now, price)
        return price


class FallbackPriceSource:
    """``primary``'s price (the prices table), else ``fallback``'s (a public ticker).

    A paper market order on a symbol without a stored price then fills at the ticker instead of backing
    off until order_sync stores one (retries that end in the dead-letter queue).
    """

    def __init__(self, primary: PriceSource, fallback: PriceSource) -> None:
        self._primary = primary
        self._fallback = fallback

    def get(self, exchange: str, symbol: str) -> Decimal | None:
        """The stored price, else the fallback's (``None`` when neither knows one)."""
        price = self._primary.get(exchange, symbol)
        return price if price is not None else self._fallback.get(exchange, symbol)
