"""The paper exchange's market table (DESIGN §6): major USDT spot pairs with realistic rules.

A swap paper account trades the same table; a market's ``contract_size`` (1 by default, set it per market
in ``engine.paper.markets``) is carried into the markets table like a real swap market's.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from engine.domain.models import MarketPrecision

__all__ = ["PAPER_MARKETS", "MarketRules", "paper_markets"]


class MarketRules(Protocol):
    """Anything with a market's rules, e.g. ``engine.domain.config.PaperMarket`` (whose optional
    ``contract_size``, base coin per contract, defaults to 1)."""

    @property
    def tick(self) -> Decimal: ...

    @property
    def step(self) -> Decimal: ...

    @property
    def min_qty(self) -> Decimal: ...

    @property
    def min_notional(self) -> Decimal: ...


def _market(symbol: str, tick: str, step: str) -> MarketPrecision:
    # Minimum quantity is one step; minimum notional is 5 USDT, as on the major exchanges.
    return MarketPrecision(symbol, Decimal(tick), Decimal(step), Decimal(step), Decimal(5))


#: Built-in paper markets, keyed by ccxt symbol.
PAPER_MARKETS: Mapping[str, MarketPrecision] = {
    m.symbol: m
    for m in (
        _market("BTC/USDT", "0.01", "0.00001"),
        _market("ETH/USDT", "0.01", "0.0001"),
        _market("SOL/USDT", "0.01", "0.001"),
        _market("BNB/USDT", "0.01", "0.001"),
        _market("XRP/USDT", "0.0001", "0.1"),
        _market("DOGE/USDT", "0.00001", "1"),
        _market("ADA/USDT", "0.0001", "0.1"),
        _market("AVAX/USDT", "0.01", "0.01"),
        _market("LINK/USDT", "0.01", "0.01"),
        _market("LTC/USDT", "0.01", "0.001"),
    )
}


def paper_markets(extra: Mapping[str, MarketRules] | None = None) -> dict[str, MarketPrecision]:
    """The built-in table plus ``extra`` (``engine.paper.markets``); ``extra`` wins on a clash."""
    markets = dict(PAPER_MARKETS)
    for symbol, rules in (extra or {}).items():
        markets[symbol] = MarketPrecision(
            symbol=symbol,
            tick=Decimal(str(rules.tick)),
            step=Decimal(str(rules.step)),
            min_qty=Decimal(str(rules.min_qty)),
            min_notional=Decimal(str(rules.min_notional)),
            contract_size=Decimal(str(getattr(rules, "contract_size", 1))),
        )
    return markets
