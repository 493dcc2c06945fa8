"""Promoting ONE queued entry into the pool (shared by slot hand-over, queue sweep and operator promote).

:func:`promote` re-runs the pre-trade checks and the grid for the entry
(:func:`engine.app.intake.entries.evaluate_new_group`) and lets a *placer* persist the planned group:
:func:`hand_over_placer` (a closing group's slot, ``PoolStore.hand_over_slot``) or :func:`open_placer`
(a free slot, ``PoolStore.open_group``). An entry whose key still has an open group becomes a further
pyramid of it (``GroupStore.add_pyramid``; it needs no slot). Every promotion, rejection and expiry is
written to the signals audit under ``"<queue id>:promotion"`` (``"<queue id>:expiry"``) so the
original signal's own record (``queued``) stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from engine.app.context import EngineContext, Stores
from engine.app.intake import (
    EntryRefused,
    EntryRequest,
    PlannedGroup,
    evaluate_new_group,
    plan_pyramid,
)
from engine.domain.config import ConfigSnapshot
from engine.domain.counters import account_of
from engine.domain.models import Group, GroupStatus, QueueEntry
from engine.domain.models import Outcome as SignalOutcome
from engine.domain.queue import promotion_order
from engine.store import AlreadyExists, HandOverRefused, OpenResult, StaleWrite

__all__ = [
    "Outcome",
    "Placer",
    "PromotionResult",
    "hand_over_placer",
    "open_placer",
    "promote",
    "promotion_candidates",
    "record_queue_event",
]

ENTRY_INTENT = "entry"


class Outcome(StrEnum):
    """What happened to one candidate."""

    #: A new group was created in a slot.
    PROMOTED = "promoted"
    #: The entry became a further pyramid of its key's open group (no slot used).
    PYRAMIDED = "pyramided"
    #: The checks refused it: recorded rejected and removed from the queue.
    REJECTED = "rejected"
    #: The checks hold the queue (daily-loss breaker, pool full): it stays queued, stop trying.
    HELD = "held"
    #: It cannot be placed now (its key is taken by a group still closing): it stays queued.
    SKIPPED = "skipped"
    #: It is no longer queued (promoted or removed elsewhere).
    GONE = "gone"
    #: The slot to hand over is already gone (a replay): nothing was written.
    SLOT_GONE = "slot_gone"
    #: No free slot.
    POOL_FULL = "pool_full"


@dataclass(frozen=True)
class PromotionResult:
    """Outcome of one candidate, the group it opened or extended, and why."""

    outcome: Outcome
    group_id: str | None = None
    reason: str = ""


Placer = Callable[[PlannedGroup, QueueEntry], PromotionResult]


def promotion_candidates(
    stores: Stores, config: ConfigSnapshot, *, account: str | None = None
) -> list[QueueEntry]:
    """Every queued entry (of ``account`` when given), best first (``queue.rules`` with the stored prices)."""
    entries = stores.queue.list_all()
    if account is not None:
        entries = [entry for entry in entries if account_of(entry.exchange) == account]
    prices: dict[tuple[str, str], Decimal] = {}
    for exchange, symbol in {(entry.exchange, entry.symbol) for entry in entries}:
        price = stores.prices.get(exchange, symbol)
        if price is not None:
            prices[(exchange, symbol)] = price
    return promotion_order(entries, config.queue.rules, prices)


def record_queue_event(
    stores: Stores,
    entry: QueueEntry,
    outcome: SignalOutcome | str,
    reason: str,
    now: datetime,
    *,
    group_id: str | None = None,
) -> None:
    """Audit what happened to a queued entry (see the module docstring for the record id)."""
    suffix = "expiry" if outcome == "expired" else "promotion"
    stores.signals.record(
        signal_id=f"{entry.id}:{suffix}",
        received_at=now,
        intent=ENTRY_INTENT,
        outcome=outcome,
        key=entry.key,
        reason=reason,
        group_id=group_id,
        queue_id=entry.id,
        summary={"signal_id": entry.payload.get("signal_id"), "candle": entry.candle},
    )


def hand_over_placer(stores: Stores, old_group: Group, config: ConfigSnapshot | None = None) -> Placer:
    """A placer giving ``old_group``'s slot to the planned group (``config``: the exposure cap)."""
    account = account_of(old_group.exchange)
    cap = None if config is None else config.engine.for_account(account).max_total_exposure_usd

    def place(plan: PlannedGroup, entry: QueueEntry) -> PromotionResult:
        try:
            handed = stores.pool.hand_over_slot(
                old_group_id=old_group.id,
                old_key=old_group.key,
                new_group=plan.group,
                new_orders=plan.orders,
                queue_entry_id=entry.id,
                exposure_cap_usd=cap,
                now=plan.group.created_at,
            )
        except HandOverRefused as refused:
            return _refusal_result(refused.reason)
        if not handed:
            return PromotionResult(Outcome.SLOT_GONE, reason=f"slot of {old_group.id} already released")
        return PromotionResult(Outcome.PROMOTED, plan.group.id, f"slot of {old_group.id} handed over")

    return place


