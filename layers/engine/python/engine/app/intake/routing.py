"""Routing a validated, authenticated signal (DESIGN §3.1, §3.2, §3.6): what it does to groups and the queue.

Entry for a key with
- an open group -> a pyramid (``ignored`` when the group is closing, for a second signal in the same or
  an older candle and past ``max_pyramids`` — where ``risk.reset_timer_on_replacement`` also resets a
  running risk timer; ``rejected`` when paused, the daily loss breaker holds or a pre-trade check fails;
  ``queued`` with ``pyramid_continuation`` when ``pool.pyramids_bypass`` is off and the pool is full, or
  ``replaced``/``ignored`` when a continuation of the key is already queued);
- a queued entry -> ``replaced`` (later candle) or ``ignored`` (same or older candle: duplicate);
- nothing -> pre-trade checks -> ``opened`` / ``queued`` (pool full, daily loss breaker) / ``rejected``.

Exit for a key: open group -> close it (``exited``; a queued entry of the key is removed too); only a
queued entry -> removed (``exited`` with ``queue_id``); nothing -> ``ignored``.

Every routed signal is recorded in the event log with its outcome and reason (DESIGN §1): in the
transaction that opens its group, adds its pyramid or queues it, else on its own.

Crash safety: the ids this module writes are derived from the signal's idempotency key (the group id, the
queue entry id; a pyramid records the signal id), so a delivery retried after a crash — Powertools
removes its in-progress record when the function fails — finds its own earlier write in the same item
that holds the change, and answers as the first attempt did instead of doing the work twice.

Races: a conditional write that loses to a concurrent signal (key taken, queue lock taken, group
version moved on) re-routes against the new state, at most :data:`MAX_ROUTE_ATTEMPTS` times; beyond that
:class:`RoutingConflict` is raised (a 5xx: the sender resends).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.app.context import EngineContext, Stores
from engine.app.intake.entries import (
    EntryRefused,
    EntryRequest,
    evaluate_new_group,
    plan_pyramid,
    pyramid_breaker,
    read_entry_state,
)
from engine.app.positions import request_close
from engine.domain.config import ConfigSnapshot
from engine.domain.events import Event
from engine.domain.models import (
    CloseReason,
    Group,
    GroupStatus,
    Outcome,
    QueueEntry,
    group_key,
)
from engine.domain.pretrade import pause_reason
from engine.domain.queue import QueueDecision, decide_requeue, replace_entry
from engine.domain.signal import Signal
from engine.store import AlreadyExists, EntryState, OpenResult, StaleWrite, signal_event, signal_record

MAX_ROUTE_ATTEMPTS = 3
#: ``close_note`` of a group closed by an exit signal.
EXIT_SIGNAL_NOTE = "exit signal"


class RoutingConflict(Exception):
    """Concurrent writers kept changing the key's state; the signal was not applied (resend it)."""


@dataclass(frozen=True)
class RouteResult:
    """What a signal did: the webhook's 202 answer."""

    outcome: Outcome
    reason: str
    group_id: str | None = None
    queue_id: str | None = None
    #: True when the signal's event was written with the change (same transaction).
    recorded: bool = field(default=False, compare=False)

    def body(self) -> dict[str, str]:
        """``{"outcome", "reason", "group_id"?, "queue_id"?}``."""
        answer = {"outcome": self.outcome.value, "reason": self.reason}
        if self.group_id is not None:
            answer["group_id"] = self.group_id
        if self.queue_id is not None:
            answer["queue_id"] = self.queue_id
        return answer


