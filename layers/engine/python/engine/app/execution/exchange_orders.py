"""Recording what an exchange says about an order onto the stored order (shared by executor and sync).

Status mapping (ccxt's ``status`` plus the fill): ``canceled``/``cancelled``/``expired`` -> cancelled,
``rejected`` -> rejected, ``closed`` -> filled, otherwise (``open``) filled / partially_filled / open by
how much has filled. The exchange's own value is kept in ``exchange_status``.

Guards: a fill never goes backwards (a stale answer reporting less than we already recorded leaves the
fill figures alone), and an order that is final *on the exchange* (we hold its exchange id) never goes
back to a live state. An order we cancelled locally before it was ever sent (no exchange id) does take
the exchange's word: if a create we had lost track of landed after all, the order becomes live again
with ``cancel_requested`` still set, so the executor then cancels it on the exchange.

Fill ledger (DESIGN §3.5): each observed increase of ``filled`` appends one
:class:`~engine.domain.models.Fill` (:func:`engine.domain.accounting.derive_fill`: the increment's
quantity, its price from the change of the cost, its fee and time) and ``fee_usd`` becomes the ledger's
total. A fee in a third coin (BNB) is converted at that coin's ``<COIN>/USDT`` price, looked up by the
caller's :class:`~engine.app.execution.fees.FeePricing` when the fill is recorded. The same exchange
answer applied again (a replayed read) does not grow ``filled``, so it adds no second entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from engine.app.context import Stores
from engine.app.execution.fees import FeePricing
from engine.app.shared.retry import retry_on_stale
from engine.domain.accounting import base_currency_of, derive_fill, with_fill
from engine.domain.models import (
    FINAL_ORDER_STATUSES,
    ExchangeOrder,
    Order,
    OrderStatus,
    OrderWait,
)
from engine.store import StaleWrite

__all__ = [
    "CANCEL_PENDING_PREFIX",
    "MAX_SAVE_ATTEMPTS",
    "NOT_SENT_PREFIX",
    "REDRIVE_REASON",
    "apply_exchange_order",
    "save_change",
    "status_from_exchange",
    "wait_reason",
]

#: Optimistic-locking attempts before a conflicting save gives up (raises ``StaleWrite``).
MAX_SAVE_ATTEMPTS = 5

_CANCELLED = frozenset({"canceled", "cancelled", "expired"})

#: Texts of the reasons that go with an :class:`~engine.domain.models.OrderWait` (``Order.wait`` decides;
#: the reason and its wait are cleared together as soon as the exchange answers about the order).
NOT_SENT_PREFIX = "not sent yet"
CANCEL_PENDING_PREFIX = "cancel not confirmed yet"
REDRIVE_REASON = "re-driven by order_sync after no progress"


def wait_reason(wait: OrderWait, label: str) -> str:
    """The readable reason of a retried send or cancel: ``"<what>: <label>; will retry"``."""
    what = CANCEL_PENDING_PREFIX if wait is OrderWait.CANCEL_PENDING else NOT_SENT_PREFIX
    return f"{what}: {label}; will retry"


def status_from_exchange(ex: ExchangeOrder) -> OrderStatus:
    """Our status for an order as the exchange reports it (see the module docstring)."""
    raw = ex.status.lower()
    if raw in _CANCELLED:
        return OrderStatus.CANCELLED
    if raw == "rejected":
        return OrderStatus.REJECTED
    if raw == "closed" or (ex.filled > 0 and ex.filled >= ex.amount):
        return OrderStatus.FILLED
    if ex.filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.OPEN


def apply_exchange_order(
    order: Order, ex: ExchangeOrder, now: datetime, *, fees: FeePricing | None = None
) -> bool:
    """Copy the exchange's view of ``ex`` onto ``order`` in place; True when anything changed.

    A growth of ``filled`` is also appended to the order's fill ledger (module docstring); ``fees``
    prices a third-coin fee (without it such a fee keeps ``fee_usd`` unknown).
    """
    before = dataclasses.replace(order)
    status = status_from_exchange(ex)
    known_final = order.status in FINAL_ORDER_STATUSES and order.exchange_order_id is not None
    if order.wait is not None:
        order.reason = order.wait = None  # the exchange answered: the wait is over
    if not (known_final and status not in FINAL_ORDER_STATUSES):
        if order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN) and status is not OrderStatus.REJECTED:
            order.reason = None  # "outcome unknown" / "resent" no longer applies
        if status is OrderStatus.REJECTED and order.status is not OrderStatus.REJECTED:
            order.reason = order.reason or f"rejected by the exchange ({ex.status})"
        order.status = status
    if ex.filled >= order.filled:
        if ex.filled > order.filled:
            _record_fill(order, ex, now, fees or FeePricing())
            order.last_fill_at = ex.last_trade_at or now
        elif ex.last_trade_at is not None and ex.filled > 0:
            order.last_fill_at = ex.last_trade_at
        order.filled = ex.filled
        order.average = ex.average
        order.cost = ex.cost
        order.fee_cost = ex.fee_cost
        order.fee_currency = ex.fee_currency or order.fee_currency
    order.exchange_order_id = ex.id or order.exchange_order_id
    order.exchange_status = ex.status
    return order != before


def _record_fill(order: Order, ex: ExchangeOrder, now: datetime, fees: FeePricing) -> None:
    """Append the ledger entry for the growth of ``filled`` that ``ex`` reports (before it is copied)."""
    currency = ex.fee_currency or order.fee_currency
    fill = derive_fill(
        order,
        filled=ex.filled,
        average=ex.average,
        fee_cost=ex.fee_cost,
        fee_currency=currency,
        at=ex.last_trade_at or now,
        cost=ex.cost,
        usd_quotes=fees.usd_quotes,
        coin_price_usd=fees.coin_price_usd(currency, base_currency_of(order.symbol)) if ex.fee_cost else None,
    )
    if fill is not None:
        recorded = with_fill(order, fill)
        order.fills, order.fee_usd = recorded.fills, recorded.fee_usd


def save_change(stores: Stores, order: Order, change: Callable[[Order], bool], now: datetime) -> Order:
    """Apply ``change`` to a copy of ``order`` and save it (stamped ``now``); on a conflict re-read and
    apply again.

    ``change`` edits the order in place and returns False when there is nothing to write. Returns the
    order as stored afterwards. Use it for outcomes that hold whatever else changed meanwhile (what the
    exchange said); decisions that depend on the current state must be re-decided instead.
    """
    current = order

    def attempt() -> Order:
        updated = dataclasses.replace(current)
        if not change(updated):
            return current
        stores.orders.save(updated, now=now)
        return updated

    def reread(stale: StaleWrite) -> None:
        nonlocal current
        fresh = stores.orders.get(order.id)
        if fresh is None:
            raise stale
        current = fresh

    return retry_on_stale(
        attempt,
        attempts=MAX_SAVE_ATTEMPTS,
        on_exhausted=lambda: StaleWrite(f"order {order.id}: {MAX_SAVE_ATTEMPTS} conflicting saves in a row"),
        on_stale=reread,
    )
