"""The risk engine (DESIGN §3.8): timers, the worst loser, the winners that pay for it, executed as orders.

:func:`run_risk` is what the ``risk_engine`` schedule calls every minute:

1. unless forced, ``StateStore.claim_interval("risk_engine", risk.interval_minutes)`` decides whether
   this invocation runs (so the interval changes live, and overlapping invocations run once);
2. one :class:`~engine.domain.risk.RiskCandidate` per open group (``risk_candidates``); timers are
   observed and saved;
3. **each account is evaluated on its own** (DESIGN §3.10): per account (in name order) the domain picks
   that account's loser, the winners among that account's groups and the offset plan — one loser per
   account per run, an account's loser paid only by its own winners. Groups with a risk close still in
   flight are not used as winners (their figures do not yet show that close);
4. each actionable plan is executed once per group version: ``mark_once("risk:<group id>:<version>")``
   for the loser and every winner (a marker already taken by another run aborts this one). Winners
   first — a market ``risk_close`` order each (id ``<winner id>-risk-<action id>``) with its live TPs
   re-sized (cancel + a smaller replacement) — then the loser's full close through
   ``closing.request_close`` (``close_reason`` ``risk``, close order purpose ``risk_close``; the slot
   is released by ``slot_release`` when it is closed). The action id derives from the loser's id and
   version, so a retried run that gets past the guard re-creates the same orders (``put_new`` keeps the
   first);
5. the action is recorded (``risk_actions``, ``details.account`` set) with the ``risk`` config version;
   skip-once flags the run honoured (a group that would have been eligible) are cleared.

The interval and the timers are not per account: one claim per run covers every account, and a timer
belongs to its group. An account whose run raises is logged and the other accounts still act; the first
such error is raised again at the end of the run (after the skip-once flags are cleared), so the
invocation still fails visibly. ``summary.accounts`` says what happened on each.

A ``risk`` document without any valid version stops the risk engine (it never closes positions on
stand-in defaults the operator did not choose); an invalid newest version falls back to the last
valid one as everywhere else (``engine.config``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext, Stores
from engine.app.positions import request_close
from engine.app.risk.candidates import GroupSnapshot, build_snapshots, fresh_snapshot, update_timers
from engine.app.risk.controls import clear_skip_once
from engine.app.risk.orders import place_winner_close, winner_close_in_flight
from engine.app.shared.views import (
    action_view,
    group_view,
    iso,
    number,
    plan_steps,
    plan_summary,
)
from engine.domain.config import ConfigSnapshot
from engine.domain.models import CloseReason, Group, GroupStatus
from engine.domain.risk import (
    RISK_STATUSES,
    RiskPlan,
    eligible,
    plan_offset,
    select_loser,
    select_winners,
    still_losing,
    timer_expired,
)
from engine.store import RiskActionRecord

logger = Logger(child=True)

SCHEDULE_NAME = "risk_engine"
#: The schedule fires every minute with some jitter: a run counts as due this much early.
SCHEDULE_SLACK = timedelta(seconds=5)
#: How long a per-group guard marker holds. An action changes its groups' versions (the loser starts
#: closing, a winner's figures change with its close fill), so a marker only matters until then; a run
#: that aborted after taking markers is retried once they expire.
GUARD_TTL = timedelta(minutes=15)
#: ``action`` of the record written when the loser recovered before the action (nothing closed).
RECOVERED_ACTION = "risk_skipped"
#: ``close_note`` of the loser the risk engine closes (its ``close_reason`` is ``risk``).
LOSER_CLOSE_NOTE = "risk engine: worst loser"
RECENT_ACTIONS = 20
#: Actions read before filtering by account (the table is scanned either way; this bounds the sort).
ALL_ACTIONS = 100_000


@dataclass
class AccountRiskRun:
    """What one risk run did on one account."""

    reason: str
    plan: RiskPlan | None = None
    action: RiskActionRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        """The account's part of the summary as JSON-ready data."""
        return {
            "reason": self.reason,
            "plan": plan_steps(self.plan) if self.plan is not None else [],
            "plan_summary": plan_summary(self.plan) if self.plan is not None else None,
            "action": action_view(self.action) if self.action is not None else None,
        }


