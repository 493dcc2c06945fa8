"""PoolStore: the execution pool (DESIGN §3.6, one per account §3.10) as transactions over the pool table.

Items: ``counter#<account>`` (attribute ``count`` = the account's groups holding a slot),
``slot#<group id>`` (one per group holding a slot), ``key#<group key>`` (the key lock: at most one
non-terminal group per key) and
``queued#<group key>`` (the queue's one-entry-per-key lock, owned by :mod:`engine.store.queue` and
deleted here when an entry is promoted).

Every operation is one ``TransactWriteItems`` keyed by group id, so N concurrent openers never exceed
``max_open`` and a replayed release or hand-over changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from engine.domain.counters import account_of, counted_of, counter_deltas
from engine.domain.events import Event, group_event
from engine.domain.models import Group, Order
from engine.store.audit import add_event
from engine.store.convert import group_to_model, order_to_model
from engine.store.counters import add_counter_updates, counters_failed
from engine.store.errors import AlreadyExists, StoreError
from engine.store.tables import (
    COUNTER_PK,
    GroupModel,
    OrderModel,
    PoolModel,
    QueueModel,
    account_of_key,
    bind,
    key_lock_pk,
    pool_counter_pk,
    queue_lock_pk,
    slot_pk,
)
from engine.store.tx import Transaction

#: Name of the event of a group's creation (``engine.domain.events``).
OPENED_EVENT = "opened"


class OpenResult(StrEnum):
    """Outcome of :meth:`PoolStore.open_group` (and the reason of :class:`HandOverRefused`)."""

    OPENED = "opened"
    #: The counter is at (or above) ``max_open``.
    POOL_FULL = "pool_full"
    #: Another non-terminal group holds the key lock.
    KEY_TAKEN = "key_taken"
    #: This group (or its slot) already exists: a replay.
    ALREADY_OPEN = "already_open"
    #: Promoting a queue entry that is no longer queued (removed, expired or promoted elsewhere).
    QUEUE_ENTRY_GONE = "queue_entry_gone"
    #: The account's committed exposure would pass the cap (another entry committed capital meanwhile).
    EXPOSURE_FULL = "exposure_full"


class HandOverRefused(StoreError):
    """A hand-over whose old slot exists but whose new group cannot take it; nothing was written."""

    def __init__(self, reason: OpenResult) -> None:
        super().__init__(f"hand-over refused: {reason.value}")
        self.reason = reason


def _pool_item(pk: str, *, group_id: str | None = None, key: str | None = None) -> PoolModel:
    bind(PoolModel)
    return PoolModel(pk=pk, group_id=group_id, key=key)


def _failure_reason(failed: set[str]) -> OpenResult:
    if failed & {"group", "slot"}:
        return OpenResult.ALREADY_OPEN
    if "key" in failed:
        return OpenResult.KEY_TAKEN
    if failed & {"queue", "queue_lock"}:
        return OpenResult.QUEUE_ENTRY_GONE
    if counters_failed(failed):
        return OpenResult.EXPOSURE_FULL
    if "counter" in failed:
        return OpenResult.POOL_FULL
    raise AlreadyExists(f"orders already exist: {sorted(failed)}")


class PoolStore:
    """Slots, key locks and the open-group counter."""

    def count(self, account: str | None = None) -> int:
        """Groups holding a slot of ``account``'s pool according to its counter (strongly consistent);
        None: of every account's pool."""
        if account is None:
            return sum(self.counts().values())
        try:
            item = bind(PoolModel).get(pool_counter_pk(account), consistent_read=True)
        except PoolModel.DoesNotExist:
            return 0
        return int(item.open_count or 0)

    def counts(self) -> dict[str, int]:
        """Every account's pool counter (a strongly consistent scan)."""
        model = bind(PoolModel)
        prefix = pool_counter_pk("")
        return {
            item.pk[len(prefix) :]: int(item.open_count or 0)
            for item in model.scan(PoolModel.pk.startswith(prefix), consistent_read=True)
        }

    def status(self) -> tuple[int, list[str]]:
        """``(Σ counters, sorted ids of the groups holding a slot)``; they agree unless mid-repair."""
        return sum(self.counts().values()), [group_id for group_id, _key in self.slots()]

    def slots(self) -> list[tuple[str, str]]:
        """``(group id, group key)`` of every group holding a slot, by group id (a consistent scan)."""
        model = bind(PoolModel)
        found = model.scan(PoolModel.pk.startswith("slot#"), consistent_read=True)
        return sorted((str(item.group_id), str(item.key or "")) for item in found)

    def migrate_legacy_counter(self) -> dict[str, int] | None:
        """Split the single pool counter of before DESIGN §3.10 into per-account counters, once.

        The slot items say which account holds each slot; their counts are added to ``counter#<account>``
        and the legacy ``counter`` item is deleted in one transaction (conditioned on it being unchanged,
        so a concurrent open or release makes this a no-op to be retried). Returns the counts moved, or
        None when there was nothing to migrate (or it changed meanwhile).
        """
        try:
            legacy = bind(PoolModel).get(COUNTER_PK, consistent_read=True)
        except PoolModel.DoesNotExist:
            return None
        moved: dict[str, int] = {}
        for _group_id, key in self.slots():
            account = account_of_key(key)
            moved[account] = moved.get(account, 0) + 1
        tx = Transaction(f"migrate-pool-counter:{legacy.open_count}:{sorted(moved.items())}")
        tx.delete("legacy", _pool_item(COUNTER_PK), PoolModel.open_count == legacy.open_count)
        for account, count in sorted(moved.items()):
            tx.update(account, _pool_item(pool_counter_pk(account)), [PoolModel.open_count.add(count)])
        return None if tx.commit() else moved

    def _add_new_group(
        self,
        tx: Transaction,
        group: Group,
        orders: Sequence[Order],
        now: datetime | None,
        exposure_cap_usd: Decimal | None,
        events: Sequence[Event] = (),
    ) -> tuple[GroupModel, list[OrderModel]]:
        """Slot, group, order puts and the group's counter deltas shared by open and hand-over (key
        lock is the caller's). The account counter carries the exposure cap as its condition."""
        tx.put(
            "slot",
            _pool_item(slot_pk(group.id), group_id=group.id, key=group.key),
            PoolModel.pk.does_not_exist(),
        )
        group_item = group_to_model(dataclasses.replace(group, version=0))
        tx.put("group", group_item, GroupModel.id.does_not_exist())
        order_items = [order_to_model(dataclasses.replace(order, version=0)) for order in orders]
        for item in order_items:
            tx.put(f"order:{item.id}", item, OrderModel.id.does_not_exist())
        deltas = counter_deltas(None, counted_of(group))
        add_counter_updates(tx, deltas, now or group.created_at, exposure_cap_usd=exposure_cap_usd)
        opened = dataclasses.replace(group, version=1)
        add_event(tx, group_event(opened, OPENED_EVENT, now or group.created_at))
        for event in events:
            add_event(tx, event)
        return group_item, order_items

    @staticmethod
    def _delete_queue_entry(tx: Transaction, queue_entry_id: str, key: str) -> None:
        bind(QueueModel)
        tx.delete("queue", QueueModel(id=queue_entry_id), QueueModel.id.exists())
        tx.delete("queue_lock", _pool_item(queue_lock_pk(key)), PoolModel.entry_id == queue_entry_id)

    @staticmethod
    def _apply_versions(
        group: Group, orders: Sequence[Order], group_item: GroupModel, order_items: list[OrderModel]
    ) -> None:
        group.version = int(group_item.version)
        group.counted = counted_of(group)
        group.stored_status = group.status
        for order, item in zip(orders, order_items, strict=True):
            order.version = int(item.version)

    def open_group(
        self,
        group: Group,
        orders: Sequence[Order],
        *,
        max_open: int,
        queue_entry_id: str | None = None,
        exposure_cap_usd: Decimal | None = None,
        now: datetime | None = None,
        events: Sequence[Event] = (),
    ) -> OpenResult:
        """Take a slot of the group's account and create ``group`` with its ``orders`` in one transaction.

        The account's pool counter goes up only while below ``max_open`` (the counter item is created on
        first use); the slot, key lock and group must not exist. With ``queue_entry_id`` (a promotion) the
        queue entry and its key lock are deleted in the same transaction. The account's counters take the
        group's open count and committed capital in the same transaction; with ``exposure_cap_usd`` the
        account's committed exposure must stay within it (else ``EXPOSURE_FULL``; ``now`` stamps the
        counters, default the group's ``created_at``). The group's ``opened`` event and ``events`` (e.g. the
        signal's) are written in the same transaction. Nothing is written unless the
        result is ``OPENED``; then ``group.version`` and each order's ``version`` become 1. Raises
        :class:`AlreadyExists` if only an order id collided.
        """
        if max_open < 1:
            return OpenResult.POOL_FULL
        tx = Transaction(f"open:{group.id}")
        counter = _pool_item(pool_counter_pk(account_of(group.exchange)))
        tx.update(
            "counter",
            counter,
            [PoolModel.open_count.add(1)],
            PoolModel.open_count.does_not_exist() | (PoolModel.open_count < max_open),
        )
        tx.put(
            "key",
            _pool_item(key_lock_pk(group.key), group_id=group.id, key=group.key),
            PoolModel.pk.does_not_exist(),
        )
        group_item, order_items = self._add_new_group(tx, group, orders, now, exposure_cap_usd, events)
        if queue_entry_id is not None:
            self._delete_queue_entry(tx, queue_entry_id, group.key)
        failed = tx.commit()
        if failed:
            return _failure_reason(failed)
        self._apply_versions(group, orders, group_item, order_items)
        return OpenResult.OPENED

    def release_slot(self, group_id: str, key: str) -> bool:
        """Free ``group_id``'s slot: slot out, key lock out (if it names this group), counter - 1.

        One transaction; a replay (slot already gone) returns False and changes nothing.
        """
        include_key_lock = True
        while True:
            tx = Transaction(f"release:{group_id}")
            tx.delete("slot", _pool_item(slot_pk(group_id)), PoolModel.pk.exists())
            if include_key_lock:
                tx.delete("key", _pool_item(key_lock_pk(key)), PoolModel.group_id == group_id)
            counter = _pool_item(pool_counter_pk(account_of_key(key)))
            tx.update("counter", counter, [PoolModel.open_count.add(-1)])
            failed = tx.commit()
            if "slot" in failed:
                return False
            if "key" in failed and include_key_lock:
                # The key lock names another group (or none): release the slot without touching it.
                include_key_lock = False
                continue
            if failed:
                raise StoreError(f"release of {group_id} failed on {sorted(failed)}")
            return True

    def hand_over_slot(
        self,
        *,
        old_group_id: str,
        old_key: str,
        new_group: Group,
        new_orders: Sequence[Order],
        queue_entry_id: str,
        exposure_cap_usd: Decimal | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Give ``old_group_id``'s slot to ``new_group`` (promoted from ``queue_entry_id``).

        The pool counter is untouched (DynamoDB forbids two operations on one item per transaction);
        the account's counters take the new group's net deltas (the old group's share left them in the
        write that closed it), the exposure cap as the account counter's condition (``HandOverRefused``
        with ``EXPOSURE_FULL``).

        In one transaction: old slot and old key lock out, new slot and new key lock in, the queue entry
        and its key lock deleted, the new group and its orders created. Returns False and writes
        nothing when the old slot is already gone (a replay). Raises :class:`HandOverRefused` (reason
        ``ALREADY_OPEN``, ``KEY_TAKEN`` or ``QUEUE_ENTRY_GONE``) when the old slot exists but the new
        group cannot take it — nothing is written; the caller may then just release the slot.
        Use :meth:`release_slot` instead when the pool has shrunk (``count() > max_open``).
        """
        new_key = new_group.key
        include_old_key_lock = True
        while True:
            tx = Transaction(f"handover:{old_group_id}:{new_group.id}")
            tx.delete("old_slot", _pool_item(slot_pk(old_group_id)), PoolModel.pk.exists())
            new_lock = _pool_item(key_lock_pk(new_key), group_id=new_group.id, key=new_key)
            if new_key == old_key:
                # One item: overwrite the lock if it is free or still the old group's.
                tx.put(
                    "key",
                    new_lock,
                    PoolModel.pk.does_not_exist() | (PoolModel.group_id == old_group_id),
                )
            else:
                if include_old_key_lock:
                    tx.delete("old_key", _pool_item(key_lock_pk(old_key)), PoolModel.group_id == old_group_id)
                tx.put("key", new_lock, PoolModel.pk.does_not_exist())
            group_item, order_items = self._add_new_group(tx, new_group, new_orders, now, exposure_cap_usd)
            self._delete_queue_entry(tx, queue_entry_id, new_key)
            failed = tx.commit()
            if "old_slot" in failed:
                return False
            if failed == {"old_key"}:
                include_old_key_lock = False
                continue
            if failed - {"old_key"}:
                raise HandOverRefused(_failure_reason(failed - {"old_key"}))
            self._apply_versions(new_group, new_orders, group_item, order_items)
            return True
