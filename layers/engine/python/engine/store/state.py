"""StateStore: schedule last-run items, once-markers and small JSON state documents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from engine.store.tables import StateModel, bind

SCHEDULE_PREFIX = "schedule#"
MARKER_PREFIX = "marker#"
STATE_PREFIX = "state#"


def _condition_failed(error: PutError | UpdateError) -> bool:
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