@dataclass
class RiskRunSummary:
    """What one risk run did: per account (``accounts``, accounts with an open group), and overall.

    ``plan``/``action`` are those of the first account (in name order) that has a plan/an action, so a
    single-account engine reads as before; ``actions`` lists every account's action."""

    at: datetime
    ran: bool
    reason: str
    timers_started: list[str] = field(default_factory=list)
    timers_reset: list[str] = field(default_factory=list)
    skip_once_cleared: list[str] = field(default_factory=list)
    accounts: dict[str, AccountRiskRun] = field(default_factory=dict)

    @property
    def plan(self) -> RiskPlan | None:
        """The first account's plan (None when no account has an eligible loser)."""
        return next((run.plan for run in self.accounts.values() if run.plan is not None), None)

    @property
    def action(self) -> RiskActionRecord | None:
        """The first account's action (None when no account acted)."""
        return next((run.action for run in self.accounts.values() if run.action is not None), None)

    @property
    def actions(self) -> list[RiskActionRecord]:
        """Every account's action, in account name order."""
        return [run.action for run in self.accounts.values() if run.action is not None]

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what the handler returns)."""
        return {
            "at": iso(self.at),
            "ran": self.ran,
            "reason": self.reason,
            "timers_started": list(self.timers_started),
            "timers_reset": list(self.timers_reset),
            "skip_once_cleared": list(self.skip_once_cleared),
            "plan": plan_steps(self.plan) if self.plan is not None else [],
            "plan_summary": plan_summary(self.plan) if self.plan is not None else None,
            "action": action_view(self.action) if self.action is not None else None,
            "actions": [action_view(action) for action in self.actions],
            "accounts": {name: run.as_dict() for name, run in self.accounts.items()},
        }


def action_id_for(loser_id: str, loser_version: int) -> str:
    """Deterministic id of the action closing ``loser_id`` at ``loser_version``."""
    digest = hashlib.blake2b(f"{loser_id}:{loser_version}".encode(), digest_size=8).hexdigest()
    return f"ra{digest}"


def guard_marker(group_id: str, version: int) -> str:
    """The once-marker guarding one group version against a second action."""
    return f"risk:{group_id}:{version}"


def _by_account(snapshots: list[GroupSnapshot]) -> dict[str, list[GroupSnapshot]]:
    """The snapshots grouped by account, accounts in name order (each keeps the oldest-first order)."""
    grouped: dict[str, list[GroupSnapshot]] = {}
    for snapshot in snapshots:
        grouped.setdefault(snapshot.group.account, []).append(snapshot)
    return dict(sorted(grouped.items()))


def _plan(snapshots: list[GroupSnapshot], config: ConfigSnapshot, now: datetime) -> RiskPlan | None:
    """The domain's plan over one account's candidates (DESIGN §3.10: an account's loser is offset only
    by its own winners); groups with a risk close in flight are not winners."""
    candidates = [s.candidate for s in snapshots if s.candidate is not None]
    loser = select_loser(candidates, config.risk, now)
    if loser is None:
        return None
    busy = {s.group.id for s in snapshots if winner_close_in_flight(s.orders)}
    # Never offset across accounts, even if a caller passes several accounts' snapshots.
    winner_pool = [c for c in candidates if c.group.id not in busy and c.group.account == loser.group.account]
    return plan_offset(loser, select_winners(winner_pool, loser, config.risk), config.risk)


def _plans(
    snapshots: list[GroupSnapshot], config: ConfigSnapshot, now: datetime
) -> dict[str, RiskPlan | None]:
    """Each account's plan (accounts in name order)."""
    return {account: _plan(own, config, now) for account, own in _by_account(snapshots).items()}


