"""position_update's unit of work: one stream batch of order changes, each group refreshed once.

A batch is fetched before any of its records is handled, so every change it carries is already in the
table when the first refresh of a group re-reads it: refreshing that group again for its other records
of the batch would read the same state and decide the same thing. :class:`OrderChanges` therefore
records every fill (one event per increase, :func:`~engine.app.positions.fills.record_fill`) but refreshes
a group only on its first record that succeeds; a refresh that raised is tried again on the group's next
record, and the failed record is retried by the stream (with everything after it).
"""

from __future__ import annotations

from datetime import datetime

from engine.app.context import EngineContext
from engine.app.positions.fills import record_fill
from engine.app.positions.refresh import refresh_group
from engine.domain.models import Order

__all__ = ["OrderChanges"]


class OrderChanges:
    """The order changes of one stream batch (create one per invocation)."""

    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self._refreshed: set[str] = set()

    def apply(self, old: Order | None, new: Order | None, now: datetime) -> None:
        """One change of an order (``old`` and ``new`` images, either may be missing): record its fill
        when there is a new image, then refresh its group unless this batch already did."""
        if new is not None:
            record_fill(self._ctx, old, new, now)
        changed = new or old
        if changed is None or changed.group_id in self._refreshed:
            return
        refresh_group(self._ctx, changed.group_id, now)
        self._refreshed.add(changed.group_id)
