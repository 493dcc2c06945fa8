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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger

from engine.domain.accounting import is_fully_filled
from engine.domain.config import ConfigSnapshot, RiskConfig
from engine.domain.models import Group, Order, OrderPurpose, OrderStatus, QueueEntry
from engine.domain.risk import RiskCandidate, next_timer
from engine.services.context import Stores
from engine.services.entries import market_precision
from engine.store import StaleWrite

logger = Logger(child=True)

#: Entry-leg statuses that mean the exchange accepted the order.
SUBMITTED_STATUSES = frozenset(
    {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
)
#: Attempts at saving a timer change when another writer keeps winning.
SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class GroupSnapshot:
    """An open group with its orders and its risk candidate (None when its precision is unknown)."""

    group: Group
    orders: list[Order]
    candidate: RiskCandidate | None


def dca_progress(group: Group, orders: Sequence[Order]) -> tuple[int, bool, bool]:
    """``(pyramids_filled, all_dca_submitted, all_dca_filled)`` from the group's entry orders.

    A pyramid is filled when it has entry legs and every one of them is fully filled. "All submitted"
    means every leg of every pyramid exists and was accepted by the exchange (open, partially filled,
    filled, or cancelled after that); "all filled" that every one is fully filled.
    """
    entries = [order for order in orders if order.purpose == OrderPurpose.ENTRY]
    pyramids_filled = 0
    for pyramid in group.pyramids:
        legs = [order for order in entries if order.pyramid == pyramid.index]
        if legs and all(is_fully_filled(leg) for leg in legs):
            pyramids_filled += 1
    expected_legs = sum(pyramid.leg_count for pyramid in group.pyramids)
    complete = bool(entries) and len(entries) >= expected_legs
    all_submitted = complete and all(order.status in SUBMITTED_STATUSES for order in entries)
    all_filled = complete and all(is_fully_filled(order) for order in entries)
    return pyramids_filled, all_submitted, all_filled


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


def _new_pyramid_since(group: Group, started: datetime | None) -> bool:
    return started is not None and any(p.created_at > started for p in group.pyramids[1:])


def _replaced_since(group: Group, started: datetime | None, queued: Sequence[QueueEntry]) -> bool:
    if started is None:
        return False
    return any(
        entry.key == group.key and entry.replacement_count > 0 and entry.updated_at > started
        for entry in queued
    )


def observed_timer(
    candidate: RiskCandidate, cfg: RiskConfig, now: datetime, queued: Sequence[QueueEntry]
) -> datetime | None:
    """The group's timer start after this observation (see the module docstring)."""
    group = candidate.group
    started = group.risk_timer_started_at
    return next_timer(
        candidate,
        cfg,
        now,
        new_pyramid=_new_pyramid_since(group, started),
        replacement=_replaced_since(group, started, queued),
    )


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