def _skip_once_honoured(snapshots: list[GroupSnapshot], config: ConfigSnapshot, now: datetime) -> list[str]:
    """Groups flagged skip-once that this run would otherwise have considered as the loser."""
    honoured: list[str] = []
    for snapshot in snapshots:
        candidate = snapshot.candidate
        if candidate is None or not candidate.group.risk_skip_once:
            continue
        unflagged = replace(candidate, group=replace(candidate.group, risk_skip_once=False))
        if eligible(unflagged, config.risk, now):
            honoured.append(candidate.group.id)
    return honoured


def run_risk(ctx: EngineContext, now: datetime, *, force: bool = False) -> RiskRunSummary:
    """One risk-engine invocation (see the module docstring); ``force`` ignores the interval."""
    stores = ctx.stores
    config = ctx.config.snapshot()
    if not force:
        interval = timedelta(minutes=config.risk.interval_minutes) - SCHEDULE_SLACK
        if not stores.state.claim_interval(SCHEDULE_NAME, interval, now):
            return RiskRunSummary(at=now, ran=False, reason="interval not yet passed")
    problem = next((p for p in config.problems if p.document == "risk"), None)
    if problem is not None:
        reason = f"not acting: the risk configuration has no valid version: {problem}"
        logger.error("risk run: not acting", reason=reason)
        return RiskRunSummary(at=now, ran=True, reason=reason)
    snapshots = build_snapshots(stores, config)
    started, reset = update_timers(stores, snapshots, config.risk, now)
    summary = RiskRunSummary(at=now, ran=True, reason="", timers_started=started, timers_reset=reset)
    honoured = _skip_once_honoured(snapshots, config, now)
    failure: Exception | None = None
    for account, own in _by_account(snapshots).items():
        try:
            summary.accounts[account] = _run_account(ctx, own, snapshots, config, now)
        except Exception as error:  # one account's failure must not stop the others
            logger.exception("risk run: account failed", account=account)
            summary.accounts[account] = AccountRiskRun(reason=f"failed: {error}")
            failure = failure or error
    summary.reason = _overall_reason(summary.accounts)
    summary.skip_once_cleared = [gid for gid in honoured if clear_skip_once(stores, gid, now)]
    logger.info("risk run done", reason=summary.reason, summary=summary.as_dict())
    if failure is not None:
        raise failure
    return summary


def _run_account(
    ctx: EngineContext,
    own: list[GroupSnapshot],
    snapshots: list[GroupSnapshot],
    config: ConfigSnapshot,
    now: datetime,
) -> AccountRiskRun:
    """Plan and (when actionable) act on one account's groups."""
    plan = _plan(own, config, now)
    run = AccountRiskRun(reason="", plan=plan)
    if plan is None:
        run.reason = "no eligible loser"
    elif not plan.actionable:
        run.reason = f"not acting: {plan.reason}"
    elif (recovered := _recovered(ctx, plan, config, now)) is not None:
        run.reason = f"not acting: {recovered}"
    else:
        run.action = _execute(ctx, plan, snapshots, config, now)
        run.reason = (
            f"closed loser {plan.loser.group_id} offset by {len(plan.winners)} winner(s)"
            if run.action is not None
            else "not acting: another run is acting on these groups"
        )
    return run


def _overall_reason(accounts: dict[str, AccountRiskRun]) -> str:
    """One account (or none): its reason as before; several: ``"<account>: <reason>"`` joined by ``"; "``."""
    if not accounts:
        return "no eligible loser"
    if len(accounts) == 1:
        return next(iter(accounts.values())).reason
    return "; ".join(f"{account}: {run.reason}" for account, run in accounts.items())


