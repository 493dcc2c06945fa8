"""order_sync's entry point: a scheduled event (the minute schedule, the local scheduler) or loop ticks.

- A scheduled event (``detail.force`` true only from the local ``/_local/tick``) runs
  :func:`engine.app.sync.run.run_sync` — the fast pass and the minute pass, each when due — then, where
  the loop exists (a tick sender), starts it if something is live and no loop runs
  (:func:`engine.app.sync.loop.start_loop`).
- An SQS event carries loop ticks (:func:`engine.app.sync.loop.run_tick`). It never reports item
  failures: a retried tick would find its lease step gone and stop anyway; a broken chain is restarted
  by the minute schedule.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.app.sync.loop import TickSender, start_loop, tick_outcomes
from engine.app.sync.run import run_sync
from engine.app.sync.ticks import queue_sender

__all__ = ["handle_sync_event", "is_tick_event"]

logger = Logger(child=True)

_DEFAULT: Any = object()


def is_tick_event(event: dict[str, Any]) -> bool:
    """True for an SQS event (the loop's ticks)."""
    records = event.get("Records")
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"


def handle_sync_event(
    ctx: EngineContext, event: dict[str, Any], sender: TickSender | None = _DEFAULT
) -> dict[str, Any]:
    """Handle one order_sync event (module docstring); ``sender`` defaults to the SQS queue, if any."""
    tick_sender = queue_sender() if sender is _DEFAULT else sender
    now = ctx.now()
    if is_tick_event(event):
        if tick_sender is None:
            logger.warning("sync ticks without a tick queue configured: ignored")
            return {"ticks": [], "batchItemFailures": []}
        return {"ticks": tick_outcomes(ctx, event["Records"], now, tick_sender), "batchItemFailures": []}
    force = (event.get("detail") or {}).get("force") is True
    summary = run_sync(ctx, now, force=force)
    result = summary.as_dict()
    if tick_sender is not None:
        live = summary.live if summary.fast else None
        try:
            result["loop_started"] = start_loop(ctx, now, tick_sender, live=live)
        except Exception:
            logger.exception("could not start the sync loop; the next minute tries again")
            result["loop_started"] = None
    return result
