"""The risk engine's view of the open groups: one :class:`RiskCandidate` per group, and its timer.

Figures come from the stored group (``positions.refresh_group`` keeps them current on every fill and
every order-sync tick); the DCA progress (pyramids filled, every leg submitted / filled) from the
group's entry orders; precision from ``entries.market_precision``. A group without a known precision
cannot be sized and is left out (logged).

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
from engine.domain.config import ConfigSnapshot, RiskConfig
from engine.domain.models import Group, Order
from engine.domain.risk import RiskCandidate
from engine.domain.risk_timer import dca_progress, observed_timer
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
    """One group's snapshot (orders read from the store)."""
    orders = stores.orders.list_for_group(group.id)
    precision = market_precision(stores, group.exchange, group.symbol, config)
    if precision is None:
        logger.warning(
            f"risk: group {group.id} left out, no market precision for {group.exchange} {group.symbol}",
            group_id=group.id,
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
        candidate = snapshot.candidate
        for _ in range(SAVE_ATTEMPTS):
            before = candidate.group.risk_timer_started_at
            after = observed_timer(candidate, cfg, now, queued)
            if after == before:
                break
            group = dataclasses.replace(candidate.group, risk_timer_started_at=after)
            try:
                stores.groups.save(group)
            except StaleWrite:
                fresh = stores.groups.get(group.id)
                if fresh is None or not fresh.is_open:
                    break
                candidate = dataclasses.replace(candidate, group=fresh)
                continue
            candidate = dataclasses.replace(candidate, group=group)
            (started if after is not None else reset).append(group.id)
            break
        snapshots[position] = GroupSnapshot(candidate.group, snapshot.orders, candidate)
    return started, reset
