"""Orders the risk engine writes for a winner: its partial market close and its re-sized take-profits.

Write order matters on spot exchanges, where an open sell reserves the coins it may sell: the TPs to
shrink are cancel-requested first, then the close order is written, then the smaller replacement TPs
(``order_executor`` sees the orders stream in that order). A replacement under the market minimums
(quantity or notional) is not placed; the cancelled TP is then simply gone (DESIGN §3.8: a winner's TPs
never exceed its remaining quantity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.app.context import Stores
from engine.app.risk.candidates import GroupSnapshot
from engine.app.shared.closing import new_close_order
from engine.app.shared.retry import retry_on_stale
from engine.domain.models import (
    ZERO,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderStatus,
)
from engine.domain.risk import WinnerClose
from engine.domain.takeprofit import resize_tps
from engine.exchange.client_ids import client_order_id

SAVE_ATTEMPTS = 3


def winner_close_in_flight(orders: Sequence[Order]) -> bool:
    """True when the group has a live risk close (its figures do not yet reflect that close)."""
    return any(order.purpose == OrderPurpose.RISK_CLOSE and order.is_live for order in orders)


def winner_close_order_id(group_id: str, action_id: str) -> str:
    """Deterministic id of a winner's risk close for one action."""
    return f"{group_id}-risk-{action_id}"


def _request_cancel(stores: Stores, order_id: str, now: datetime) -> Order | None:
    """Set ``cancel_requested`` on a live order; the order as saved, or None if no longer live (or it
    kept changing: the run gives up on it)."""

    def attempt() -> Order | None:
        order = stores.orders.get(order_id)
        if order is None or not order.is_live:
            return None
        if order.cancel_requested:
            return order
        order.cancel_requested = True
        stores.orders.save(order, now=now)
        return order

    return retry_on_stale(attempt, attempts=SAVE_ATTEMPTS)


def _replacement_tp(tp: Order, keep: Decimal, action_id: str, now: datetime) -> Order:
    new_id = f"{tp.id}-rs-{action_id}"
    return dataclasses.replace(
        tp,
        id=new_id,
        client_order_id=client_order_id(new_id),
        amount=keep,
        status=OrderStatus.PENDING,
        filled=ZERO,
        average=None,
        cost=ZERO,
        fee_cost=ZERO,
        fee_currency=None,
        fills=[],
        fee_usd=None,
        exchange_order_id=None,
        exchange_status=None,
        reason=None,
        cancel_requested=False,
        created_at=now,
        updated_at=now,
        last_fill_at=None,
        version=0,
    )


def _above_minimums(qty: Decimal, price: Decimal | None, precision: MarketPrecision) -> bool:
    if qty <= ZERO or qty < precision.min_qty:
        return False
    return price is None or qty * price >= precision.min_notional


def place_winner_close(
    stores: Stores,
    snapshot: GroupSnapshot,
    precision: MarketPrecision,
    close: WinnerClose,
    action_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Cancel-request the winner's TPs that must shrink, write its market close, then the replacements.

    Idempotent per ``action_id``: ids are deterministic and written with ``put_new``. Returns what was
    done, for the action record.
    """
    group = snapshot.group
    remaining = group.figures.quantity - close.qty
    tps = [order for order in snapshot.orders if order.purpose == OrderPurpose.TP and order.price is not None]
    replacements: list[Order] = []
    resized: list[dict[str, Any]] = []
    for tp, keep in resize_tps(tps, remaining, precision.step):
        if _request_cancel(stores, tp.id, now) is None:
            continue
        replacement = None
        if _above_minimums(keep, tp.price, precision):
            replacement = _replacement_tp(tp, keep, action_id, now)
            replacements.append(replacement)
        resized.append(
            {
                "order_id": tp.id,
                "open_qty": tp.remaining,
                "kept_qty": keep if replacement is not None else ZERO,
                "replacement_id": replacement.id if replacement is not None else None,
            }
        )
    order_id = winner_close_order_id(group.id, action_id)
    order = new_close_order(
        group, order_id=order_id, purpose=OrderPurpose.RISK_CLOSE, quantity=close.qty, now=now
    )
    # Not while the group is closing (a protection or exit took it over: one close, nothing sold twice).
    outcome = stores.orders.put_new_unless_closing(order)
    placed = outcome is True
    if outcome is not None:
        for replacement in replacements:
            stores.orders.put_new(replacement)
    return {
        "group_id": group.id,
        "symbol": group.symbol,
        "qty": close.qty,
        "price": close.price,
        "avg_entry": close.avg_entry,
        "realized_usd": close.realized_usd,
        "fee_usd": close.fee_usd,
        "order_id": order_id,
        "placed": placed,
        "refused": "the group is closing" if outcome is None else None,
        "tps_resized": resized,
    }
