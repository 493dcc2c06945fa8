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

from datetime import datetime

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.app.positions.pyramid_close import close_pyramid_orders
from engine.app.positions.refresh import refresh_group
from engine.app.shared.closing import (
    SAVE_ATTEMPTS,
    CloseConflict,
    encode_close_reason,
    is_close_order,
    request_cancels,
)
from engine.app.shared.errors import InvalidState, NotFound
from engine.app.shared.markets import load_precision
from engine.config import load_config
from engine.domain.accounting import CLOSING_PURPOSES
from engine.domain.config import ConfigSnapshot
from engine.domain.models import GroupStatus, OrderPurpose
from engine.store import StaleWrite

__all__ = ["close_pyramid", "request_close"]

logger = Logger(child=True)


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
    group = stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"group {group_id} not found")
    if not any(p.index == pyramid for p in group.pyramids):
        raise NotFound(f"group {group_id} has no pyramid {pyramid}")
    if not group.is_open or group.status == GroupStatus.CLOSING:
        raise InvalidState(f"group {group_id} is {group.status.value}")
    precision = load_precision(stores, group, config or load_config())
    orders = stores.orders.list_for_group(group_id)
    return close_pyramid_orders(stores, group, orders, pyramid, precision, now) is not None