def _recovered(ctx: EngineContext, plan: RiskPlan, config: ConfigSnapshot, now: datetime) -> str | None:
    """Re-check the loser at the moment of acting (DESIGN §3.8, issue 12 finding 6): its figures
    recomputed from its orders at the latest price must still be at or below the loss threshold.

    Returns why it is left alone (also recorded as a ``risk_skipped`` action, one per loser version),
    or None when it is still losing.
    """
    fresh = fresh_snapshot(ctx.stores, plan.loser.group_id, config)
    if fresh is None or fresh.candidate is None or still_losing(fresh.candidate, config.risk):
        return None
    group = fresh.group
    figures = group.figures
    reason = (
        f"loser {group.symbol} recovered to {figures.unrealized_pnl_percent:.2f}% "
        f"({figures.unrealized_pnl_usd:.2f} USD), above the loss threshold "
        f"{config.risk.loss_threshold_percent}%: left open"
    )
    logger.info("risk: loser recovered before the action", group_id=group.id, reason=reason)
    ctx.stores.risk_actions.record(
        RiskActionRecord(
            id=f"{action_id_for(group.id, group.version)}-skipped",
            at=now,
            action=RECOVERED_ACTION,
            reason=reason,
            group_id=group.id,
            details={
                "account": group.account,
                "unrealized_pnl_percent": figures.unrealized_pnl_percent,
                "unrealized_pnl_usd": figures.unrealized_pnl_usd,
                "price": figures.last_price,
                "loss_threshold_percent": config.risk.loss_threshold_percent,
                "timer_started_at": iso(group.risk_timer_started_at),
                "config_version": config.versions.get("risk", 0),
            },
        )
    )
    return reason


def _execute(
    ctx: EngineContext, plan: RiskPlan, snapshots: list[GroupSnapshot], config: ConfigSnapshot, now: datetime
) -> RiskActionRecord | None:
    """Carry out an actionable plan once (guarded); the recorded action, or None when guarded off."""
    stores = ctx.stores
    by_id = {s.group.id: s for s in snapshots}
    loser = by_id[plan.loser.group_id].group
    involved = [loser, *(by_id[w.group_id].group for w in plan.winners)]
    for group in sorted(involved, key=lambda g: g.id):
        if not stores.state.mark_once(guard_marker(group.id, group.version), GUARD_TTL, now=now):
            logger.warning("risk: group version already acted on", group_id=group.id, version=group.version)
            return None
    current = stores.groups.get(loser.id)
    if current is None or current.status not in RISK_STATUSES or current.version != loser.version:
        logger.warning("risk: loser changed before the close; not acting", group_id=loser.id)
        return None
    action_id = action_id_for(loser.id, loser.version)
    winner_details: list[dict[str, Any]] = []
    for close in plan.winners:
        snapshot = by_id[close.group_id]
        if snapshot.candidate is None:
            continue
        placed = place_winner_close(stores, snapshot, snapshot.candidate.precision, close, action_id, now)
        winner_details.append(placed)
    request_close(ctx, loser.id, reason=CloseReason.RISK, note=LOSER_CLOSE_NOTE, now=now, config=config)
    figures = loser.figures
    action = RiskActionRecord(
        id=action_id,
        at=now,
        action="risk_offset",
        reason=(
            f"worst loser {loser.symbol} {figures.unrealized_pnl_percent:.2f}% "
            f"({plan.loser.loss_usd:.2f} USD) closed, offset by {len(plan.winners)} winner(s)"
        ),
        group_id=loser.id,
        related_group_ids=tuple(close.group_id for close in plan.winners),
        amount_usd=plan.covered_usd,
        details={
            "account": loser.account,
            "loser": {
                "group_id": loser.id,
                "symbol": loser.symbol,
                "qty": plan.loser.qty,
                "price": plan.loser.price,
                "loss_usd": plan.loser.loss_usd,
                "fee_usd": plan.loser.fee_usd,
                "unrealized_pnl_percent": figures.unrealized_pnl_percent,
                "timer_started_at": iso(loser.risk_timer_started_at),
            },
            "winners": winner_details,
            "realized_usd": plan.covered_usd,
            "needed_usd": plan.needed_usd,
            "fees_usd": plan.fees_usd,
            "skipped": [{"group_id": s.group_id, "reason": s.reason} for s in plan.skipped],
            "config_version": config.versions.get("risk", 0),
        },
    )
    stores.risk_actions.record(action)
    return action


