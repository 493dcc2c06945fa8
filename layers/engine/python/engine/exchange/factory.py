"""Pick the gateway for an account: the paper exchange (default) or a live ccxt account."""

from __future__ import annotations

import os
from collections.abc import Mapping

from engine.domain.config import AccountConfig, PaperConfig
from engine.exchange.ccxt_gateway import CcxtGateway
from engine.exchange.errors import OrderRefused
from engine.exchange.gateway import ExchangeGateway
from engine.exchange.markets import paper_markets
from engine.exchange.paper import PaperBook, PaperGateway
from engine.exchange.prices import PriceSource

__all__ = ["gateway_for"]

#: Accepted spellings of the secret's fields (Secrets Manager JSON).
_API_KEY = ("api_key", "apiKey", "key")
_SECRET = ("secret", "api_secret", "secret_key")
_PASSWORD = ("password", "passphrase")


def exchange_timeout_ms() -> int | None:
    """ccxt's per-request timeout in ms (env EXCHANGE_TIMEOUT_MS); None = ccxt's own default (10 s).

    The stack sets it so that an order's worst case fits the executor's timeout (infra/functions.py);
    a value that is not a positive integer is ignored rather than breaking every exchange call.
    """
    raw = os.getenv("EXCHANGE_TIMEOUT_MS", "")
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def _first(credentials: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if credentials.get(name):
            return credentials[name]
    return None


def gateway_for(
    account_name: str,
    account: AccountConfig,
    *,
    book: PaperBook,
    prices: PriceSource,
    paper: PaperConfig,
    credentials: Mapping[str, str] | None,
) -> ExchangeGateway:
    """The gateway of ``account_name`` (a ccxt exchange id: ``binance``, ``bybit``, ``okx``).

    Paper mode -> ``PaperGateway`` over ``book`` and ``prices`` with ``paper``'s fee, balance and
    markets. Live mode -> ``CcxtGateway`` with ``credentials`` (``api_key``, ``secret`` and, for okx,
    ``password``) and ccxt's request timeout from ``EXCHANGE_TIMEOUT_MS``; missing credentials raise
    ``OrderRefused`` (``AuthenticationError``) — nothing can be sent without them. ccxt is not
    imported here; the live client is built on first use.
    """
    if account.mode == "paper":
        return PaperGateway(
            account_name,
            book=book,
            prices=prices,
            fee_percent=paper.fee_percent,
            balance_usd=paper.balance_usd,
            markets=paper_markets(paper.markets),
        )
    creds = credentials or {}
    api_key, secret = _first(creds, _API_KEY), _first(creds, _SECRET)
    if not api_key or not secret:
        raise OrderRefused(
            f"live account {account_name!r} has no API key and secret (secret {account.secret_name!r})",
            error="AuthenticationError",
        )
    return CcxtGateway(
        account_name,
        api_key=api_key,
        secret=secret,
        password=_first(creds, _PASSWORD),
        sandbox=account.sandbox,
        market_type=account.market_type,
        timeout_ms=exchange_timeout_ms(),
    )
