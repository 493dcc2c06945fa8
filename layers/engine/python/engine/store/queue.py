"""QueueStore: entry signals waiting for a pool slot, at most one per group key.

The one-per-key rule is a lock item ``queued#<key>`` in the pool table (naming the entry id), written in
the same transaction as the entry. Promotion deletes both inside :meth:`PoolStore.open_group` /
:meth:`PoolStore.hand_over_slot`. Expiry is decided by the domain; :meth:`QueueStore.remove` does it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.exceptions import PutError

from engine.domain.events import Event
from engine.domain.models import QueueEntry
from engine.store.audit import add_event
from engine.store.convert import queue_from_model, queue_to_model
from engine.store.tables import PoolModel, QueueModel, bind, queue_lock_pk
from engine.store.tx import Transaction


def _lock_item(key: str, entry_id: str | None = None) -> PoolModel:
    bind(PoolModel)
    if entry_id is None:
        return PoolModel(pk=queue_lock_pk(key))
    return PoolModel(pk=queue_lock_pk(key), entry_id=entry_id, key=key)


class QueueStore:
    """Queue table access; every method returns domain :class:`QueueEntry` objects."""

    def enqueue(self, entry: QueueEntry, *, events: Sequence[Event] = ()) -> bool:
        """Queue ``entry`` (with ``events``, e.g. the signal's, in the same transaction); False (nothing
        written) when its key already has a queued entry."""
        tx = Transaction(f"enqueue:{entry.id}")
        tx.put("lock", _lock_item(entry.key, entry.id), PoolModel.pk.does_not_exist())
        tx.put("entry", queue_to_model(entry), QueueModel.id.does_not_exist())
        for event in events:
            add_event(tx, event)
        return not tx.commit()

    def get(self, entry_id: str) -> QueueEntry | None:
        """The queued entry ``entry_id`` (strongly consistent), or None."""
        try:
            return queue_from_model(bind(QueueModel).get(entry_id, consistent_read=True))
        except QueueModel.DoesNotExist:
            return None

    def find_by_key(self, key: str) -> QueueEntry | None:
        """The entry queued for group ``key`` (via its lock, strongly consistent), or None."""
        try:
            lock = bind(PoolModel).get(queue_lock_pk(key), consistent_read=True)
        except PoolModel.DoesNotExist:
            return None
        return None if lock.entry_id is None else self.get(lock.entry_id)

    def replace(self, entry: QueueEntry) -> bool:
        """Overwrite a queued entry (e.g. a replacement); False if it is no longer queued.

        The key cannot change: the stored entry must have the same key.
        """
        try:
            queue_to_model(entry).save(condition=QueueModel.id.exists() & (QueueModel.key == entry.key))
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove(self, entry_id: str) -> bool:
        """Delete entry ``entry_id`` and its key lock; False if it was already gone."""
        entry = self.get(entry_id)
        if entry is None:
            return False
        include_lock = True
        while True:
            tx = Transaction(f"dequeue:{entry_id}")
            bind(QueueModel)
            tx.delete("entry", QueueModel(id=entry_id), QueueModel.id.exists())
            if include_lock:
                tx.delete("lock", _lock_item(entry.key), PoolModel.entry_id == entry_id)
            failed = tx.commit()
            if "entry" in failed:
                return False
            if "lock" in failed:
                include_lock = False  # the lock names another entry (or none): leave it alone
                continue
            return True

    def list_all(self) -> list[QueueEntry]:
        """Every queued entry, oldest first (queue id breaks ties)."""
        entries = [queue_from_model(item) for item in bind(QueueModel).scan(consistent_read=True)]
        return sorted(entries, key=lambda entry: (entry.queued_at, entry.id))
