"""Risk engine rules (DESIGN §3.8): loss timers, loser and winner selection, the offset plan.

Everything here decides and returns plans; nothing is executed. The caller (``engine.app.risk``) builds
one :class:`RiskCandidate` per open group with fresh figures (``last_price``, unrealised PnL), stores
the timer from :func:`next_timer` on the group, then calls :func:`evaluate` and turns an actionable
:class:`RiskPlan` into close orders. Clearing ``risk_skip_once`` after a run is the caller's job.

Decisions written down here:

- Timer ``after_pyramids``: at least ``required_pyramids`` entries exist **and** at least that many of
  them have all their legs filled (``RiskCandidate.pyramids_filled``). A later pyramid's unfilled deep
  legs do not hold the timer back (its arrival resets the timer anyway).
- A running timer keeps running while the loss is between the threshold and 0; it resets only when the
  unrealised pnl % is ≥ 0, on a new pyramid, or on a replacement if ``reset_timer_on_replacement``.
  :func:`next_timer` returns ``None`` on a reset; the next run restarts it if the condition still holds.
- ``closing`` groups are neither losers nor winners (a close is already in flight). A group needs a
  ``last_price`` and at least one quantity step to be either.
- The loser closes ``round_down(held, step)`` (sub-step dust is the closed-state rule's business, §3.5).
  A winner closes ``take / (price - avg_entry)`` (mirrored for shorts) rounded **up** to the step, but
  never more than it holds (rounded down): rounding down would leave the offset short of the loss.
- Fees at ``fee_percent`` are charged on the notional of every close: the loser's and each winner's.
  A winner's take covers its *own* close fee too: to cover ``R`` net it closes
  ``R / (u - price * fee)`` units where ``u`` is its profit per unit. ``needed_usd`` is the loser's loss
  plus all planned fees; ``covered_usd`` is the gross profit the winners' closes realise.
- ``actionable`` means the winners' closes, **as rounded**, realise at least the loss plus every close's
  fee (``covered_usd >= needed_usd``). A plan that cannot cover does not act: DESIGN §3.8's example
  closes W2 9 of 10 with fees 0.1 % (8 at fee 0). A skipped winner (close notional under
  ``min_close_notional``) covers nothing, which can leave the plan not actionable.
- At the moment of acting the caller re-checks the loser with :func:`still_losing` (a loser that
  recovered above the threshold is left alone).
- ``loss_usd`` of the loser is a positive amount (the loss); ``realized_usd`` of a winner is positive.
- The timer as observed now (:func:`observed_timer`, with :func:`dca_progress`): a pyramid created after
  the running timer started resets it (*new pyramid*); a queued pyramid continuation for the group's key
  replaced after it started resets it when ``risk.reset_timer_on_replacement`` (*replacement*). The risk
  engine and position refreshes both call it with what they read.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from engine.domain.accounting import is_fully_filled
from engine.domain.config import RiskConfig
from engine.domain.models import (
    OPEN_GROUP_STATUSES,
    ZERO,
    Group,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderStatus,
    QueueEntry,
    Side,
)
from engine.domain.money import plain, round_down, round_up

#: Statuses in which a group may be chosen as loser or winner (open, no close in flight).
RISK_STATUSES = OPEN_GROUP_STATUSES - {GroupStatus.CLOSING}


@dataclass(frozen=True)
class RiskCandidate:
    """What the risk engine needs to know about one group, built by the caller.

    ``group.figures`` must be fresh: ``quantity``, ``avg_entry``, ``unrealized_pnl_usd``,
    ``unrealized_pnl_percent`` and ``last_price``. ``pyramids_filled`` counts pyramids whose legs are
    all filled; ``all_dca_submitted``/``all_dca_filled`` cover every leg of every pyramid.
    """

    group: Group
    precision: MarketPrecision
    pyramids_filled: int
    all_dca_submitted: bool
    all_dca_filled: bool

    @property
    def closable_quantity(self) -> Decimal:
        """Held quantity rounded down to the market step (what a close order may sell)."""
        quantity = self.group.figures.quantity
        return round_down(quantity, self.precision.step) if quantity > ZERO else ZERO

    @property
    def holds_a_step(self) -> bool:
        """True when at least one market step is held (``closable_quantity > 0``, without rounding)."""
        step = self.precision.step
        return step > ZERO and self.group.figures.quantity >= step


@dataclass(frozen=True)
class LoserClose:
    """The loser's full close: quantity, price it is valued at, the loss (positive USD) and the fee."""

    group_id: str
    side: Side
    qty: Decimal
    price: Decimal
    loss_usd: Decimal
    fee_usd: Decimal


