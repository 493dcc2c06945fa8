"""Fee pricing for recorded fills (DESIGN §3.5 "Money is USD").

A fill's fee in a USD quote (``engine.usd_quotes``) counts 1:1 and a fee in the base coin is valued at
the fill price (both done by the domain, :func:`engine.domain.accounting.derive_fill`). A fee paid in
a third coin (BNB) needs that coin's ``<COIN>/USDT`` price at the moment the fill is recorded: this
module looks it up here, in app code, and hands the number to the pure domain.

Where the price comes from: the account gateway's ticker (for paper accounts that is the prices
table), else the price stored in the prices table; each coin is looked up at most once per
:class:`FeePricing` (one sync pass, one executor call), so a retried save does not call the exchange
again. No price at all -> ``None``: the fill keeps ``fee_usd`` unknown and a warning is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.domain.config import DEFAULT_USD_QUOTES, ConfigSnapshot
from engine.exchange.errors import ExchangeFailure
from engine.exchange.gateway import ExchangeGateway

__all__ = ["FeePricing", "fee_pricing", "usd_pair"]

logger = Logger(child=True)


def usd_pair(coin: str) -> str:
    """The ccxt symbol a third-coin fee is valued at: ``BNB`` -> ``BNB/USDT``."""
    return f"{coin.upper()}/USDT"


@dataclass
class FeePricing:
    """What :func:`engine.app.execution.apply_exchange_order` needs to put a fee in USD.

    ``usd_quotes``: the quotes that count 1:1 as USD; ``lookup``: coin -> its USD price or None (called
    at most once per coin).
    """

    usd_quotes: tuple[str, ...] = tuple(DEFAULT_USD_QUOTES)
    lookup: Callable[[str], Decimal | None] = lambda _coin: None
    _cache: dict[str, Decimal | None] = field(default_factory=dict)

    def coin_price_usd(self, coin: str | None, base_currency: str) -> Decimal | None:
        """USD price of a fee ``coin`` that is neither a USD quote nor the base coin, else None."""
        code = (coin or "").upper()
        if not code or code == base_currency.upper() or code in {q.upper() for q in self.usd_quotes}:
            return None
        if code not in self._cache:
            self._cache[code] = self.lookup(code)
            if self._cache[code] is None:
                logger.warning("fee coin has no USD price; fee_usd stays unknown", coin=code)
        return self._cache[code]


def fee_pricing(
    stores: Stores, gateway: ExchangeGateway | None, exchange: str, config: ConfigSnapshot
) -> FeePricing:
    """Fee pricing for one account: ``engine.usd_quotes`` and the ``<COIN>/USDT`` ticker lookup."""

    def lookup(coin: str) -> Decimal | None:
        symbol = usd_pair(coin)
        if gateway is not None:
            try:
                price = gateway.fetch_prices([symbol]).get(symbol)
            except ExchangeFailure as failure:
                logger.warning("fee coin ticker unavailable", symbol=symbol, reason=failure.reason)
                price = None
            if price is not None and price > 0:
                return price
        return stores.prices.get(exchange, symbol)

    return FeePricing(usd_quotes=_quotes(config.engine.usd_quotes), lookup=lookup)


def _quotes(quotes: Iterable[str]) -> tuple[str, ...]:
    return tuple(q.upper() for q in quotes)