def _account_plan_view(plan: RiskPlan | None, by_id: dict[str, Group]) -> dict[str, Any]:
    """The loser, winners and plan of one account's next run."""
    loser = by_id.get(plan.loser.group_id) if plan is not None else None
    winners = [by_id[w.group_id] for w in plan.winners] if plan is not None else []
    return {
        "loser": group_view(loser) if loser is not None else None,
        "winners": [group_view(group) for group in winners],
        "plan": plan_steps(plan) if plan is not None else [],
        "plan_summary": plan_summary(plan) if plan is not None else None,
    }


def _action_account(action: RiskActionRecord, accounts: dict[str, str], stores: Stores) -> str | None:
    """The account an action belongs to: ``details.account``, else its group's (actions recorded
    before the accounts existed; ``accounts`` caches group id → account)."""
    named = action.details.get("account")
    if isinstance(named, str) and named:
        return named
    if action.group_id is None:
        return None
    if action.group_id not in accounts:
        group = stores.groups.get(action.group_id)
        accounts[action.group_id] = group.account if group is not None else ""
    return accounts[action.group_id] or None


def risk_status(ctx: EngineContext, now: datetime, account: str | None = None) -> dict[str, Any]:
    """The ``GET /risk`` view: running timers, the loser and winners the next run would pick, the plan
    it would execute (with the stored timers, not changing anything) and the recent actions.

    Each account has its own plan (``accounts``: name → loser, winners, plan, plan_summary); the
    top-level ``loser``/``winners``/``plan`` are those of the account holding the worst eligible loser
    (so a single-account engine reads as before). ``account`` narrows everything (timers, plan,
    blocked/skip-once/closing groups, actions) to that account."""
    stores = ctx.stores
    config = ctx.config.snapshot()
    snapshots = build_snapshots(stores, config)
    if account is not None:
        snapshots = [s for s in snapshots if s.group.account == account]
    timers = []
    for snapshot in snapshots:
        group = snapshot.group
        started = group.risk_timer_started_at
        if started is None:
            continue
        timers.append(
            {
                "group_id": group.id,
                "account": group.account,
                "exchange": group.exchange,
                "symbol": group.symbol,
                "side": group.side.value,
                "started_at": iso(started),
                "expires_at": iso(started + timedelta(minutes=config.risk.post_full_wait_minutes)),
                "expired": timer_expired(group, config.risk, now),
                "unrealized_pnl_percent": number(group.figures.unrealized_pnl_percent),
                "risk_blocked": group.risk_blocked,
                "risk_skip_once": group.risk_skip_once,
            }
        )
    plans = _plans(snapshots, config, now)
    losers = [plan.loser.group_id for plan in plans.values() if plan is not None]
    worst = select_loser(
        [s.candidate for s in snapshots if s.candidate is not None and s.group.id in losers], config.risk, now
    )
    by_id = {s.group.id: s.group for s in snapshots}
    top = plans.get(worst.group.account) if worst is not None else None
    group_accounts = {s.group.id: s.group.account for s in snapshots}
    recent = stores.risk_actions.list_recent(RECENT_ACTIONS if account is None else ALL_ACTIONS)
    if account is not None:
        recent = [a for a in recent if _action_account(a, group_accounts, stores) == account][:RECENT_ACTIONS]
    return {
        "at": iso(now),
        "account": account,
        "interval_minutes": config.risk.interval_minutes,
        "config_version": config.versions.get("risk", 0),
        "timers": timers,
        **_account_plan_view(top, by_id),
        "accounts": {name: _account_plan_view(plan, by_id) for name, plan in plans.items()},
        "blocked": [s.group.id for s in snapshots if s.group.risk_blocked],
        "skip_once": [s.group.id for s in snapshots if s.group.risk_skip_once],
        "closing": [s.group.id for s in snapshots if s.group.status == GroupStatus.CLOSING],
        "actions": [action_view(action) for action in recent],
    }