@dataclass(frozen=True)
class SignalContext:
    """One signal being routed, with everything the routing reads."""

    engine: EngineContext
    signal: Signal
    config: ConfigSnapshot
    now: datetime
    #: The signal's idempotency key: audit id, and the seed of the ids written for it.
    signal_id: str
    #: The key's state and counters when the caller already read them (the webhook's validation read);
    #: used by the first routing attempt only, a re-route reads afresh.
    state: EntryState | None = None
    #: The account this step routes to (DESIGN §3.10; empty: the account named like the alert's exchange).
    account: str = ""
    #: The route's ``size_multiplier``: the capital this account puts in, relative to the alert's.
    size_multiplier: Decimal = Decimal(1)

    @property
    def stores(self) -> Stores:
        return self.engine.stores

    @property
    def exchange(self) -> str:
        """The account routed to (the name groups, keys, counters and pools are kept under)."""
        return self.account or self.signal.exchange.lower()

    @property
    def key(self) -> str:
        return group_key(self.exchange, self.signal.symbol, self.signal.timeframe, self.signal.side)

    @property
    def candle(self) -> int:
        return self.signal.candle(self.now)

    @property
    def group_id(self) -> str:
        """Id of the group this signal opens, if it opens one."""
        return derived_id("group", self.signal_id)

    @property
    def queue_id(self) -> str:
        """Id of the queue entry this signal creates, if it queues one."""
        return derived_id("queue", self.signal_id)


def derived_id(kind: str, signal_id: str) -> str:
    """A 32-hex id of ``kind`` for the signal ``signal_id`` (stable across deliveries of one signal)."""
    return hashlib.sha256(f"{kind}:{signal_id}".encode()).hexdigest()[:32]


def _signal_event(
    ctx: SignalContext,
    outcome: Outcome,
    reason: str,
    *,
    group_id: str | None = None,
    queue_id: str | None = None,
) -> Event:
    """The event recording this signal's outcome, to be written with the change it makes."""
    record = signal_record(
        signal_id=ctx.signal_id,
        received_at=ctx.now,
        intent=ctx.signal.intent,
        outcome=outcome,
        key=ctx.key,
        reason=reason,
        group_id=group_id,
        queue_id=queue_id,
        summary=ctx.signal.summary(),
    )
    return signal_event(record)


def route_signal(ctx: SignalContext) -> RouteResult:
    """Apply the signal and record it in the event log (with its change when that is a transaction, else
    on its own: one event per signal id, a replay writes nothing); returns the answer."""
    result = _route_entry(ctx, 1) if ctx.signal.is_entry else _route_exit(ctx)
    if result.recorded:
        return result
    ctx.stores.signals.record(
        signal_id=ctx.signal_id,
        received_at=ctx.now,
        intent=ctx.signal.intent,
        outcome=result.outcome,
        key=ctx.key,
        reason=result.reason,
        group_id=result.group_id,
        queue_id=result.queue_id,
        summary=ctx.signal.summary(),
    )
    return result


# --------------------------------------------------------------------------- entries


def _entry_request(ctx: SignalContext) -> EntryRequest | None:
    """The entry to plan: the signal's price, else the last known price; None when neither exists."""
    signal = ctx.signal
    price = signal.reference_price
    if price is None:
        price = ctx.stores.prices.get(ctx.exchange, signal.symbol)
    if price is None:
        return None
    capital = signal.capital_usd(price)
    return EntryRequest(
        exchange=ctx.exchange,
        symbol=signal.symbol,
        timeframe=signal.timeframe,
        side=signal.side,
        entry_price=price,
        signal_capital=None if capital is None else capital * ctx.size_multiplier,
        size_multiplier=ctx.size_multiplier,
        candle=ctx.candle,
        payload={"signal": signal.summary()},
        signal_id=ctx.signal_id,
        group_id=ctx.group_id,
    )


_NO_PRICE = "no entry price: the signal has no entry_price/close_price and no current price is known"


def _next_attempt(attempt: int) -> int:
    if attempt >= MAX_ROUTE_ATTEMPTS:
        raise RoutingConflict(f"the key kept changing under {attempt} routing attempts")
    return attempt + 1


