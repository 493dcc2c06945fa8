"""PaperOrderStore: the paper exchange's orders and balances.

Satisfies ``engine.exchange``'s paper-order protocol (without importing it): ``get``, ``put``,
``list_open``, ``list_all``, ``get_balances``, ``put_balances``. Balances live in the item with
``client_order_id`` ``#balance``; they are asset -> Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.domain.models import ZERO, ExchangeOrder
from engine.store.tables import PaperOrderModel, bind

BALANCE_ID = "#balance"
OPEN = "open"


def _to_model(order: ExchangeOrder) -> PaperOrderModel:
    bind(PaperOrderModel)
    return PaperOrderModel(
        exchange=order.exchange,
        client_order_id=order.client_order_id,
        id=order.id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        amount=order.amount,
        price=order.price,
        status=order.status,
        filled=order.filled,
        average=order.average,
        cost=order.cost,
        fee_cost=order.fee_cost,
        fee_currency=order.fee_currency,
        timestamp=order.timestamp,
        last_trade_at=order.last_trade_at,
    )


def _from_model(item: PaperOrderModel) -> ExchangeOrder:
    if item.id is None or item.symbol is None or item.side is None or item.type is None:
        raise ValueError(f"paper order item {item.exchange}/{item.client_order_id} is incomplete")
    if item.amount is None or item.status is None or item.timestamp is None:
        raise ValueError(f"paper order item {item.exchange}/{item.client_order_id} is incomplete")
    return ExchangeOrder(
        id=item.id,
        client_order_id=item.client_order_id,
        exchange=item.exchange,
        symbol=item.symbol,
        side=item.side,
        type=item.type,
        amount=item.amount,
        price=item.price,
        status=item.status,
        filled=item.filled if item.filled is not None else ZERO,
        average=item.average,
        cost=item.cost if item.cost is not None else ZERO,
        fee_cost=item.fee_cost if item.fee_cost is not None else ZERO,
        fee_currency=item.fee_currency,
        timestamp=item.timestamp,
        last_trade_at=item.last_trade_at,
    )


class PaperOrderStore:
    """Paper orders table (hash ``exchange``, range ``client_order_id``)."""

    def get(self, exchange: str, client_order_id: str) -> ExchangeOrder | None:
        """The paper order with ``client_order_id`` (strongly consistent), or None."""
        if client_order_id == BALANCE_ID:
            return None
        try:
            return _from_model(bind(PaperOrderModel).get(exchange, client_order_id, consistent_read=True))
        except PaperOrderModel.DoesNotExist:
            return None

    def put(self, order: ExchangeOrder) -> None:
        """Insert or overwrite ``order`` (``order.exchange`` is the hash key)."""
        if order.client_order_id == BALANCE_ID:
            raise ValueError(f"{BALANCE_ID!r} is reserved for balances")
        _to_model(order).save()

    def list_all(self, exchange: str) -> list[ExchangeOrder]:
        """Every paper order of ``exchange``."""
        items = bind(PaperOrderModel).query(exchange, consistent_read=True)
        return [_from_model(item) for item in items if item.client_order_id != BALANCE_ID]

    def list_open(self, exchange: str, symbol: str | None = None) -> list[ExchangeOrder]:
        """Paper orders of ``exchange`` with status ``open`` (optionally of one ``symbol``)."""
        return [
            order
            for order in self.list_all(exchange)
            if order.status == OPEN and (symbol is None or order.symbol == symbol)
        ]

    def get_balances(self, exchange: str) -> dict[str, Decimal] | None:
        """Asset -> balance of ``exchange``'s paper account, or None before the first ``put_balances``."""
        try:
            item = bind(PaperOrderModel).get(exchange, BALANCE_ID, consistent_read=True)
        except PaperOrderModel.DoesNotExist:
            return None
        return {asset: Decimal(str(value)) for asset, value in (item.balances or {}).items()}

    def put_balances(self, exchange: str, balances: Mapping[str, Decimal]) -> None:
        """Overwrite ``exchange``'s paper balances."""
        bind(PaperOrderModel)
        PaperOrderModel(
            exchange=exchange,
            client_order_id=BALANCE_ID,
            balances={asset: str(value) for asset, value in balances.items()},
        ).save()
