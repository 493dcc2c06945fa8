"""The closing kit every use case that closes shares: close side, close orders and ids, sellable check,
cancel requests, and the conflict raised when a group keeps changing.

Closing is intent (DESIGN §1): nothing here talks to the exchange. Close orders are market orders with a
closing purpose (``tp``/``exit``/``risk_close``); the group's n-th close order is ``"<group id>-close-<n>"``,
a pyramid's ``"<group id>-p<pyramid>-close-<n>"`` (n from 1), written with ``put_new`` so a replay that
computes the same id writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.app.shared.retry import retry_on_stale
from engine.domain.accounting import CLOSING_PURPOSES
from engine.domain.models import (
    ZERO,
    Group,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
)
from engine.exchange.client_ids import client_order_id
from engine.store import StaleWrite

__all__ = [
    "MAX_REFUSALS",
    "SAVE_ATTEMPTS",
    "CloseConflict",
    "close_order_id",
    "closing_side",
    "is_close_order",
    "is_sellable",
    "new_close_order",
    "refusals",
    "request_cancels",
]

logger = Logger(child=True)

#: Attempts at an optimistic write that keeps losing to other writers before giving up.
SAVE_ATTEMPTS = 3
#: An order the exchange refused this many times (a TP of one leg, a close) is not placed again: the
#: refusal is final (e.g. a price filter, insufficient funds) and resending would loop forever. The
#: rejected orders keep their reasons; the operator decides (e.g. closes the group by hand).
MAX_REFUSALS = 3


class CloseConflict(StaleWrite):
    """A group kept changing under us for :data:`SAVE_ATTEMPTS` attempts (the caller retries later)."""


def closing_side(side: Side) -> OrderSide:
    """Exchange side that reduces a position of ``side`` (sell for long, buy for short)."""
    return OrderSide.SELL if Side(side) == Side.LONG else OrderSide.BUY


def is_close_order(order: Order) -> bool:
    """True for a market order that closes (part of) a position: an exit, aggregate TP or risk close."""
    return order.type == OrderType.MARKET and order.purpose in CLOSING_PURPOSES


def close_order_id(group_id: str, orders: Sequence[Order], pyramid: int | None = None) -> str:
    """Id of the next close order of the group (or of one pyramid): ``<group>-close-<n>``."""
    prefix = f"{group_id}-close-" if pyramid is None else f"{group_id}-p{pyramid}-close-"
    taken = sum(1 for order in orders if order.id.startswith(prefix))
    return f"{prefix}{taken + 1}"


def refusals(orders: Iterable[Order]) -> int:
    """How many of ``orders`` the exchange rejected."""
    return sum(1 for order in orders if order.status == OrderStatus.REJECTED)


def is_sellable(quantity: Decimal, price: Decimal | None, precision: MarketPrecision) -> bool:
    """True when ``quantity`` meets the market minimums (quantity; notional at ``price`` when known)."""
    if quantity <= ZERO or quantity < precision.step or quantity < precision.min_qty:
        return False
    return price is None or price <= ZERO or quantity * price >= precision.min_notional


def new_close_order(
    group: Group,
    *,
    order_id: str,
    purpose: OrderPurpose,
    quantity: Decimal,
    now: datetime,
    pyramid: int | None = None,
) -> Order:
    """A pending market order selling ``quantity`` of the group's position (not yet stored)."""
    return Order(
        id=order_id,
        group_id=group.id,
        exchange=group.exchange,
        symbol=group.symbol,
        purpose=purpose,
        side=closing_side(group.side),
        type=OrderType.MARKET,
        amount=quantity,
        price=None,
        client_order_id=client_order_id(order_id),
        pyramid=pyramid,
        created_at=now,
        updated_at=now,
    )


def request_cancels(stores: Stores, orders: Iterable[Order], now: datetime) -> list[str]:
    """Set ``cancel_requested`` on each live order not yet flagged; returns the ids it flagged.

    A save that loses to another writer (the executor recording a fill) re-reads the order and tries
    again while it is still live and unflagged.
    """
    return [order.id for order in orders if _request_cancel(stores, order, now)]


def _request_cancel(stores: Stores, order: Order, now: datetime) -> bool:
    current: Order | None = order

    def attempt() -> bool:
        if current is None or not current.is_live or current.cancel_requested:
            return False
        current.cancel_requested = True
        stores.orders.save(current, now=now)
        return True

    def reread(_stale: StaleWrite) -> None:
        nonlocal current
        current = stores.orders.get(order.id)

    return retry_on_stale(
        attempt,
        attempts=SAVE_ATTEMPTS,
        on_exhausted=lambda: CloseConflict(f"order {order.id} kept changing while requesting its cancel"),
        on_stale=reread,
    )