def _route_entry(ctx: SignalContext, attempt: int) -> RouteResult:
    # One strongly consistent read: the key's locks, the pool counter, the account's counters, the market.
    state = ctx.state if attempt == 1 and ctx.state is not None else None
    if state is None:
        state = read_entry_state(ctx.stores, ctx.exchange, ctx.signal.symbol, ctx.key, ctx.now)
    if state.key_holder is not None:
        group = ctx.stores.groups.get(state.key_holder)
        if group is not None and group.is_open:
            return _route_pyramid(ctx, group, attempt, state)
    if state.queued_entry is not None:
        queued = ctx.stores.queue.get(state.queued_entry)
        if queued is not None:
            return _requeue(ctx, queued, attempt, state)
    return _open_new(ctx, attempt, state)


def _entry_refusal(ctx: SignalContext, state: EntryState | None) -> str | None:
    """Why no entry may be taken at all now (config problem, the document's pause or the operator's as
    read with ``state``), or None."""
    if ctx.config.refusal_reason:
        return ctx.config.refusal_reason
    return pause_reason(ctx.config.engine, state is not None and state.operator_paused)


def _route_pyramid(
    ctx: SignalContext, group: Group, attempt: int, state: EntryState | None = None
) -> RouteResult:
    if group.id == ctx.group_id:
        return RouteResult(Outcome.OPENED, "group opened by this signal", group_id=group.id)
    last = group.pyramids[-1] if group.pyramids else None
    if last is not None and last.signal_id == ctx.signal_id:
        return RouteResult(Outcome.PYRAMIDED, f"pyramid {last.index} added", group_id=group.id)
    if group.status == GroupStatus.CLOSING:
        return RouteResult(Outcome.IGNORED, "group is closing", group_id=group.id)
    duplicate = _pyramid_duplicate(ctx, group)
    if duplicate:
        return RouteResult(Outcome.IGNORED, duplicate, group_id=group.id)
    dca = ctx.engine.config.dca(group.exchange, group.symbol, group.timeframe)
    if group.pyramid_count >= dca.config.max_pyramids:
        return _at_pyramid_cap(ctx, group, dca.config.max_pyramids, attempt)
    refusal = _entry_refusal(ctx, state) or (f"configuration invalid: {dca.problem}" if dca.problem else None)
    if refusal:
        return RouteResult(Outcome.REJECTED, refusal, group_id=group.id)
    req = _entry_request(ctx)
    if req is None:
        return RouteResult(Outcome.REJECTED, _NO_PRICE, group_id=group.id)
    pool = ctx.config.pool
    if not pool.pyramids_bypass:
        count = ctx.stores.pool.count(ctx.exchange) if state is None else state.pool_open
        maximum = pool.max_open_for(ctx.exchange)
        if count >= maximum:
            full = f"pool full ({count}/{maximum})"
            return _queue_continuation(ctx, group, req, full, attempt)
    try:
        pyramid, orders = plan_pyramid(ctx.engine, group, req, ctx.config, ctx.now, state=state)
    except EntryRefused as refused:
        return RouteResult(Outcome.REJECTED, refused.reason, group_id=group.id)
    status = GroupStatus.PARTIALLY_FILLED if group.status == GroupStatus.ACTIVE else group.status
    updated = dataclasses.replace(group, status=status)
    reason = f"pyramid {pyramid.index} added with {len(orders)} legs"
    event = _signal_event(ctx, Outcome.PYRAMIDED, reason, group_id=group.id)
    try:
        ctx.stores.groups.add_pyramid(
            updated,
            pyramid,
            orders,
            now=ctx.now,
            exposure_cap_usd=ctx.config.engine.for_account(ctx.exchange).max_total_exposure_usd,
            events=[event],
        )
    except (StaleWrite, AlreadyExists):  # incl. CounterConflict: capital committed meanwhile
        return _route_entry(ctx, _next_attempt(attempt))
    return RouteResult(Outcome.PYRAMIDED, reason, group_id=group.id, recorded=True)


def _pyramid_duplicate(ctx: SignalContext, group: Group) -> str | None:
    """Why a pyramid signal is a duplicate: the newest pyramid's candle or an older one, else None.

    Candles only move forward: a late delivery for an older candle would add a pyramid at a stale
    price (the queue ignores it the same way, ``engine.domain.queue.decide_requeue``)."""
    last = group.last_candle
    if last is None or ctx.candle > last:
        return None
    if ctx.candle == last:
        return f"duplicate: one pyramid per candle (candle {last} already has pyramid {group.pyramid_count})"
    return (
        f"duplicate: candle {ctx.candle} is older than candle {last} of pyramid {group.pyramid_count}"
        " (a late or out-of-order alert)"
    )


