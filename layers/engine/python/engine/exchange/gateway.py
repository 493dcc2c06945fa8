"""The exchange port: what the engine asks of an exchange, whether real (ccxt) or paper.

Every order is addressed by its *client order id* (see :mod:`engine.exchange.client_ids`), which we
choose and persist before the first send, so a lost answer can always be looked up again.

Failure contract (classes in :mod:`engine.exchange.errors`):

- ``create_order`` raises ``OrderRefused`` (final, nothing placed), ``BackOff`` (nothing placed, try
  later) or ``OutcomeUnknown`` (the create may have been placed: reconcile with ``fetch_order``; the
  gateway itself never sends a second create for the same request).
- Reads and cancels retry network-class failures internally and then raise ``TemporaryFailure``;
  ``BackOff`` and ``OrderRefused`` pass through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from engine.domain.models import ExchangeOrder, MarketPrecision, OrderSide, OrderType

__all__ = ["ExchangeGateway", "OrderRequest"]


@dataclass(frozen=True)
class OrderRequest:
    """One order to place. ``price`` is required for limit orders and ignored for market orders."""

    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None = None


@runtime_checkable
class ExchangeGateway(Protocol):
    """Markets, orders by client id, prices and balances of one exchange account."""

    @property
    def name(self) -> str:
        """Account/exchange name (``binance``, ``bybit``, ``okx``); set on every ``ExchangeOrder``."""
        ...

    def load_markets(self) -> list[MarketPrecision]:
        """Trading rules (tick, step, minimums) of every market the account can trade."""
        ...

    def create_order(self, req: OrderRequest) -> ExchangeOrder:
        """Place ``req`` (idempotent per client order id); returns the order as the exchange has it."""
        ...

    def cancel_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """Cancel an order; returns its state afterwards (``canceled``, or its final state when it had
        already filled or been cancelled); ``None`` when the exchange does not know the order."""
        ...

    def fetch_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """The order as the exchange has it now, or ``None`` when it is in neither the open nor the
        closed orders (one lookup; proving absence takes two lookups spaced apart, DESIGN §5)."""
        ...

    def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Orders still open (all symbols when ``symbol`` is None)."""
        ...

    def fetch_closed_orders(self, symbol: str, since: datetime | None = None) -> list[ExchangeOrder]:
        """Orders of ``symbol`` no longer open (filled, cancelled, expired, rejected), newest data."""
        ...

    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Last price per symbol; symbols without a price are left out."""
        ...

    def fetch_balance(self) -> dict[str, Decimal]:
        """Total holdings per currency (free plus what open orders reserve); zero balances left out."""
        ...