@dataclass(frozen=True)
class WinnerClose:
    """A winner's partial close and the gross profit it realises (before its fee)."""

    group_id: str
    side: Side
    qty: Decimal
    price: Decimal
    avg_entry: Decimal
    realized_usd: Decimal
    fee_usd: Decimal


@dataclass(frozen=True)
class SkippedWinner:
    """A selected winner the plan does not use, and why."""

    group_id: str
    reason: str


@dataclass(frozen=True)
class RiskPlan:
    """The offset plan: close the loser in full, partially close winners to pay for it.

    ``needed_usd`` = loser loss + ``fees_usd`` (every planned close); ``covered_usd`` = Σ winners'
    ``realized_usd``. ``actionable`` is False (with ``reason``) when the winners cannot cover it.
    """

    loser: LoserClose
    winners: list[WinnerClose]
    fees_usd: Decimal
    needed_usd: Decimal
    covered_usd: Decimal
    actionable: bool
    reason: str
    skipped: list[SkippedWinner] = field(default_factory=list)


def _profit_per_unit(side: Side, avg_entry: Decimal, price: Decimal) -> Decimal:
    """Profit of closing one unit at ``price`` (long: price - avg; short: avg - price)."""
    return price - avg_entry if side == Side.LONG else avg_entry - price


def timer_condition_met(candidate: RiskCandidate, cfg: RiskConfig) -> bool:
    """True when the group has reached ``cfg.timer_start`` and its unrealised pnl % ≤ the threshold.

    ``after_pyramids``: ≥ ``required_pyramids`` entries and that many fully filled;
    ``after_all_dca_submitted``: every leg placed; ``after_all_dca_filled``: every leg filled.
    """
    group = candidate.group
    if cfg.timer_start == "after_pyramids":
        required = cfg.required_pyramids
        stage = group.pyramid_count >= required and candidate.pyramids_filled >= required
    elif cfg.timer_start == "after_all_dca_submitted":
        stage = candidate.all_dca_submitted
    else:
        stage = candidate.all_dca_filled
    return stage and group.figures.unrealized_pnl_percent <= cfg.loss_threshold_percent


def next_timer(
    candidate: RiskCandidate,
    cfg: RiskConfig,
    now: datetime,
    *,
    new_pyramid: bool = False,
    replacement: bool = False,
) -> datetime | None:
    """The group's risk timer start after this observation (store it as ``risk_timer_started_at``).

    ``None`` (reset / not running) when the group is terminal, its unrealised pnl % is ≥ 0, a new
    pyramid arrived (``new_pyramid``) or, if ``cfg.reset_timer_on_replacement``, a queued pyramid was
    replaced (``replacement``). Otherwise a running timer is kept, and a stopped one starts at ``now``
    when :func:`timer_condition_met`.
    """
    group = candidate.group
    if group.status not in OPEN_GROUP_STATUSES:
        return None
    if group.figures.unrealized_pnl_percent >= ZERO:
        return None
    if new_pyramid or (replacement and cfg.reset_timer_on_replacement):
        return None
    if group.risk_timer_started_at is not None:
        return group.risk_timer_started_at
    return now if timer_condition_met(candidate, cfg) else None


def timer_expired(group: Group, cfg: RiskConfig, now: datetime) -> bool:
    """True when the group's timer runs and ``post_full_wait_minutes`` have passed since it started."""
    started = group.risk_timer_started_at
    return started is not None and now - started >= timedelta(minutes=cfg.post_full_wait_minutes)


def eligible(candidate: RiskCandidate, cfg: RiskConfig, now: datetime) -> bool:
    """True when the group may be closed as the loser.

    Open (not closing), not blocked, not skip-once, timer expired, older than ``min_age_minutes``
    (0 = no filter), holding at least one step, priced, and at an unrealised loss.
    """
    group = candidate.group
    figures = group.figures
    if figures.unrealized_pnl_usd >= ZERO:  # most groups: the cheapest test first
        return False
    if group.status not in RISK_STATUSES or group.risk_blocked or group.risk_skip_once:
        return False
    if not timer_expired(group, cfg, now):
        return False
    if cfg.min_age_minutes > 0 and now - group.created_at < timedelta(minutes=cfg.min_age_minutes):
        return False
    return figures.last_price is not None and candidate.holds_a_step


