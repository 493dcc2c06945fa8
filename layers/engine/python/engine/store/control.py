"""The operator's engine control (DESIGN §6 ``POST /engine/pause|resume``): one pool-table item.

Item ``control#engine``: ``paused`` (bool), ``note`` (who/why, free text) and ``changed_at``. The engine is
paused when the ``engine`` document **or** this item says so; code never rewrites the document. The item
lives in the pool table so the webhook's one batch read (``CounterStore.entry_state``) carries it with the
key's state at no extra call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.store.tables import PoolModel, bind

CONTROL_PK = "control#engine"


@dataclass(frozen=True)
class EngineControl:
    """The operator control as stored (absent: not paused, never changed)."""

    paused: bool = False
    note: str | None = None
    changed_at: datetime | None = None


def control_from_item(item: PoolModel | None) -> EngineControl:
    """The control of a raw pool item (None: the default)."""
    if item is None:
        return EngineControl()
    return EngineControl(paused=bool(item.paused), note=item.note, changed_at=item.changed_at)


class ControlStore:
    """Reads and writes the operator control item."""

    def get(self) -> EngineControl:
        """The control now (strongly consistent)."""
        try:
            return control_from_item(bind(PoolModel).get(CONTROL_PK, consistent_read=True))
        except PoolModel.DoesNotExist:
            return EngineControl()

    def set_paused(self, paused: bool, now: datetime, note: str | None = None) -> EngineControl:
        """Store ``paused`` (a plain overwrite: the last operator wins)."""
        bind(PoolModel)
        PoolModel(pk=CONTROL_PK, paused=paused, note=note, changed_at=now).save()
        return EngineControl(paused=paused, note=note, changed_at=now)
