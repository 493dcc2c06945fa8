"""Closing a group (exit signal, aggregate take-profit, risk close, operator) and closing one pyramid.

Closing is intent, like everything else (DESIGN §1): this module writes state and never talks to the
exchange.

- :func:`request_close` moves an open group to ``closing``, records why on the group and sets
  ``cancel_requested`` on every live order of the group (entry legs and TPs) — ``order_executor``
  cancels them. ``position_update`` (:func:`engine.app.positions.refresh.refresh_group`) then converges:
  once no order of the group is live other than a close order, it places ONE market close order for
  the held quantity; when that fills the group is ``closed``.
- :func:`close_pyramid` is the ``pyramid_aggregate`` take-profit of one pyramid: that pyramid's live
  orders get ``cancel_requested`` and a market ``tp`` order sells what the pyramid holds.

Decisions:

- **Close reason on the group.** :class:`~engine.domain.models.Group` records why as a code,
  ``close_reason`` (:class:`~engine.domain.models.CloseReason`, DESIGN §3.5), with the human text in
  ``close_note``. The market close order's purpose follows from the code
  (:func:`~engine.domain.models.close_purpose`: ``take_profit`` -> ``tp``, ``risk`` -> ``risk_close``,
  anything else -> ``exit``).
- **Close orders** are market orders with a closing purpose (``tp``/``exit``/``risk_close``). They
  are never cancel-requested by a close (they fill at once) and a group waits for them.
- **Deterministic ids**: the group's n-th close order is ``"<group id>-close-<n>"``, a pyramid's
  ``"<group id>-p<pyramid>-close-<n>"`` (n from 1); written with ``put_new``, so a replay that
  computes the same id writes nothing.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.app.positions.pyramid_close import close_pyramid_orders
from engine.app.positions.refresh import refresh_group
from engine.app.shared.closing import (
    SAVE_ATTEMPTS,
    CloseConflict,
    is_close_order,
    request_cancels,
)
from engine.app.shared.errors import InvalidState, NotFound
from engine.app.shared.markets import load_precision
from engine.app.shared.retry import retry_on_stale
from engine.domain.config import ConfigSnapshot
from engine.domain.models import CloseReason, GroupStatus

__all__ = ["close_pyramid", "request_close"]

logger = Logger(child=True)


def request_close(
    ctx: EngineContext,
    group_id: str,
    *,
    reason: CloseReason,
    note: str | None = None,
    now: datetime,
    config: ConfigSnapshot | None = None,
) -> bool:
    """Start closing an open group; False (nothing changed) when it is already closing or terminal.

    The group becomes ``closing`` with ``close_reason`` = ``reason`` and ``close_note`` = ``note`` (saved
    first, with optimistic locking), then every live order that is not itself a close order gets
    ``cancel_requested``. When nothing had to be cancelled no order changes, so no orders-stream record
    would wake ``position_update``: the group is refreshed here at once (placing the market close).
    Raises :class:`NotFound` for an unknown group. ``config``: the snapshot the caller holds (read from
    ``ctx.config`` when omitted and needed).
    """
    reason = CloseReason(reason)
    if reason is CloseReason.FAILED:
        raise ValueError("a close cannot be requested with reason 'failed'")
    stores = ctx.stores

    def attempt() -> bool:
        group = stores.groups.get(group_id)
        if group is None:
            raise NotFound(f"group {group_id} not found")
        if not group.is_open or group.status == GroupStatus.CLOSING:
            return False
        group.status = GroupStatus.CLOSING
        group.close_reason = reason
        group.close_note = note
        stores.groups.save(group, now=now)
        return True

    started = retry_on_stale(
        attempt,
        attempts=SAVE_ATTEMPTS,
        on_exhausted=lambda: CloseConflict(f"group {group_id} kept changing while requesting its close"),
    )
    if not started:
        return False
    orders = stores.orders.list_for_group(group_id)
    flagged = request_cancels(stores, [order for order in orders if not is_close_order(order)], now)
    if not flagged:
        refresh_group(ctx, group_id, now, config=config)
    return True


def close_pyramid(
    ctx: EngineContext,
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
    stores = ctx.stores
    group = stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"group {group_id} not found")
    if not any(p.index == pyramid for p in group.pyramids):
        raise NotFound(f"group {group_id} has no pyramid {pyramid}")
    if not group.is_open or group.status == GroupStatus.CLOSING:
        raise InvalidState(f"group {group_id} is {group.status.value}")
    precision = load_precision(stores, group, config if config is not None else ctx.config.snapshot())
    orders = stores.orders.list_for_group(group_id)
    return close_pyramid_orders(stores, group, orders, pyramid, precision, now) is not None