def select_loser(candidates: Iterable[RiskCandidate], cfg: RiskConfig, now: datetime) -> RiskCandidate | None:
    """The eligible group to close: highest loss % (most negative), then highest USD loss, then the
    oldest (``created_at``), then the group id. None when no group is eligible."""
    pool = [candidate for candidate in candidates if eligible(candidate, cfg, now)]
    if not pool:
        return None
    return min(
        pool,
        key=lambda c: (
            c.group.figures.unrealized_pnl_percent,
            c.group.figures.unrealized_pnl_usd,
            c.group.created_at,
            c.group.id,
        ),
    )


def select_winners(
    candidates: Iterable[RiskCandidate], loser: RiskCandidate, cfg: RiskConfig
) -> list[RiskCandidate]:
    """Groups that can pay for the loser: open (not closing), not blocked, priced, holding at least one
    step, positive unrealised USD, not the loser; largest USD profit first (then group id), at most
    ``cfg.max_winners_to_combine``. Skip-once applies to losers only."""
    winners = (
        c
        for c in candidates
        if c.group.figures.unrealized_pnl_usd > ZERO
        and c.group.status in RISK_STATUSES
        and not c.group.risk_blocked
        and c.group.figures.last_price is not None
        and c.group.id != loser.group.id
        and c.holds_a_step
    )
    return heapq.nsmallest(
        cfg.max_winners_to_combine, winners, key=lambda c: (-c.group.figures.unrealized_pnl_usd, c.group.id)
    )


def _loser_close(loser: RiskCandidate, fee_rate: Decimal) -> LoserClose:
    group = loser.group
    price = group.figures.last_price
    if price is None:
        raise ValueError(f"loser {group.id} has no last price")
    qty = loser.closable_quantity
    return LoserClose(
        group_id=group.id,
        side=group.side,
        qty=qty,
        price=price,
        loss_usd=max(-group.figures.unrealized_pnl_usd, ZERO),
        fee_usd=qty * price * fee_rate,
    )


def plan_offset(loser: RiskCandidate, winners: Sequence[RiskCandidate], cfg: RiskConfig) -> RiskPlan:
    """Plan the loser's full close and the winners' partial closes that pay for it (see module doc).

    Winners are used in the given order; each covers what is still missing net of its own close fee.
    Raises ``ValueError`` when the loser has no ``last_price`` (:func:`eligible` excludes that).
    """
    fee_rate = cfg.fee_percent / Decimal(100)
    loser_close = _loser_close(loser, fee_rate)
    remaining = loser_close.loss_usd + loser_close.fee_usd
    closes: list[WinnerClose] = []
    skipped: list[SkippedWinner] = []
    for winner in winners:
        if remaining <= ZERO:
            break
        close_or_reason = _winner_close(winner, remaining, fee_rate, cfg)
        if isinstance(close_or_reason, str):
            skipped.append(SkippedWinner(winner.group.id, close_or_reason))
            continue
        closes.append(close_or_reason)
        remaining -= close_or_reason.realized_usd - close_or_reason.fee_usd
    fees = loser_close.fee_usd + sum((c.fee_usd for c in closes), ZERO)
    needed = loser_close.loss_usd + fees
    covered = sum((c.realized_usd for c in closes), ZERO)
    actionable = remaining <= ZERO
    if actionable:
        reason = ""
    elif not winners:
        reason = "no winner with unrealised profit to offset the loss"
    else:
        reason = (
            f"winners' profit does not cover the loss plus fees: {plain(remaining)} USD short "
            f"(loss {plain(loser_close.loss_usd)} + fees {plain(fees)} USD)"
        )
    return RiskPlan(
        loser=loser_close,
        winners=closes,
        fees_usd=fees,
        needed_usd=needed,
        covered_usd=covered,
        actionable=actionable,
        reason=reason,
        skipped=skipped,
    )


