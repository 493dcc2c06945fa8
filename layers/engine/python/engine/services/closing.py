"""Closing a group (exit signal, aggregate take-profit, risk close, operator) and closing one pyramid.

Closing is intent, like everything else (DESIGN §1): this module writes state and never talks to the
exchange.

- :func:`request_close` moves an open group to ``closing``, records why on the group and sets
  ``cancel_requested`` on every live order of the group (entry legs and TPs) — ``order_executor``
  cancels them. ``position_update`` (:func:`engine.services.positions.refresh_group`) then converges:
  once no order of the group is live other than a close order, it places ONE market close order for
  the held quantity; when that fills the group is ``closed``.
- :func:`close_pyramid` is the ``pyramid_aggregate`` take-profit of one pyramid: that pyramid's live
  orders get ``cancel_requested`` and a market ``tp`` order sells what the pyramid holds.

Decisions:

- **Close reason on the group.** :class:`~engine.domain.models.Group` has one text field,
  ``close_reason``; it holds ``"<purpose>: <reason>"`` (e.g. ``"exit: exit signal"``,
  ``"tp: aggregate take-profit"``, ``"risk_close: risk engine loser"``). :func:`close_purpose_of`
  reads the purpose back; the market close order carries it.
- **Close orders** are market orders with a closing purpose (``tp``/``exit``/``risk_close``). They
  are never cancel-requested by a close (they fill at once) and a group waits for them.
- **Deterministic ids**: the group's n-th close order is ``"<group id>-close-<n>"``, a pyramid's
  ``"<group id>-p<pyramid>-close-<n>"`` (n from 1); written with ``put_new``, so a replay that
  computes the same id writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from engine.domain.accounting import CLOSING_PURPOSES, base_currency_of, held_by_pyramid
from engine.domain.config import ConfigSnapshot
from engine.domain.models import (
    ZERO,
    Group,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Side,
)
from engine.domain.money import round_down
from engine.exchange.client_ids import client_order_id
from engine.services.context import Stores
from engine.services.errors import InvalidState, NotFound
from engine.store import StaleWrite

__all__ = [
    "MAX_REFUSALS",
    "SAVE_ATTEMPTS",
    "close_order_id",
    "close_purpose_of",
    "close_pyramid",
    "close_pyramid_orders",
    "closing_side",
    "encode_close_reason",
    "is_close_order",
    "is_sellable",
    "new_close_order",
    "refusals",
    "request_cancels",
    "request_close",
]

logger = Logger(child=True)

#: Attempts at an optimistic write that keeps losing to other writers before giving up.
SAVE_ATTEMPTS = 3
#: An order the exchange refused this many times (a TP of one leg, a close) is not placed again: the
#: refusal is final (e.g. a price filter, insufficient funds) and resending would loop forever. The
#: rejected orders keep their reasons; the operator decides (e.g. closes the group by hand).
MAX_REFUSALS = 3
_SEPARATOR = ": "


class CloseConflict(StaleWrite):
    """A group kept changing under us for :data:`SAVE_ATTEMPTS` attempts (the caller retries later)."""


def encode_close_reason(purpose: OrderPurpose, reason: str) -> str:
    """The ``close_reason`` stored on the group: ``"<purpose>: <reason>"``."""
    return f"{OrderPurpose(purpose).value}{_SEPARATOR}{reason}"


def close_purpose_of(group: Group) -> OrderPurpose:
    """Purpose of the group's close order, read from ``close_reason`` (``exit`` when not recorded)."""
    prefix = (group.close_reason or "").split(_SEPARATOR, 1)[0]
    try:
        purpose = OrderPurpose(prefix)
    except ValueError:
        return OrderPurpose.EXIT
    return purpose if purpose in CLOSING_PURPOSES else OrderPurpose.EXIT


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


def request_cancels(stores: Stores, orders: Iterable[Order]) -> list[str]:
    """Set ``cancel_requested`` on each live order not yet flagged; returns the ids it flagged.

    A save that loses to another writer (the executor recording a fill) re-reads the order and tries
    again while it is still live and unflagged.
    """
    flagged: list[str] = []
    for order in orders:
        current: Order | None = order
        for _ in range(SAVE_ATTEMPTS):
            if current is None or not current.is_live or current.cancel_requested:
                break
            current.cancel_requested = True
            try:
                stores.orders.save(current)
            except StaleWrite:
                current = stores.orders.get(order.id)
                continue
            flagged.append(current.id)
            break
        else:
            raise CloseConflict(f"order {order.id} kept changing while requesting its cancel")
    return flagged


