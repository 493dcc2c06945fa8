"""PaperOrderStore: the paper exchange's orders and balances.

Satisfies ``engine.exchange``'s paper-order protocol (without importing it): ``get``, ``put``,
``list_open``, ``list_all``, ``get_balances``, ``put_balances``. Balances live in the item with
``client_order_id`` ``#balance``; they are asset -> Decimal.

Open orders are also kept under the hash key ``<exchange>#open``, with the range key
``<symbol>|<client order id>`` (same attributes), written in one transaction with the order, so
:meth:`PaperOrderStore.list_open` reads the open book, not every order the account ever placed — all of
it when every order placed asks what the open orders reserve, one symbol's part (a range-key prefix)
when the sync polls a symbol. An account written before that copy existed, or when its range key was
the bare client order id, gets it rebuilt on its first ``list_open`` (the item ``#open-book`` marks it
done).

Reservations: what the account's open orders hold back is kept as a ledger under the hash key
``<exchange>#reserved``, one item per key (the total in ``reserved``), moved with ``ADD`` in the same
transaction as the order whose reservation changed, so a funds check reads a few items instead of the
whole open book. The item ``#ledger`` marks the ledger as written (an account from before the ledger has
none: ``get_reserved`` answers None and the gateway builds it from the open book once). The order in that
transaction is written only if the book still holds the version it replaces, so two writers of one order
cannot both move the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from pynamodb.expressions.condition import Condition

from engine.domain.models import ZERO, ExchangeOrder
from engine.store.tables import PaperOrderModel, bind
from engine.store.tx import Transaction

BALANCE_ID = "#balance"
#: Marks an account whose open book is in the current layout (``#open-index`` marked the earlier one).
OPEN_INDEX_ID = "#open-book"
_OLD_INDEX_IDS = ("#open-index",)
OPEN = "open"
OPEN_SUFFIX = "#open"
#: Between the symbol and the client order id in an open-book range key.
OPEN_KEY_SEPARATOR = "|"
LEDGER_SUFFIX = "#reserved"
#: In the ledger partition, marks an account whose reservation ledger exists.
LEDGER_MARK = "#ledger"
_RESERVED = (BALANCE_ID, OPEN_INDEX_ID, *_OLD_INDEX_IDS)


def _ledger_partition(exchange: str) -> str:
    return exchange + LEDGER_SUFFIX


def _unchanged_since(order: ExchangeOrder | None) -> Condition:
    """The stored order is still ``order`` as it was read (``None``: there is no such order yet)."""
    if order is None:
        return PaperOrderModel.client_order_id.does_not_exist()
    return (PaperOrderModel.status == order.status) & (PaperOrderModel.filled == order.filled)


def _open_key(order: ExchangeOrder) -> str:
    return f"{order.symbol}{OPEN_KEY_SEPARATOR}{order.client_order_id}"


def _to_model(order: ExchangeOrder, open_book: bool = False) -> PaperOrderModel:
    bind(PaperOrderModel)
    return PaperOrderModel(
        exchange=_open_partition(order.exchange) if open_book else order.exchange,
        client_order_id=_open_key(order) if open_book else order.client_order_id,
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


def _open_partition(exchange: str) -> str:
    return exchange + OPEN_SUFFIX


def _from_open_copy(item: PaperOrderModel, exchange: str) -> ExchangeOrder:
    order = _from_model(item)
    _, _, client_order_id = order.client_order_id.partition(OPEN_KEY_SEPARATOR)
    return replace(order, exchange=exchange, client_order_id=client_order_id)


class PaperOrderStore:
    """Paper orders table (hash ``exchange``, range ``client_order_id``; open orders also under
    ``<exchange>#open``)."""

    def __init__(self) -> None:
        self._indexed: set[str] = set()

    def get(self, exchange: str, client_order_id: str) -> ExchangeOrder | None:
        """The paper order with ``client_order_id`` (strongly consistent), or None."""
        if client_order_id in _RESERVED:
            return None
        try:
            return _from_model(bind(PaperOrderModel).get(exchange, client_order_id, consistent_read=True))
        except PaperOrderModel.DoesNotExist:
            return None

    def put(
        self,
        order: ExchangeOrder,
        *,
        replaces: ExchangeOrder | None,
        reserved: Mapping[str, Decimal] | None = None,
    ) -> bool:
        """Write ``order`` (``order.exchange`` is the hash key) and its open-book copy if the book still
        holds ``replaces`` as it was read (``None``: no order with this client id yet), and move the
        reservation ledger by ``reserved`` (key -> change) in the same transaction. False, with nothing
        written, when the order changed meanwhile."""
        if order.client_order_id in _RESERVED:
            raise ValueError(f"{order.client_order_id!r} is reserved")
        transaction = Transaction(f"paper:{order.exchange}:{order.client_order_id}")
        transaction.put("order", _to_model(order), condition=_unchanged_since(replaces))
        copy = _to_model(order, open_book=True)
        if order.status == OPEN:
            transaction.put("open", copy)
        else:
            transaction.delete("open", copy)
        for key, change in sorted((reserved or {}).items()):
            if change:
                ledger = PaperOrderModel(exchange=_ledger_partition(order.exchange), client_order_id=key)
                transaction.update(f"reserved:{key}", ledger, [PaperOrderModel.reserved.add(change)])
        return not transaction.commit()

    def get_reserved(self, exchange: str) -> dict[str, Decimal] | None:
        """The reservation ledger of ``exchange`` (key -> total), or None before it was first written."""
        items = list(bind(PaperOrderModel).query(_ledger_partition(exchange), consistent_read=True))
        if not any(item.client_order_id == LEDGER_MARK for item in items):
            return None
        ledger = [item for item in items if item.client_order_id != LEDGER_MARK]
        return {item.client_order_id: item.reserved or ZERO for item in ledger}

    def put_reserved(self, exchange: str, reserved: Mapping[str, Decimal]) -> None:
        """Write the ledger of ``exchange`` afresh (its first write, built from the open book)."""
        partition = _ledger_partition(exchange)
        for item in list(bind(PaperOrderModel).query(partition, consistent_read=True)):
            item.delete()
        for key, total in reserved.items():
            PaperOrderModel(exchange=partition, client_order_id=key, reserved=total).save()
        PaperOrderModel(exchange=partition, client_order_id=LEDGER_MARK).save()

    def list_all(self, exchange: str) -> list[ExchangeOrder]:
        """Every paper order of ``exchange``."""
        items = bind(PaperOrderModel).query(exchange, consistent_read=True)
        return [_from_model(item) for item in items if item.client_order_id not in _RESERVED]

    def list_open(self, exchange: str, symbol: str | None = None) -> list[ExchangeOrder]:
        """Paper orders of ``exchange`` with status ``open`` (optionally of one ``symbol``: only its part of
        the open book is read)."""
        self._index_once(exchange)
        model = bind(PaperOrderModel)
        if symbol is None:
            items = model.query(_open_partition(exchange), consistent_read=True)
        else:
            prefix = f"{symbol}{OPEN_KEY_SEPARATOR}"
            condition = PaperOrderModel.client_order_id.startswith(prefix)
            items = model.query(_open_partition(exchange), condition, consistent_read=True)
        orders = [_from_open_copy(item, exchange) for item in items]
        return [
            order for order in orders if order.status == OPEN and (symbol is None or order.symbol == symbol)
        ]

    def _index_once(self, exchange: str) -> None:
        """Rebuild the open book of an account written before its current layout (once)."""
        if exchange in self._indexed:
            return
        model = bind(PaperOrderModel)
        try:
            model.get(exchange, OPEN_INDEX_ID, consistent_read=True)
        except PaperOrderModel.DoesNotExist:
            for stale in list(model.query(_open_partition(exchange), consistent_read=True)):
                stale.delete()
            for order in self.list_all(exchange):
                if order.status == OPEN:
                    _to_model(order, open_book=True).save()
            PaperOrderModel(exchange=exchange, client_order_id=OPEN_INDEX_ID).save()
        self._indexed.add(exchange)

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
