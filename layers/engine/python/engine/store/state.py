"""StateStore: schedule last-run items, once-markers, small JSON state documents and leases."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from engine.store.tables import StateModel, bind

SCHEDULE_PREFIX = "schedule#"
MARKER_PREFIX = "marker#"
STATE_PREFIX = "state#"
LEASE_PREFIX = "lease#"


def _condition_failed(error: PutError | UpdateError | DeleteError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


class StateStore:
    """State table (hash ``pk``, TTL ``expires_at``)."""

    def claim_interval(self, name: str, interval: timedelta, now: datetime) -> bool:
        """Advance schedule ``name``'s last run to ``now`` if ``interval`` has passed since the last one.

        A conditional update: of overlapping invocations only one gets True. Schedules fire every
        minute with some jitter, so callers wanting "every N minutes" may pass a slightly shorter
        interval (e.g. N minutes minus a few seconds).
        """
        model = bind(StateModel)
        item = model(pk=SCHEDULE_PREFIX + name)
        due = StateModel.last_run_at.does_not_exist() | (StateModel.last_run_at <= now - interval)
        try:
            item.update(actions=[StateModel.last_run_at.set(now)], condition=due)
        except UpdateError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def mark_once(self, marker_id: str, ttl: timedelta, *, now: datetime) -> bool:
        """Record ``marker_id``; True the first time, False while an unexpired marker exists.

        The marker expires ``ttl`` after ``now`` (DynamoDB TTL removes it later; an expired one counts
        as absent).
        """
        model = bind(StateModel)
        item = model(pk=MARKER_PREFIX + marker_id, expires_at=now + ttl)
        try:
            item.save(condition=StateModel.pk.does_not_exist() | (StateModel.expires_at < now))
        except PutError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def is_marked(self, marker_id: str, now: datetime) -> bool:
        """True while an unexpired marker ``marker_id`` exists (strongly consistent)."""
        try:
            item = bind(StateModel).get(MARKER_PREFIX + marker_id, consistent_read=True)
        except StateModel.DoesNotExist:
            return False
        return item.expires_at is None or item.expires_at >= now

    def list_documents(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """Every state document whose name starts with ``prefix`` as (name, data) (a scan: local views)."""
        model = bind(StateModel)
        found = model.scan(StateModel.pk.startswith(STATE_PREFIX + prefix), consistent_read=True)
        return sorted((item.pk[len(STATE_PREFIX) :], dict(item.data or {})) for item in found)

    def get(self, name: str) -> dict[str, Any] | None:
        """The JSON-like state document ``name``, or None."""
        try:
            item = bind(StateModel).get(STATE_PREFIX + name, consistent_read=True)
        except StateModel.DoesNotExist:
            return None
        return dict(item.data or {})

    def put(self, name: str, data: Mapping[str, Any]) -> None:
        """Overwrite the state document ``name`` (JSON-like values; Decimals stay exact)."""
        bind(StateModel)
        StateModel(pk=STATE_PREFIX + name, data=dict(data)).save()

    def acquire_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take lease ``name`` for ``holder`` (sequence 0) unless another holder's lease is unexpired.

        A conditional put: of concurrent takers only one gets True. The lease expires ``ttl`` after
        ``now`` unless :meth:`advance_lease` extends it.
        """
        model = bind(StateModel)
        item = model(pk=LEASE_PREFIX + name, holder=holder, seq=0, expires_at=now + ttl)
        free = StateModel.pk.does_not_exist() | (StateModel.expires_at < now)
        try:
            item.save(condition=free)
        except PutError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def advance_lease(self, name: str, holder: str, seq: int, ttl: timedelta, now: datetime) -> bool:
        """Move ``holder``'s lease from step ``seq`` to ``seq + 1`` and extend it to ``now + ttl``.

        False when the lease is gone, held by another holder or already past ``seq`` (a duplicate of
        step ``seq``): exactly one caller per step gets True.
        """
        model = bind(StateModel)
        item = model(pk=LEASE_PREFIX + name)
        held = (StateModel.holder == holder) & (StateModel.seq == seq)
        try:
            item.update(
                actions=[StateModel.seq.set(seq + 1), StateModel.expires_at.set(now + ttl)], condition=held
            )
        except UpdateError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def release_lease(self, name: str, holder: str) -> bool:
        """Drop lease ``name`` if ``holder`` holds it; False when it does not (nothing changed)."""
        model = bind(StateModel)
        try:
            model(pk=LEASE_PREFIX + name).delete(condition=StateModel.holder == holder)
        except DeleteError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def lease_holder(self, name: str, now: datetime) -> str | None:
        """Who holds lease ``name`` unexpired at ``now`` (strongly consistent), else None."""
        try:
            item = bind(StateModel).get(LEASE_PREFIX + name, consistent_read=True)
        except StateModel.DoesNotExist:
            return None
        if item.expires_at is None or item.expires_at < now:
            return None
        return item.holder