def request_close(
    stores: Stores,
    group_id: str,
    *,
    purpose: OrderPurpose,
    reason: str,
    now: datetime,
    config: ConfigSnapshot | None = None,
) -> bool:
    """Start closing an open group; False (nothing changed) when it is already closing or terminal.

    The group becomes ``closing`` with ``close_reason`` ``"<purpose>: <reason>"`` (saved first, with
    optimistic locking), then every live order that is not itself a close order gets
    ``cancel_requested``. When nothing had to be cancelled no order changes, so no orders-stream record
    would wake ``position_update``: the group is refreshed here at once (placing the market close).
    Raises :class:`NotFound` for an unknown group.
    """
    if OrderPurpose(purpose) not in CLOSING_PURPOSES:
        raise ValueError(f"a close needs a closing purpose, not {purpose}")
    for _ in range(SAVE_ATTEMPTS):
        group = stores.groups.get(group_id)
        if group is None:
            raise NotFound(f"group {group_id} not found")
        if not group.is_open or group.status == GroupStatus.CLOSING:
            return False
        group.status = GroupStatus.CLOSING
        group.close_reason = encode_close_reason(purpose, reason)
        try:
            stores.groups.save(group)
        except StaleWrite:
            continue
        break
    else:
        raise CloseConflict(f"group {group_id} kept changing while requesting its close")
    orders = stores.orders.list_for_group(group_id)
    flagged = request_cancels(stores, [order for order in orders if not is_close_order(order)])
    if not flagged:
        from engine.services.positions import refresh_group  # positions builds on this module

        refresh_group(stores, group_id, now, config=config)
    return True


def close_pyramid(
    stores: Stores,
    group_id: str,
    pyramid: int,
    now: datetime,
    *,
    config: ConfigSnapshot | None = None,
) -> bool:
    """Close one pyramid of an open group now (see :func:`close_pyramid_orders`); True if a close was placed.

    Raises :class:`NotFound` for an unknown group or pyramid and :class:`InvalidState` when the group
    is not open or its market precision is unknown.
    """
    from engine.services.positions import load_precision  # positions builds on this module

    group = stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"group {group_id} not found")
    if not any(p.index == pyramid for p in group.pyramids):
        raise NotFound(f"group {group_id} has no pyramid {pyramid}")
    if not group.is_open or group.status == GroupStatus.CLOSING:
        raise InvalidState(f"group {group_id} is {group.status.value}")
    precision = load_precision(stores, group, config)
    orders = stores.orders.list_for_group(group_id)
    return close_pyramid_orders(stores, group, orders, pyramid, precision, now) is not None


def close_pyramid_orders(
    stores: Stores,
    group: Group,
    orders: Sequence[Order],
    pyramid: int,
    precision: MarketPrecision,
    now: datetime,
) -> Order | None:
    """Close one pyramid (``pyramid_aggregate``): cancel its live orders, market-sell what it holds.

    Live orders of the pyramid (its resting entry legs) get ``cancel_requested``; a market ``tp`` order
    ``"<group>-p<pyramid>-close-<n>"`` sells the pyramid's held quantity rounded down to the step (its
    entry buys do not lock the coin being sold, so the sale does not wait for the cancels). Returns the
    new order, or None when there is nothing sellable or a close of this pyramid is already live.
    """
    own = [order for order in orders if order.pyramid == pyramid]
    request_cancels(stores, [order for order in own if not is_close_order(order)])
    if any(is_close_order(order) and order.is_live for order in own):
        return None
    prefix = f"{group.id}-p{pyramid}-close-"
    if refusals(o for o in own if o.id.startswith(prefix)) >= MAX_REFUSALS:
        logger.error(f"pyramid {pyramid} of group {group.id}: close refused {MAX_REFUSALS} times, not resent")
        return None
    held = held_by_pyramid(orders, group.side, base_currency_of(group.symbol)).get(pyramid, ZERO)
    quantity = round_down(held, precision.step) if held > ZERO else ZERO
    if not is_sellable(quantity, group.figures.last_price, precision):
        return None
    order = new_close_order(
        group,
        order_id=close_order_id(group.id, orders, pyramid),
        purpose=OrderPurpose.TP,
        quantity=quantity,
        now=now,
        pyramid=pyramid,
    )
    return order if stores.orders.put_new(order) else None