def _at_pyramid_cap(ctx: SignalContext, group: Group, max_pyramids: int, attempt: int) -> RouteResult:
    """``ignored`` at ``max_pyramids``; with ``risk.reset_timer_on_replacement`` a running risk timer is
    reset too (DESIGN §3.8: the strategy still adds, so the group gets its full wait again)."""
    reason = f"pyramid cap reached ({group.pyramid_count}/{max_pyramids} max_pyramids)"
    if not ctx.config.risk.reset_timer_on_replacement or group.risk_timer_started_at is None:
        return RouteResult(Outcome.IGNORED, reason, group_id=group.id)
    try:
        ctx.stores.groups.save(dataclasses.replace(group, risk_timer_started_at=None), now=ctx.now)
    except StaleWrite:
        return _route_entry(ctx, _next_attempt(attempt))
    reason += "; risk timer reset (risk.reset_timer_on_replacement)"
    return RouteResult(Outcome.IGNORED, reason, group_id=group.id)


def _queue_continuation(
    ctx: SignalContext, group: Group, req: EntryRequest, pool_full: str, attempt: int
) -> RouteResult:
    """A pyramid that needs a slot (``pool.pyramids_bypass`` off) and finds none.

    The daily loss breaker rejects it first (a queued add-on would be placed after the reset at a stale
    price). A continuation already queued for the key is replaced by a later candle (``ignored`` for
    the same one) instead of a second queue entry, which the key's queue lock refuses."""
    breaker = pyramid_breaker(ctx.stores, ctx.config, ctx.now, ctx.exchange)
    if breaker:
        return RouteResult(Outcome.REJECTED, breaker, group_id=group.id)
    queued = ctx.stores.queue.find_by_key(ctx.key)
    if queued is not None:
        return _requeue(ctx, queued, attempt, None)
    return _enqueue(ctx, req, pool_full, attempt, pyramid_continuation=True)


def _requeue(ctx: SignalContext, queued: QueueEntry, attempt: int, state: EntryState | None) -> RouteResult:
    if queued.id == ctx.queue_id:
        return RouteResult(Outcome.QUEUED, queued.reason, queue_id=queued.id)
    if decide_requeue(queued, ctx.candle) == QueueDecision.DUPLICATE:
        return RouteResult(
            Outcome.IGNORED,
            f"duplicate: an entry for this key is already queued (candle {queued.candle})",
            queue_id=queued.id,
        )
    refusal = _entry_refusal(ctx, state)
    if refusal:
        return RouteResult(Outcome.REJECTED, refusal, queue_id=queued.id)
    req = _entry_request(ctx)
    if req is None:
        return RouteResult(Outcome.REJECTED, _NO_PRICE, queue_id=queued.id)
    replacement = replace_entry(
        queued, entry_price=req.entry_price, candle=req.candle, payload=req.queue_payload(), now=ctx.now
    )
    if not ctx.stores.queue.replace(replacement):
        return _route_entry(ctx, _next_attempt(attempt))  # promoted or removed meanwhile
    return RouteResult(
        Outcome.REPLACED,
        f"replaced the queued entry (replacement {replacement.replacement_count})",
        queue_id=queued.id,
    )


