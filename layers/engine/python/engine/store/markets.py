"""MarketStore (market precisions per exchange) and PriceStore (last prices per exchange)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from engine.domain.models import MarketPrecision
from engine.store.tables import MarketModel, PriceModel, bind

#: Range key of the per-exchange marker recording the last refresh.
REFRESH_MARKER = "#refreshed"


def _precision(item: MarketModel) -> MarketPrecision:
    if item.tick is None or item.step is None or item.min_qty is None or item.min_notional is None:
        raise ValueError(f"market item {item.exchange}/{item.symbol} is incomplete")
    return MarketPrecision(
        symbol=item.symbol,
        tick=item.tick,
        step=item.step,
        min_qty=item.min_qty,
        min_notional=item.min_notional,
        contract_size=item.contract_size or Decimal(1),
    )


class MarketStore:
    """Markets table (hash ``exchange``, range ``symbol``)."""

    def get(self, exchange: str, symbol: str) -> MarketPrecision | None:
        """The stored precision of ``symbol`` on ``exchange``, or None."""
        if symbol == REFRESH_MARKER:
            return None
        try:
            return _precision(bind(MarketModel).get(exchange, symbol))
        except MarketModel.DoesNotExist:
            return None

    def put_many(self, exchange: str, precisions: Iterable[MarketPrecision], refreshed_at: datetime) -> None:
        """Store (overwrite) ``precisions`` and record ``refreshed_at`` for ``exchange``."""
        model = bind(MarketModel)
        with model.batch_write() as batch:
            for p in precisions:
                batch.save(
                    MarketModel(
                        exchange=exchange,
                        symbol=p.symbol,
                        tick=p.tick,
                        step=p.step,
                        min_qty=p.min_qty,
                        min_notional=p.min_notional,
                        contract_size=p.contract_size,
                        refreshed_at=refreshed_at,
                    )
                )
            batch.save(MarketModel(exchange=exchange, symbol=REFRESH_MARKER, refreshed_at=refreshed_at))

    def list(self, exchange: str) -> builtins.list[MarketPrecision]:
        """Every stored precision of ``exchange``, by symbol."""
        return [
            _precision(item) for item in bind(MarketModel).query(exchange) if item.symbol != REFRESH_MARKER
        ]

    def refreshed_at(self, exchange: str) -> datetime | None:
        """When ``put_many`` last ran for ``exchange``, or None."""
        try:
            return bind(MarketModel).get(exchange, REFRESH_MARKER).refreshed_at
        except MarketModel.DoesNotExist:
            return None


class PriceStore:
    """Prices table (hash ``exchange``, range ``symbol``).

    Also satisfies the exchange layer's ``PriceSource`` protocol (``get(exchange, symbol)``).
    """

    def get(self, exchange: str, symbol: str) -> Decimal | None:
        """Last stored price of ``symbol`` on ``exchange``, or None."""
        try:
            return bind(PriceModel).get(exchange, symbol).price
        except PriceModel.DoesNotExist:
            return None

    def set(self, exchange: str, symbol: str, price: Decimal, at: datetime) -> None:
        """Store ``price`` observed ``at``."""
        bind(PriceModel)
        PriceModel(exchange=exchange, symbol=symbol, price=price, at=at).save()

    def all(self, exchange: str) -> dict[str, Decimal]:
        """Every stored price of ``exchange``: symbol -> price."""
        return {item.symbol: item.price for item in bind(PriceModel).query(exchange)}
