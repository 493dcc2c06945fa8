"""A group's DCA progress and its risk timer as observed now (DESIGN §3.8), on top of
:func:`engine.domain.risk.next_timer`:

- *new pyramid*: a pyramid created after the running timer started resets it;
- *replacement*: a queued pyramid continuation for the group's key replaced after the running timer
  started resets it when ``risk.reset_timer_on_replacement``.

Pure: the risk engine and position refreshes both call it with what they read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engine.domain.accounting import is_fully_filled
from engine.domain.config import RiskConfig
from engine.domain.models import Group, Order, OrderPurpose, OrderStatus, QueueEntry
from engine.domain.risk import RiskCandidate, next_timer

__all__ = ["SUBMITTED_STATUSES", "dca_progress", "observed_timer"]

#: Entry-leg statuses that mean the exchange accepted the order.
SUBMITTED_STATUSES = frozenset(
    {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
)


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
