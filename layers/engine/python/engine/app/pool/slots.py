"""The execution pool's slots and the queue (DESIGN §3.6): release, hand-over, sweep, operator promote.

- :func:`on_group_change` (slot_release, groups stream): on an open → closed/failed transition the
  group's slot goes to the best queued signal (``PoolStore.hand_over_slot``, counter untouched) or,
  when none can take it (or the pool has shrunk below its count), is released.
- :func:`sweep_queue` (order_sync's safety net): expire old entries, then promote into free slots.
- :func:`promote_entry` (operator): promote one entry now.

Promotion of one entry (:mod:`engine.app.pool.promotion`) re-runs the pre-trade checks and the grid
(``engine.app.intake.entries``). Decisions:

- Candidates come in :func:`engine.domain.queue.promotion_order` (``queue.rules``, prices from the
  prices table). One that now fails the checks is recorded ``rejected`` in the signals audit (id
  ``"<queue id>:promotion"``, reason) and removed; the next is tried.
- While the engine is paused (the ``engine`` document or the operator's control), or a configuration
  document has no valid version, nothing is promoted: the queue is held (not emptied by mass
  rejections) and a freed slot is simply released. The daily-loss breaker holds the queue the same
  way (the pre-trade checks answer ``queue``); the sweep promotes after the UTC midnight reset.
- An entry for a key whose group is still open (a pyramid continuation) becomes a pyramid of that
  group and does not take the slot: the next candidate is tried with it.
- Replays: a release or hand-over of a slot that is already gone writes nothing, and the check for the
  slot comes first, so a replayed transition neither rejects nor promotes anything.
"""

from __future__ import annotations

from datetime import datetime

from engine.app.context import EngineContext, Stores
from engine.app.intake import EntryRefused
from engine.app.pool.promotion import (
    Outcome,
    PromotionResult,
    hand_over_placer,
    open_placer,
    promote,
    promotion_candidates,
    record_queue_event,
)
from engine.app.shared.errors import InvalidState, NotFound, PoolFull
from engine.domain.config import ConfigSnapshot
from engine.domain.counters import account_of
from engine.domain.models import OPEN_GROUP_STATUSES, TERMINAL_GROUP_STATUSES, Group, QueueEntry
from engine.domain.queue import is_expired

__all__ = ["holds_slot", "on_group_change", "promote_entry", "sweep_queue"]

EXPIRED = "expired"


def holds_slot(stores: Stores, group_id: str) -> bool:
    """True while ``group_id`` holds a pool slot (strongly consistent scan of the pool's slot items)."""
    return any(held == group_id for held, _key in stores.pool.slots())


def _queue_held(stores: Stores, config: ConfigSnapshot) -> bool:
    if config.engine.paused or config.refusal_reason is not None:
        return True
    return stores.control.get().paused


def on_group_change(
    ctx: EngineContext,
    old: Group | None,
    new: Group | None,
    now: datetime,
    *,
    config: ConfigSnapshot | None = None,
) -> str | None:
    """Free or hand over the slot of a group that went from open to closed/failed.

    Returns the id of the group the slot was handed to (None: released, or nothing to do). Any other
    change (or a replay, the slot being gone already) does nothing. ``config``: the snapshot the
    caller holds (read from ``ctx.config`` once when omitted and needed).
    """
    stores = ctx.stores
    if old is None or new is None:
        return None
    if old.status not in OPEN_GROUP_STATUSES or new.status not in TERMINAL_GROUP_STATUSES:
        return None
    current = stores.groups.get(new.id) or new
    if not holds_slot(stores, current.id):
        return None
    cfg = config if config is not None else ctx.config.snapshot()
    account = account_of(current.exchange)
    if stores.pool.count(account) > cfg.pool.max_open_for(account) or _queue_held(stores, cfg):
        stores.pool.release_slot(current.id, current.key)
        return None
    placer = hand_over_placer(stores, current, cfg)
    # A freed slot is the account's: only its own queued entries may take it (DESIGN §3.10).
    for entry in promotion_candidates(stores, cfg, account=account):
        result = promote(ctx, entry, cfg, now, slot_available=True, place=placer)
        if result.outcome is Outcome.PROMOTED:
            return result.group_id
        if result.outcome in (Outcome.SLOT_GONE, Outcome.POOL_FULL):
            return None
        if result.outcome is Outcome.HELD:
            break
    stores.pool.release_slot(current.id, current.key)
    return None


