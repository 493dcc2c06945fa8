"""Read-only views for the console: the live configuration documents and the recent signal outcomes.

- :func:`config_documents`: each shared document (``engine``, ``pool``, ``queue``, ``risk``) as the engine
  uses it now, with its SSM version and the configuration problems (edits happen in Parameter Store).
- :func:`recent_signals`: the newest signal outcomes from the signals audit (a table scan, newest first;
  the console polls it slowly and prefers ``GET /events`` where that route exists).
"""

from __future__ import annotations

from typing import Any

from engine.app.context import EngineContext
from engine.app.shared.views import iso, jsonable

__all__ = ["config_documents", "recent_signals"]

SHARED_DOCUMENTS = ("engine", "pool", "queue", "risk")
MAX_SIGNALS = 200


def config_documents(ctx: EngineContext) -> dict[str, Any]:
    """``{"documents": [{"name", "version", "values"}], "problems": [{"document", "text", ...}]}``."""
    snapshot = ctx.config.snapshot()
    documents = []
    for name in SHARED_DOCUMENTS:
        model = getattr(snapshot, name)
        documents.append(
            {"name": name, "version": snapshot.versions.get(name), "values": model.model_dump(mode="json")}
        )
    extra = sorted(set(snapshot.versions) - set(SHARED_DOCUMENTS))
    documents.extend({"name": name, "version": snapshot.versions[name], "values": None} for name in extra)
    problems = [
        {"document": p.document, "text": str(p), "unreadable": p.unreadable, "account": p.account}
        for p in snapshot.problems
    ]
    return {"documents": documents, "problems": problems}


def recent_signals(
    ctx: EngineContext, limit: int, *, outcome: str | None = None, group_id: str | None = None
) -> dict[str, Any]:
    """``{"signals": [...]}``: the newest ``limit`` signal outcomes (optionally one outcome / group)."""
    records = ctx.stores.signals.list_recent(limit=MAX_SIGNALS if (outcome or group_id) else limit)
    if outcome:
        records = [r for r in records if r.outcome == outcome]
    if group_id:
        records = [r for r in records if r.group_id == group_id]
    return {
        "signals": [
            {
                "id": r.signal_id,
                "received_at": iso(r.received_at),
                "intent": r.intent,
                "outcome": r.outcome,
                "reason": r.reason,
                "key": r.key,
                "group_id": r.group_id,
                "queue_id": r.queue_id,
                "summary": jsonable(r.summary),
            }
            for r in records[:limit]
        ]
    }