def _winner_close(
    winner: RiskCandidate, remaining: Decimal, fee_rate: Decimal, cfg: RiskConfig
) -> WinnerClose | str:
    """The close covering ``remaining`` (net of its own fee) from ``winner``: quantity rounded up to
    the step, at most what it holds; or the reason the winner cannot be used."""
    group = winner.group
    figures = group.figures
    price = figures.last_price
    if price is None:
        return "no last price"
    unit = _profit_per_unit(group.side, figures.avg_entry, price)
    unit_net = unit - price * fee_rate
    if unit_net <= ZERO:
        return "close fee exceeds its profit per unit"
    holdable = winner.closable_quantity
    if min(figures.unrealized_pnl_usd, holdable * unit) <= ZERO:
        return "no closable profit"
    wanted = remaining / unit_net
    qty = min(round_up(wanted, winner.precision.step), holdable)
    if qty <= ZERO:
        return f"quantity {plain(wanted)} rounds to zero at step {plain(winner.precision.step)}"
    notional = qty * price
    if notional < cfg.min_close_notional:
        return (
            f"close of {plain(qty)} is {plain(notional)} USD, under the minimum close notional "
            f"{plain(cfg.min_close_notional)} USD"
        )
    return WinnerClose(
        group_id=group.id,
        side=group.side,
        qty=qty,
        price=price,
        avg_entry=figures.avg_entry,
        realized_usd=qty * unit,
        fee_usd=notional * fee_rate,
    )


def still_losing(candidate: RiskCandidate, cfg: RiskConfig) -> bool:
    """Re-check at the moment of acting (DESIGN §3.8): the loser, at its fresh figures, is still at or
    below ``loss_threshold_percent`` and at an unrealised loss. A recovered loser is left alone."""
    figures = candidate.group.figures
    return figures.unrealized_pnl_usd < ZERO and figures.unrealized_pnl_percent <= cfg.loss_threshold_percent


def evaluate(candidates: Sequence[RiskCandidate], cfg: RiskConfig, now: datetime) -> RiskPlan | None:
    """One risk run: pick the loser, pick winners, plan the offset; None when no group is eligible."""
    loser = select_loser(candidates, cfg, now)
    if loser is None:
        return None
    return plan_offset(loser, select_winners(candidates, loser, cfg), cfg)


#: Entry-leg statuses that mean the exchange accepted the order.
SUBMITTED_STATUSES = frozenset(
    {OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED}
)


def dca_progress(group: Group, orders: Sequence[Order]) -> tuple[int, bool, bool]:
    """``(pyramids_filled, all_dca_submitted, all_dca_filled)`` from the group's entry orders.

    A pyramid is filled when it has entry legs and every one of them is fully filled. "All submitted"
    means every leg of every pyramid exists and was accepted by the exchange (open, partially filled,
    filled, or cancelled after that); "all filled" that every one is fully filled.
    """
    entries = [order for order in orders if order.purpose == OrderPurpose.ENTRY]
    pyramids_filled = 0
    for pyramid in group.pyramids:
        legs = [order for order in entries if order.pyramid == pyramid.index]
        if legs and all(is_fully_filled(leg) for leg in legs):
            pyramids_filled += 1
    expected_legs = sum(pyramid.leg_count for pyramid in group.pyramids)
    complete = bool(entries) and len(entries) >= expected_legs
    all_submitted = complete and all(order.status in SUBMITTED_STATUSES for order in entries)
    all_filled = complete and all(is_fully_filled(order) for order in entries)
    return pyramids_filled, all_submitted, all_filled


def _new_pyramid_since(group: Group, started: datetime | None) -> bool:
    return started is not None and any(p.created_at > started for p in group.pyramids[1:])


def _replaced_since(group: Group, started: datetime | None, queued: Sequence[QueueEntry]) -> bool:
    if started is None:
        return False
    return any(
        entry.key == group.key and entry.replacement_count > 0 and entry.updated_at > started
        for entry in queued
    )


def observed_timer(
    candidate: RiskCandidate, cfg: RiskConfig, now: datetime, queued: Sequence[QueueEntry]
) -> datetime | None:
    """The group's timer start after this observation (see the module docstring)."""
    group = candidate.group
    started = group.risk_timer_started_at
    return next_timer(
        candidate,
        cfg,
        now,
        new_pyramid=_new_pyramid_since(group, started),
        replacement=_replaced_since(group, started, queued),
    )