def expire_queue(stores: Stores, config: ConfigSnapshot, now: datetime) -> list[str]:
    """Remove entries older than ``queue.max_age_minutes`` (recorded ``expired``); their ids."""
    expired: list[str] = []
    for entry in stores.queue.list_all():
        if is_expired(entry, now, config.queue.max_age_minutes) and stores.queue.remove(entry.id):
            record_queue_event(
                stores, entry, EXPIRED, f"queued longer than {config.queue.max_age_minutes} minutes", now
            )
            expired.append(entry.id)
    return expired


def sweep_queue(ctx: EngineContext, config: ConfigSnapshot, now: datetime) -> list[str]:
    """Expire old entries, then promote the best entries into free slots; ids of the groups promoted into.

    Stops at a full pool, when the pre-trade checks hold the queue (daily-loss breaker) and while the
    queue is held (paused / invalid configuration).
    """
    stores = ctx.stores
    expire_queue(stores, config, now)
    if _queue_held(stores, config):
        return []
    placer = open_placer(stores, config)
    promoted: list[str] = []
    tried: set[str] = set()
    stopped: set[str] = set()  # accounts whose pool is full or whose queue the checks hold
    while True:
        candidates = [
            entry
            for entry in promotion_candidates(stores, config)
            if entry.id not in tried and account_of(entry.exchange) not in stopped
        ]
        entry = next((e for e in candidates if _has_room(stores, config, e)), None)
        if entry is None:
            break
        tried.add(entry.id)
        result = promote(ctx, entry, config, now, slot_available=None, place=placer)
        if result.group_id is not None and result.outcome in (Outcome.PROMOTED, Outcome.PYRAMIDED):
            promoted.append(result.group_id)
        if result.outcome in (Outcome.HELD, Outcome.POOL_FULL):
            stopped.add(account_of(entry.exchange))
    return promoted


def _has_room(stores: Stores, config: ConfigSnapshot, entry: QueueEntry) -> bool:
    """True when ``entry``'s account has a free slot in its pool."""
    account = account_of(entry.exchange)
    return stores.pool.count(account) < config.pool.max_open_for(account)


def promote_entry(ctx: EngineContext, entry_id: str, config: ConfigSnapshot, now: datetime) -> Group:
    """Promote queued entry ``entry_id`` now (operator); the group it opened or extended.

    Raises :class:`NotFound` (no such entry), :class:`PoolFull` (no free slot for a new group),
    :class:`EntryRefused` (the pre-trade checks or the grid refuse it; the entry stays queued) and
    :class:`InvalidState` (held by the daily-loss breaker, or its key is taken by a group that is
    closing).
    """
    stores = ctx.stores
    entry = stores.queue.get(entry_id)
    if entry is None:
        raise NotFound(f"queue entry {entry_id} not found")
    extends_open_group = stores.groups.get_open_by_key(entry.key) is not None
    account = account_of(entry.exchange)
    maximum = config.pool.max_open_for(account)
    if not extends_open_group and stores.pool.count(account) >= maximum:
        raise PoolFull(f"pool of {account} full: {maximum} groups open")
    result = promote(
        ctx, entry, config, now, slot_available=None, place=open_placer(stores, config), raise_refusal=True
    )
    return _promoted_group(stores, entry_id, result)


def _promoted_group(stores: Stores, entry_id: str, result: PromotionResult) -> Group:
    if result.outcome in (Outcome.PROMOTED, Outcome.PYRAMIDED) and result.group_id is not None:
        group = stores.groups.get(result.group_id)
        if group is not None:
            return group
    if result.outcome is Outcome.POOL_FULL:
        raise PoolFull(result.reason)
    if result.outcome is Outcome.GONE:
        raise NotFound(f"queue entry {entry_id} is no longer queued")
    if result.outcome is Outcome.REJECTED:
        raise EntryRefused(result.reason)
    raise InvalidState(result.reason)
