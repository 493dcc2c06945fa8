"""The risk engine's view of the open groups: one :class:`RiskCandidate` per group, and its timer.

Figures come from the stored group (``positions.refresh_group`` keeps them current on every real
change), marked at the stored price (:mod:`engine.app.shared.marks`: price ticks are not saved); the
DCA progress (pyramids filled, every leg submitted / filled) from the group's entry orders; precision
from ``entries.market_precision``. A group without a known precision cannot be sized and is left out
(logged).

Timer observations (DESIGN §3.8) made here, on top of ``engine.domain.risk.next_timer``:

- *new pyramid*: a pyramid created after the running timer started resets it;
- *replacement*: a queued pyramid continuation for the group's key replaced after the running timer
  started resets it when ``risk.reset_timer_on_replacement``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.app.shared.markets import market_precision
from engine.app.shared.marks import marked
from engine.app.shared.retry import retry_on_stale
from engine.domain.accounting import base_currency_of, compute_figures
from engine.domain.config import ConfigSnapshot, RiskConfig
from engine.domain.models import Group, Order, QueueEntry
from engine.domain.risk import RiskCandidate, dca_progress, observed_timer
from engine.store import StaleWrite

logger = Logger(child=True)

#: Attempts at saving a timer change when another writer keeps winning.
SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class GroupSnapshot:
    """An open group with its orders and its risk candidate (None when its precision is unknown)."""

    group: Group
    orders: list[Order]
    candidate: RiskCandidate | None


def build_snapshots(stores: Stores, config: ConfigSnapshot) -> list[GroupSnapshot]:
    """Every open group (oldest first) with its orders and risk candidate."""
    snapshots: list[GroupSnapshot] = []
    for group in sorted(stores.groups.list_open(), key=lambda g: (g.created_at, g.id)):
        snapshots.append(snapshot_of(stores, group, config))
    return snapshots


def snapshot_of(stores: Stores, group: Group, config: ConfigSnapshot) -> GroupSnapshot:
    """One group's snapshot (orders read from the store, the group marked at the stored price)."""
    group = marked(stores, group)
    orders = stores.orders.list_for_group(group.id)
    precision = market_precision(stores, group.exchange, group.symbol, config)
    if precision is None:
        logger.warning(
            "risk: group left out, no market precision",
            group_id=group.id,
            exchange=group.exchange,
            symbol=group.symbol,
        )
        return GroupSnapshot(group, orders, None)
    filled, submitted, all_filled = dca_progress(group, orders)
    candidate = RiskCandidate(
        group=group,
        precision=precision,
        pyramids_filled=filled,
        all_dca_submitted=submitted,
        all_dca_filled=all_filled,
    )
    return GroupSnapshot(group, orders, candidate)


def fresh_snapshot(stores: Stores, group_id: str, config: ConfigSnapshot) -> GroupSnapshot | None:
    """The group as it is now, its figures recomputed from its orders at the latest stored price (the
    re-check at the moment of acting, DESIGN §3.8); None when the group is gone."""
    group = stores.groups.get(group_id)
    if group is None:
        return None
    orders = stores.orders.list_for_group(group_id)
    price = stores.prices.get(group.exchange, group.symbol)
    group.figures = compute_figures(
        orders,
        side=group.side,
        base_currency=base_currency_of(group.symbol),
        price=price if price is not None else group.figures.last_price,
        total_legs=sum(pyramid.leg_count for pyramid in group.pyramids),
    )
    snapshot = snapshot_of(stores, group, config)
    return GroupSnapshot(group, orders, snapshot.candidate)


def update_timers(
    stores: Stores, snapshots: list[GroupSnapshot], cfg: RiskConfig, now: datetime
) -> tuple[list[str], list[str]]:
    """Apply :func:`observed_timer` to every candidate and save the changed groups.

    Returns ``(started, reset)`` group ids. ``snapshots`` are updated in place with the saved groups.
    A save that loses to another writer re-reads the group and observes again (a few times).
    """
    queued = stores.queue.list_all()
    started: list[str] = []
    reset: list[str] = []
    for position, snapshot in enumerate(snapshots):
        if snapshot.candidate is None:
            continue
        candidate, change = _observe(stores, snapshot.candidate, cfg, now, queued)
        if change is not None:
            (started if change else reset).append(candidate.group.id)
        snapshots[position] = GroupSnapshot(candidate.group, snapshot.orders, candidate)
    return started, reset


def _observe(
    stores: Stores, candidate: RiskCandidate, cfg: RiskConfig, now: datetime, queued: list[QueueEntry]
) -> tuple[RiskCandidate, bool | None]:
    """Observe one candidate's timer and save a change: the candidate as last read or saved, and True
    (started) / False (reset) / None (nothing saved: no change, group gone or closed, or conflicts)."""
    current = candidate
    gone = False

    def attempt() -> bool | None:
        nonlocal current
        if gone:
            return None
        before = current.group.risk_timer_started_at
        after = observed_timer(current, cfg, now, queued)
        if after == before:
            return None
        group = dataclasses.replace(current.group, risk_timer_started_at=after)
        stores.groups.save(group, now=now)
        current = dataclasses.replace(current, group=group)
        return after is not None

    def reread(_stale: StaleWrite) -> None:
        nonlocal current, gone
        fresh = stores.groups.get(current.group.id)
        if fresh is None or not fresh.is_open:
            gone = True
        else:
            current = dataclasses.replace(current, group=fresh)

    change = retry_on_stale(attempt, attempts=SAVE_ATTEMPTS, on_stale=reread)
    return current, change
