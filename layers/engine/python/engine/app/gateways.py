"""The exchange gateway of an account, built from the live configuration and cached in the process.

- Paper accounts (the default): ``PaperGateway`` over ``stores.paper`` (the paper book) and
  ``stores.prices`` (prices are read under the account name, e.g. ``binance`` / ``BTC/USDT``); with
  ``PAPER_PRICE_SOURCE=tickers`` (AWS dry run) a symbol without a stored price is priced from the
  exchange's public ticker, so a market order there fills instead of backing off into the DLQ.
- Live accounts: ``CcxtGateway`` with the API keys from Secrets Manager
  (``engine.config.exchange_credentials``). ccxt is imported by the gateway on its first exchange call,
  never here, so building a paper gateway never loads ccxt.

Cache: one gateway per (account, ``engine`` document version, account and paper settings, credentials
digest). A config edit therefore yields a new gateway on the next invocation, and a rotated API key
(re-read through the secrets cache, at most ``CONFIG_MAX_AGE_SECONDS`` old) does too; a warm live
gateway keeps its ccxt client (markets, rate limiter) between invocations otherwise.

Failures: an account missing from the configuration, a live account whose keys are missing, or one
whose ``secret_name`` is outside the stack's namespace (a config problem: IAM would refuse every read)
raises ``OrderRefused`` (final: nothing can be sent). A secret that cannot be read raises ``BackOff``: the
order stays pending and is retried, since Secrets Manager may only be briefly unavailable.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Protocol

from engine.config import SecretError, exchange_credentials, secret_namespace_problem
from engine.domain.config import ConfigSnapshot
from engine.exchange.errors import BackOff, OrderRefused
from engine.exchange.factory import gateway_for
from engine.exchange.gateway import ExchangeGateway
from engine.exchange.prices import CcxtPriceSource, FallbackPriceSource, PriceSource, paper_price_source
from engine.store import PaperOrderStore, PriceStore

__all__ = ["PaperBooks", "clear_gateway_cache", "gateway_for_exchange"]

#: Bound on cached gateways (config versions x accounts); the cache is emptied when it is exceeded.
_MAX_CACHED = 32

_cache: dict[tuple[object, ...], ExchangeGateway] = {}
_lock = threading.Lock()


def _digest(credentials: dict[str, str] | None) -> str:
    if credentials is None:
        return ""
    text = json.dumps(credentials, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PaperBooks(Protocol):
    """What a paper gateway is built over (``engine.app.context.Stores`` satisfies it)."""

    @property
    def paper(self) -> PaperOrderStore: ...

    @property
    def prices(self) -> PriceStore: ...


def gateway_for_exchange(stores: PaperBooks, exchange: str, config: ConfigSnapshot) -> ExchangeGateway:
    """The gateway of account ``exchange`` under ``config`` (see the module docstring)."""
    account = config.engine.accounts.get(exchange)
    if account is None:
        raise OrderRefused(f"account {exchange!r} is not configured (engine.accounts)", error="NotConfigured")
    credentials: dict[str, str] | None = None
    if account.mode == "live":
        problem = config.account_problem(exchange) or secret_namespace_problem(exchange, account.secret_name)
        if problem is not None:
            raise OrderRefused(problem, error="ConfigInvalid")
        try:
            credentials = exchange_credentials(exchange, account.secret_name)
        except SecretError as exc:
            label = f"API keys of {exchange!r} cannot be read"
            raise BackOff(f"{label}: {exc.reason}", error="SecretError", label=label) from exc
    key: tuple[object, ...] = (
        exchange,
        config.versions.get("engine", 0),
        account.model_dump_json(),
        config.engine.paper.model_dump_json() if account.mode == "paper" else "",
        _digest(credentials),
        id(stores.paper),
        id(stores.prices),
        paper_price_source(),
    )
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    prices: PriceSource = stores.prices
    venue = config.engine.exchange_of(exchange)
    if account.mode == "paper" and paper_price_source() == "tickers":
        prices = FallbackPriceSource(stores.prices, CcxtPriceSource(venue))
    gateway = gateway_for(
        # A paper account keeps its own book (partition = account name); a live one is a ccxt client of
        # its exchange with the account's own keys.
        exchange if account.mode == "paper" else venue,
        account,
        book=stores.paper,
        prices=prices,
        paper=config.engine.paper,
        credentials=credentials,
    )
    with _lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        return _cache.setdefault(key, gateway)


def clear_gateway_cache() -> None:
    """Forget every cached gateway (tests; a live client is rebuilt on next use)."""
    with _lock:
        _cache.clear()
