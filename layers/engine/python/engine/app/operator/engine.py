"""The operator's pause and resume (DESIGN §6): an operator control item, never the ``engine`` document.

The engine is paused when the ``engine`` document says ``paused`` **or** the control does; resuming clears
only the control (a document pause stays until someone edits the document in Parameter Store).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.app.context import EngineContext
from engine.app.shared.views import iso

__all__ = ["engine_status", "set_paused"]


def engine_status(ctx: EngineContext) -> dict[str, Any]:
    """``{"paused", "paused_by_document", "paused_by_operator", "note", "changed_at"}``."""
    control = ctx.stores.control.get()
    by_document = ctx.config.snapshot().engine.paused
    return {
        "paused": by_document or control.paused,
        "paused_by_document": by_document,
        "paused_by_operator": control.paused,
        "note": control.note,
        "changed_at": iso(control.changed_at),
    }


def set_paused(ctx: EngineContext, paused: bool, now: datetime, note: str | None = None) -> dict[str, Any]:
    """Pause or resume through the control item; ``changed`` false when it already was so."""
    before = ctx.stores.control.get()
    changed = before.paused != paused
    if changed:
        ctx.stores.control.set_paused(paused, now, note)
    return {**engine_status(ctx), "changed": changed}
