"""The fast sync loop in AWS: the fast pass every ``engine.sync_interval_seconds`` while anything is live.

EventBridge fires once a minute at most, so a self-scheduling loop runs the fast pass in between
(DESIGN §1): each **tick** is a delayed message (SQS ``DelaySeconds`` = the interval, see
:mod:`engine.app.sync.ticks`) consumed by order_sync, which runs the fast pass and sends the next tick.

Exactly one loop per deployment, through the lease item ``lease#sync_loop`` in the state table
(``holder``, step ``seq``, ``expires_at``):

- **start** (:func:`start_loop`, from the minute schedule): when something is live and no unexpired
  lease exists, a conditional put takes the lease for a new holder at step 0 and sends tick
  ``(holder, 0)``. Of two overlapping starts only one wins; a running loop's lease blocks a new one.
- **tick** (:func:`run_tick`): a conditional update moves the lease from the tick's step to the next
  one, so only the tick of the current step of the current holder goes on; any other (an SQS
  duplicate, a retry after the step moved on, a tick of a loop whose lease expired and was retaken)
  stops without doing anything. The tick then runs the fast pass (its ``order_sync_fast`` claim
  still applies: a minute-schedule pass just before makes it skip) and, if anything is live, sends
  tick ``(holder, seq + 1)``; otherwise it releases the lease and the loop ends — it costs nothing
  while idle, and the minute schedule starts a new loop when something is live again.
- **expiry**: each step extends the lease to ``now + interval + LEASE_SLACK``; a loop whose chain broke
  (a tick lost or failed) leaves a lease that expires, and the next minute schedule after that starts
  a new loop. A failed send releases the lease at once, so the next minute restarts it.

The fast pass stays correct without the loop (the minute schedule runs it too); the loop only makes it
come every few seconds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.app.sync.run import FAST_SYNC_NAME, fast_claim_interval, live_work, run_fast_pass
from engine.app.sync.summary import SyncSummary
from engine.domain.config import ConfigSnapshot

__all__ = [
    "LEASE_SLACK",
    "LOOP_LEASE",
    "LoopTick",
    "TickOutcome",
    "TickSender",
    "lease_ttl",
    "run_tick",
    "start_loop",
]

logger = Logger(child=True)

#: The lease item's name (``lease#sync_loop`` in the state table).
LOOP_LEASE = "sync_loop"
#: Lease time beyond the tick delay: a fast pass (order_sync's timeout is 50 s) plus delivery slack.
LEASE_SLACK = timedelta(seconds=60)


@dataclass(frozen=True)
class LoopTick:
    """One tick of the loop: which lease holder sent it, at which step."""

    holder: str
    seq: int

    def to_body(self) -> str:
        """The message body."""
        return json.dumps({"loop": self.holder, "seq": self.seq})

    @classmethod
    def from_body(cls, body: str) -> LoopTick | None:
        """The tick in a message body; None when it is not one."""
        try:
            data = json.loads(body)
            holder, seq = data["loop"], data["seq"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(holder, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return None
        return cls(holder, seq)


class TickSender(Protocol):
    """Sends a tick to order_sync after ``delay_seconds`` (an SQS delay queue in AWS)."""

    def send(self, tick: LoopTick, delay_seconds: int) -> None:
        """Deliver ``tick`` no sooner than ``delay_seconds`` from now."""
        ...


class TickOutcome(StrEnum):
    """What a tick did."""

    CONTINUED = "continued"  # ran (or skipped) the fast pass and sent the next tick
    STOPPED = "stopped"  # nothing live: released the lease, sent nothing
    NOT_HOLDER = "not_holder"  # not the current step of the current lease: did nothing


def lease_ttl(cfg: ConfigSnapshot) -> timedelta:
    """How long a lease step lasts: the tick delay plus :data:`LEASE_SLACK`."""
    return timedelta(seconds=cfg.engine.sync_interval_seconds) + LEASE_SLACK


def start_loop(
    ctx: EngineContext, now: datetime, sender: TickSender, *, live: bool | None = None
) -> str | None:
    """Start the loop if something is live and none runs; the new holder, or None when none started.

    ``live``: whether anything is live, when the caller already knows (its fast pass saw it).
    """
    stores = ctx.stores
    if live is None:
        orders, groups = live_work(stores)
        live = bool(orders or groups)
    if not live:
        return None
    cfg = ctx.config.snapshot()
    holder = uuid.uuid4().hex
    if not stores.state.acquire_lease(LOOP_LEASE, holder, lease_ttl(cfg), now):
        return None
    try:
        sender.send(LoopTick(holder, 0), cfg.engine.sync_interval_seconds)
    except Exception:
        stores.state.release_lease(LOOP_LEASE, holder)
        raise
    logger.info("sync loop started", holder=holder)
    return holder


def run_tick(ctx: EngineContext, tick: LoopTick, now: datetime, sender: TickSender) -> TickOutcome:
    """One tick of the loop (module docstring)."""
    stores = ctx.stores
    cfg = ctx.config.snapshot()
    if not stores.state.advance_lease(LOOP_LEASE, tick.holder, tick.seq, lease_ttl(cfg), now):
        logger.info("sync tick without the lease: stopped", holder=tick.holder, seq=tick.seq)
        return TickOutcome.NOT_HOLDER
    live = _fast_pass(ctx, now, cfg)
    if not live:
        stores.state.release_lease(LOOP_LEASE, tick.holder)
        logger.info("sync loop idle: stopped", holder=tick.holder)
        return TickOutcome.STOPPED
    try:
        sender.send(LoopTick(tick.holder, tick.seq + 1), cfg.engine.sync_interval_seconds)
    except Exception:
        # Free the lease so the next minute schedule restarts the loop at once.
        stores.state.release_lease(LOOP_LEASE, tick.holder)
        raise
    return TickOutcome.CONTINUED


def _fast_pass(ctx: EngineContext, now: datetime, cfg: ConfigSnapshot) -> bool:
    """Run the fast pass if due; whether anything is live (True when unsure: the loop goes on)."""
    stores = ctx.stores
    try:
        if stores.state.claim_interval(FAST_SYNC_NAME, fast_claim_interval(cfg), now):
            summary = SyncSummary()
            run_fast_pass(ctx, now, cfg, summary)
            summary.ran = True
            logger.info("fast sync done", summary=summary.as_dict())
            return summary.live
        orders, groups = live_work(stores)
        return bool(orders or groups)
    except Exception:
        logger.exception("fast sync tick failed; the loop goes on")
        return True


def tick_outcomes(
    ctx: EngineContext, records: list[dict[str, Any]], now: datetime, sender: TickSender
) -> list[str]:
    """Run the tick of every SQS record (a body that is no tick is logged and dropped)."""
    outcomes: list[str] = []
    for record in records:
        tick = LoopTick.from_body(str(record.get("body", "")))
        if tick is None:
            logger.warning("not a sync tick, dropped", message_id=record.get("messageId"))
            outcomes.append("invalid")
            continue
        outcomes.append(run_tick(ctx, tick, now, sender).value)
    return outcomes