def open_placer(stores: Stores, config: ConfigSnapshot) -> Placer:
    """A placer taking a free slot for the planned group."""

    def place(plan: PlannedGroup, entry: QueueEntry) -> PromotionResult:
        result = stores.pool.open_group(
            plan.group,
            plan.orders,
            max_open=config.pool.max_open_for(account_of(plan.group.exchange)),
            queue_entry_id=entry.id,
            exposure_cap_usd=config.engine.for_account(
                account_of(plan.group.exchange)
            ).max_total_exposure_usd,
            now=plan.group.created_at,
        )
        if result is OpenResult.OPENED:
            return PromotionResult(Outcome.PROMOTED, plan.group.id, "promoted into a free slot")
        return _refusal_result(result)

    return place


def _refusal_result(reason: OpenResult) -> PromotionResult:
    if reason is OpenResult.POOL_FULL:
        return PromotionResult(Outcome.POOL_FULL, reason="pool full")
    if reason is OpenResult.KEY_TAKEN:
        return PromotionResult(Outcome.SKIPPED, reason="its key is still held by a closing group")
    if reason is OpenResult.EXPOSURE_FULL:
        return PromotionResult(Outcome.SKIPPED, reason="capital committed meanwhile; retried later")
    return PromotionResult(Outcome.GONE, reason="no longer queued")


def promote(
    ctx: EngineContext,
    entry: QueueEntry,
    config: ConfigSnapshot,
    now: datetime,
    *,
    slot_available: bool | None,
    place: Placer,
    raise_refusal: bool = False,
) -> PromotionResult:
    """Try to promote ``entry`` (module docstring). ``raise_refusal``: raise :class:`EntryRefused` for a
    refusal instead of recording it and removing the entry (the operator's promote)."""
    stores = ctx.stores
    req = EntryRequest.from_queue(entry)
    open_group = stores.groups.get_open_by_key(entry.key)
    if open_group is not None:
        return _promote_pyramid(ctx, entry, req, open_group, config, now, raise_refusal)
    decision = evaluate_new_group(ctx, req, config, now, slot_available=slot_available)
    if decision.action == "queue":
        return PromotionResult(Outcome.HELD, reason=decision.reason)
    if decision.action == "reject" or decision.plan is None:
        return _reject(stores, entry, decision.reason, now, raise_refusal)
    result = place(decision.plan, entry)
    if result.outcome is Outcome.PROMOTED:
        record_queue_event(stores, entry, SignalOutcome.OPENED, result.reason, now, group_id=result.group_id)
    return result


def _reject(
    stores: Stores, entry: QueueEntry, reason: str, now: datetime, raise_refusal: bool
) -> PromotionResult:
    if raise_refusal:
        raise EntryRefused(reason)
    if stores.queue.remove(entry.id):
        record_queue_event(stores, entry, SignalOutcome.REJECTED, reason, now)
    return PromotionResult(Outcome.REJECTED, reason=reason)


def _promote_pyramid(
    ctx: EngineContext,
    entry: QueueEntry,
    req: EntryRequest,
    group: Group,
    config: ConfigSnapshot,
    now: datetime,
    raise_refusal: bool,
) -> PromotionResult:
    stores = ctx.stores
    if group.status == GroupStatus.CLOSING:
        return PromotionResult(Outcome.SKIPPED, group.id, "its group is closing")
    if req.signal_id is not None and any(p.signal_id == req.signal_id for p in group.pyramids):
        stores.queue.remove(entry.id)  # added by an earlier attempt that stopped before removing it
        return PromotionResult(Outcome.PYRAMIDED, group.id, "already a pyramid of its group")
    if group.last_candle is not None and entry.candle <= group.last_candle:
        return _reject(
            stores, entry, "duplicate: its group already has a pyramid for this candle", now, raise_refusal
        )
    try:
        pyramid, orders = plan_pyramid(ctx, group, req, config, now)
    except EntryRefused as refused:
        return _reject(stores, entry, refused.reason, now, raise_refusal)
    if group.status == GroupStatus.ACTIVE:
        group.status = GroupStatus.PARTIALLY_FILLED
    try:
        stores.groups.add_pyramid(
            group,
            pyramid,
            orders,
            now=now,
            exposure_cap_usd=config.engine.for_account(account_of(group.exchange)).max_total_exposure_usd,
        )
    except (StaleWrite, AlreadyExists):  # incl. CounterConflict (the exposure cap)
        return PromotionResult(Outcome.SKIPPED, group.id, "its group changed meanwhile; retried later")
    stores.queue.remove(entry.id)
    record_queue_event(
        stores, entry, SignalOutcome.PYRAMIDED, f"pyramid {pyramid.index}", now, group_id=group.id
    )
    return PromotionResult(Outcome.PYRAMIDED, group.id, f"pyramid {pyramid.index}")