def _open_new(ctx: SignalContext, attempt: int, state: EntryState) -> RouteResult:
    req = _entry_request(ctx)
    if req is None:
        return RouteResult(Outcome.REJECTED, _NO_PRICE)
    decision = evaluate_new_group(ctx.engine, req, ctx.config, ctx.now, state=state)
    if decision.action == "reject":
        return RouteResult(Outcome.REJECTED, decision.reason)
    if decision.action == "queue" or decision.plan is None:
        return _enqueue(ctx, req, decision.reason, attempt, pyramid_continuation=False)
    plan = decision.plan
    max_open = ctx.config.pool.max_open_for(ctx.exchange)
    legs = f"{len(plan.orders)} legs"
    reason = "group opened with " + (legs if decision.reason == "ok" else f"{legs}; {decision.reason}")
    opened = ctx.stores.pool.open_group(
        plan.group,
        plan.orders,
        max_open=max_open,
        exposure_cap_usd=ctx.config.engine.for_account(ctx.exchange).max_total_exposure_usd,
        now=ctx.now,
        events=[_signal_event(ctx, Outcome.OPENED, reason, group_id=plan.group.id)],
    )
    if opened in (OpenResult.OPENED, OpenResult.ALREADY_OPEN):
        recorded = opened == OpenResult.OPENED
        return RouteResult(Outcome.OPENED, reason, group_id=plan.group.id, recorded=recorded)
    if opened == OpenResult.POOL_FULL:
        reason = f"pool full ({ctx.stores.pool.count(ctx.exchange)}/{max_open})"
        return _enqueue(ctx, req, reason, attempt, pyramid_continuation=False)
    if opened == OpenResult.EXPOSURE_FULL:
        # Another entry committed capital since the read: re-run the checks (shrink or reject).
        return _route_entry(ctx, _next_attempt(attempt))
    # KEY_TAKEN: a concurrent signal opened the key's group (-> pyramid), or the key's previous group
    # is closed but its slot not yet released (-> wait in the queue; slot_release promotes it).
    holder = ctx.stores.groups.get_open_by_key(ctx.key)
    if holder is not None:
        return _route_pyramid(ctx, holder, _next_attempt(attempt))
    reason = "the previous group of this key is still releasing its slot"
    return _enqueue(ctx, req, reason, attempt, pyramid_continuation=False)


def _enqueue(
    ctx: SignalContext, req: EntryRequest, reason: str, attempt: int, *, pyramid_continuation: bool
) -> RouteResult:
    entry = QueueEntry(
        id=ctx.queue_id,
        exchange=req.exchange,
        symbol=req.symbol,
        timeframe=req.timeframe,
        side=req.side,
        entry_price=req.entry_price,
        candle=req.candle,
        payload=req.queue_payload(),
        queued_at=ctx.now,
        updated_at=ctx.now,
        pyramid_continuation=pyramid_continuation,
        reason=reason,
    )
    event = _signal_event(ctx, Outcome.QUEUED, reason, queue_id=entry.id)
    if ctx.stores.queue.enqueue(entry, events=[event]):
        return RouteResult(Outcome.QUEUED, reason, queue_id=entry.id, recorded=True)
    if ctx.stores.queue.get(entry.id) is not None:
        return RouteResult(Outcome.QUEUED, reason, queue_id=entry.id)  # our own earlier write
    return _route_entry(ctx, _next_attempt(attempt))  # another signal queued this key meanwhile


# --------------------------------------------------------------------------- exits


def _route_exit(ctx: SignalContext) -> RouteResult:
    stores = ctx.stores
    group = stores.groups.get_open_by_key(ctx.key)
    queued = stores.queue.find_by_key(ctx.key)
    removed = queued.id if queued is not None and stores.queue.remove(queued.id) else None
    if group is not None:
        closing = request_close(
            ctx.engine,
            group.id,
            reason=CloseReason.EXIT,
            note=EXIT_SIGNAL_NOTE,
            now=ctx.now,
            config=ctx.config,
        )
        if closing:
            reason = "closing the group on an exit signal"
            if removed:
                reason += "; its queued entry was removed"
            return RouteResult(Outcome.EXITED, reason, group_id=group.id, queue_id=removed)
        if not removed:
            return RouteResult(Outcome.IGNORED, "group is already closing", group_id=group.id)
    if removed:
        return RouteResult(Outcome.EXITED, "queued entry removed", queue_id=removed)
    return RouteResult(Outcome.IGNORED, f"nothing open or queued for {ctx.key}")
