"""Market precision of an account's symbol, as every use case reads it (never from the exchange)."""

from __future__ import annotations

from engine.app.context import Stores
from engine.app.shared.errors import InvalidState
from engine.domain.config import ConfigSnapshot
from engine.domain.models import Group, MarketPrecision
from engine.exchange.markets import paper_markets

__all__ = ["MarketUnknown", "load_precision", "market_precision"]


class MarketUnknown(InvalidState):
    """No market precision for the group's exchange and symbol: nothing can be sized."""


def market_precision(
    stores: Stores, exchange: str, symbol: str, config: ConfigSnapshot
) -> MarketPrecision | None:
    """Trading rules of ``symbol`` on account ``exchange``: markets table, else the paper table, else None."""
    name = exchange.strip().lower()
    stored = stores.markets.get(name, symbol)
    if stored is not None:
        return stored
    account = config.engine.account(name)
    if account is not None and account.mode == "paper":
        return paper_markets(config.engine.paper.markets).get(symbol)
    return None


def load_precision(stores: Stores, group: Group, config: ConfigSnapshot) -> MarketPrecision:
    """The group's market precision (stored markets, else the paper table); :class:`MarketUnknown`."""
    precision = market_precision(stores, group.exchange, group.symbol, config)
    if precision is None:
        raise MarketUnknown(f"no market precision for {group.exchange} {group.symbol}")
    return precision
