"""Protections (DESIGN §3.9): stop-loss, trailing take-profit, trailing stop, break-even, time limit.

Pure: :func:`evaluate` takes the DCA document's ``protection`` settings, the state kept on the group
(:class:`~engine.domain.models.ProtectionState`) and what the group looks like now
(:class:`ProtectionInputs`), and returns the next state and, when a rule fires, the
:class:`Trigger` that closes the group. Long is written out below; short is mirrored (below <-> above,
highest <-> lowest, round down <-> round up).

Rules, in the order they are evaluated on one observed price:

* **Stop-loss.** ``risk.stop_loss`` of the alert (absolute, ``state.alert_stop``) wins over
  ``stop_loss_percent``, which puts the stop at basis * (1 - pct/100); basis ``average`` = the average
  entry of the remaining lots (it follows new pyramids' fills), ``first_entry`` = the average fill price
  of pyramid 1's first leg. Armed at the first fill (``stop_loss_after: first_fill``) or once every leg
  of every pyramid is filled (``all_legs_filled``); armed stays armed (``state.stop_armed``), also when a
  new pyramid adds resting legs.
* **Break-even.** Once ``breakeven_after_tp_legs`` leg take-profits have filled, a stop at
  avg * (1 + f) / (1 - f), f = the fee rate: a stop-out then costs nothing net of fees.
* **Trailing stop.** Armed at the first fill when ``activation_percent`` is 0, else once the price
  reaches avg * (1 + activation/100); then stop = max(previous, price * (1 - distance/100)) rounded down
  to the tick — it never moves down.
* The **ruling stop** is the highest of the armed stops (ties: stop-loss, break-even, trailing stop);
  it fires when price <= stop, with that rule's close reason.
* **Trailing take-profit.** Arms when price >= avg * (1 + activation/100) and from then follows the highest
  price seen (``state.high``, in whole ticks); fires when price <= high * (1 - deviation/100). A new
  pyramid after it armed disarms it (the position changed; it re-arms from the new average).
* **Alert take-profit.** ``risk.take_profit`` (absolute): fires when price >= it (``take_profit``).
* **Time limit.** Fires once ``time_limit_minutes`` have passed since the group's ``created_at``, whether or
  not anything is held (resting legs are cancelled then).

One trigger per evaluation: a falling price that crosses both the ruling stop and the trailing
take-profit's level fires the higher of the two (the one it crossed first; a tie goes to the trailing
take-profit); then the alert take-profit; the time limit last. Price rules need a price and a held
position; nothing fires on a group holding nothing but the time limit.

State moves only in whole ticks (``high`` and ``trailing_stop`` are tick-rounded and change only when the
price makes a new best), so price noise never changes the state and the group is not saved for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from engine.domain.config import ProtectionConfig
from engine.domain.models import CloseReason, ProtectionState, Side
from engine.domain.money import plain, round_down, round_up

__all__ = [
    "ProtectionInputs",
    "ProtectionResult",
    "Trigger",
    "breakeven_price",
    "evaluate",
    "slippage_refusal",
]

_HUNDRED = Decimal(100)
_ONE = Decimal(1)


@dataclass(frozen=True)
class ProtectionInputs:
    """What one evaluation looks at (all from the group, its orders and the last observed price)."""

    side: Side
    #: Last price observed by order_sync; None = not known yet (only the time limit can fire).
    price: Decimal | None
    now: datetime
    created_at: datetime
    #: True when the group holds a sellable quantity (at least one step).
    holds: bool
    #: Average entry of the remaining lots (``GroupFigures.avg_entry``).
    avg_entry: Decimal
    #: Average fill price of pyramid 1's first leg, None while it has no fill.
    first_entry: Decimal | None
    #: At least one entry leg has a fill.
    any_fill: bool
    #: Every entry leg of every pyramid is fully filled.
    all_legs_filled: bool
    #: Entry legs whose take-profit has filled.
    leg_tps_filled: int
    pyramid_count: int
    tick: Decimal
    #: The account's fee rate as a fraction (0.001 for 0.1 %).
    fee_rate: Decimal = Decimal(0)


@dataclass(frozen=True)
class Trigger:
    """A rule that fired: the group's ``close_reason`` and ``close_note``; ``level`` the price it watched."""

    reason: CloseReason
    note: str
    level: Decimal | None = None


@dataclass(frozen=True)
class ProtectionResult:
    """The state to keep and the trigger, if any."""

    state: ProtectionState
    trigger: Trigger | None = None


def _long(side: Side) -> bool:
    return Side(side) == Side.LONG


def _away(side: Side, reference: Decimal, percent: Decimal) -> Decimal:
    """``percent`` % on the position's favourable side of ``reference`` (above for long)."""
    factor = percent / _HUNDRED
    return reference * (_ONE + factor) if _long(side) else reference * (_ONE - factor)


def _against(side: Side, reference: Decimal, percent: Decimal) -> Decimal:
    """``percent`` % on the position's adverse side of ``reference`` (below for long)."""
    factor = percent / _HUNDRED
    return reference * (_ONE - factor) if _long(side) else reference * (_ONE + factor)


def _reached_up(side: Side, price: Decimal, level: Decimal) -> bool:
    """Price at or beyond ``level`` in the position's favour (long: >=)."""
    return price >= level if _long(side) else price <= level


def _reached_down(side: Side, price: Decimal, level: Decimal) -> bool:
    """Price at or beyond ``level`` against the position (long: <=)."""
    return price <= level if _long(side) else price >= level


def _better(side: Side, a: Decimal, b: Decimal) -> bool:
    """True when ``a`` is strictly better for the position than ``b`` (long: higher)."""
    return a > b if _long(side) else a < b


def _on_tick(side: Side, price: Decimal, tick: Decimal) -> Decimal:
    """A best price on the tick grid, never beyond what was observed (long: rounded down)."""
    return round_down(price, tick) if _long(side) else round_up(price, tick)


def breakeven_price(side: Side, avg_entry: Decimal, fee_rate: Decimal) -> Decimal:
    """The stop at which closing costs nothing net of fees: avg * (1 + f) / (1 - f) long,
    avg * (1 - f) / (1 + f) short."""
    if _long(side):
        return avg_entry * (_ONE + fee_rate) / (_ONE - fee_rate)
    return avg_entry * (_ONE - fee_rate) / (_ONE + fee_rate)


def _fixed_stop(cfg: ProtectionConfig, state: ProtectionState, inp: ProtectionInputs) -> Decimal | None:
    if not state.stop_armed:
        return None
    if state.alert_stop is not None:
        return state.alert_stop
    if cfg.stop_loss_percent is None:
        return None
    basis = inp.avg_entry if cfg.stop_loss_basis == "average" else inp.first_entry
    if basis is None or basis <= 0:
        return None
    return _against(inp.side, basis, cfg.stop_loss_percent)


def _stop_armed(cfg: ProtectionConfig, state: ProtectionState, inp: ProtectionInputs) -> bool:
    if state.stop_armed:
        return True
    if state.alert_stop is None and cfg.stop_loss_percent is None:
        return False
    if cfg.stop_loss_after == "all_legs_filled":
        return inp.all_legs_filled and inp.any_fill
    return inp.any_fill


def _trailing_stop(cfg: ProtectionConfig, state: ProtectionState, inp: ProtectionInputs) -> Decimal | None:
    """The trailing stop after this price (stored value when it does not move)."""
    rule = cfg.trailing_stop
    if rule is None:
        return state.trailing_stop
    price, side = inp.price, inp.side
    if price is None or not inp.holds or inp.avg_entry <= 0:
        return state.trailing_stop
    if state.trailing_stop is None:
        activation = _away(side, inp.avg_entry, rule.activation_percent)
        if rule.activation_percent > 0 and not _reached_up(side, price, activation):
            return None
    candidate = _on_tick(side, _against(side, price, rule.distance_percent), inp.tick)
    if state.trailing_stop is None or _better(side, candidate, state.trailing_stop):
        return candidate
    return state.trailing_stop


def _trailing_take_profit(
    cfg: ProtectionConfig, state: ProtectionState, inp: ProtectionInputs
) -> tuple[bool, Decimal | None, int | None]:
    """(armed, high, pyramids it armed with) after this price."""
    rule = cfg.trailing_take_profit
    armed, high, pyramids = state.trailing_armed, state.high, state.trailing_pyramids
    if rule is None:
        return armed, high, pyramids
    if armed and pyramids is not None and inp.pyramid_count > pyramids:
        armed, high, pyramids = False, None, None
    price, side = inp.price, inp.side
    if price is None or not inp.holds or inp.avg_entry <= 0:
        return armed, high, pyramids
    best = _on_tick(side, price, inp.tick)
    if not armed:
        if _reached_up(side, price, _away(side, inp.avg_entry, rule.activation_percent)):
            return True, best, inp.pyramid_count
        return False, None, None
    if high is None or _better(side, best, high):
        high = best
    return True, high, pyramids


_STOP_ORDER = (CloseReason.STOP_LOSS, CloseReason.BREAKEVEN_STOP, CloseReason.TRAILING_STOP)


def _ruling_stop(side: Side, stops: dict[CloseReason, Decimal]) -> tuple[Decimal, CloseReason] | None:
    ruling: tuple[Decimal, CloseReason] | None = None
    for rule in _STOP_ORDER:
        level = stops.get(rule)
        if level is not None and (ruling is None or _better(side, level, ruling[0])):
            ruling = (level, rule)
    return ruling


def _stop_note(
    rule: CloseReason, level: Decimal, price: Decimal, cfg: ProtectionConfig, state: ProtectionState
) -> str:
    hit = f"reached at price {plain(price)}"
    if rule is CloseReason.BREAKEVEN_STOP:
        return f"break-even stop {plain(level)} (after {cfg.breakeven_after_tp_legs} leg take-profits) {hit}"
    if rule is CloseReason.TRAILING_STOP:
        distance = cfg.trailing_stop.distance_percent if cfg.trailing_stop is not None else "?"
        return f"trailing stop {plain(level)} ({distance}% from the best price) {hit}"
    if state.alert_stop is not None:
        return f"stop-loss {plain(level)} (the alert's risk.stop_loss) {hit}"
    return f"stop-loss {plain(level)} ({cfg.stop_loss_percent}% from the {cfg.stop_loss_basis} entry) {hit}"


def _price_trigger(
    cfg: ProtectionConfig,
    state: ProtectionState,
    inp: ProtectionInputs,
    ruling: tuple[Decimal, CloseReason] | None,
) -> Trigger | None:
    price, side = inp.price, inp.side
    if price is None or not inp.holds:
        return None
    downs: list[Trigger] = []
    if (
        state.trailing_armed
        and state.trail_price is not None
        and _reached_down(side, price, state.trail_price)
    ):
        deviation = (
            cfg.trailing_take_profit.deviation_percent if cfg.trailing_take_profit is not None else "?"
        )
        note = (
            f"trailing take-profit: price {plain(price)} reached the trail {plain(state.trail_price)} "
            f"({deviation}% back from the best price {plain(state.high or price)})"
        )
        downs.append(Trigger(CloseReason.TRAILING_TAKE_PROFIT, note, state.trail_price))
    if ruling is not None and _reached_down(side, price, ruling[0]):
        level, rule = ruling
        downs.append(Trigger(rule, _stop_note(rule, level, price, cfg, state), level))
    if downs:
        first = downs[0]
        for other in downs[1:]:
            if (
                other.level is not None
                and first.level is not None
                and _better(side, other.level, first.level)
            ):
                first = other
        return first
    target = state.alert_take_profit
    if target is not None and _reached_up(side, price, target):
        return Trigger(
            CloseReason.TAKE_PROFIT,
            f"take-profit {plain(target)} (the alert's risk.take_profit) reached at price {plain(price)}",
            target,
        )
    return None


def evaluate(cfg: ProtectionConfig, state: ProtectionState, inp: ProtectionInputs) -> ProtectionResult:
    """The protections' next state and trigger for one observed price (module docstring)."""
    armed = _stop_armed(cfg, state, inp)
    next_state = replace(state, stop_armed=armed)
    next_state.trailing_stop = _trailing_stop(cfg, next_state, inp)
    ttp_armed, high, pyramids = _trailing_take_profit(cfg, next_state, inp)
    next_state.trailing_armed, next_state.high, next_state.trailing_pyramids = ttp_armed, high, pyramids
    deviation = cfg.trailing_take_profit.deviation_percent if cfg.trailing_take_profit is not None else None
    next_state.trail_price = (
        _against(inp.side, high, deviation)
        if ttp_armed and high is not None and deviation is not None
        else None
    )
    stops: dict[CloseReason, Decimal] = {}
    fixed = _fixed_stop(cfg, next_state, inp)
    if fixed is not None:
        stops[CloseReason.STOP_LOSS] = fixed
    threshold = cfg.breakeven_after_tp_legs
    if threshold is not None and inp.leg_tps_filled >= threshold and inp.avg_entry > 0:
        stops[CloseReason.BREAKEVEN_STOP] = breakeven_price(inp.side, inp.avg_entry, inp.fee_rate)
    if cfg.trailing_stop is not None and next_state.trailing_stop is not None:
        stops[CloseReason.TRAILING_STOP] = next_state.trailing_stop
    ruling = _ruling_stop(inp.side, stops)
    next_state.stop_price = ruling[0] if ruling is not None else None
    next_state.stop_rule = ruling[1].value if ruling is not None else None
    minutes = cfg.time_limit_minutes
    next_state.expires_at = inp.created_at + timedelta(minutes=minutes) if minutes is not None else None
    trigger = _price_trigger(cfg, next_state, inp, ruling)
    if trigger is None and next_state.expires_at is not None and inp.now >= next_state.expires_at:
        trigger = Trigger(
            CloseReason.TIME_LIMIT,
            f"time limit: open {minutes} minutes since {inp.created_at.isoformat()}",
        )
    return ProtectionResult(next_state, trigger)


def slippage_refusal(
    buying: bool, signal_price: Decimal, current: Decimal, max_slippage_percent: Decimal
) -> str | None:
    """Why a market entry must not be sent (DESIGN §3.9 ``risk.max_slippage_percent``), or None.

    ``buying`` (a long entry): the current price is worse when above the signal's ``entry_price``;
    selling (a short entry): when below. Refused when worse by more than the limit; the reason names both
    prices and the limit.
    """
    if signal_price <= 0:
        return None
    moved = (current - signal_price) if buying else (signal_price - current)
    worse = moved / signal_price * _HUNDRED
    if worse <= max_slippage_percent:
        return None
    direction = "above" if buying else "below"
    return (
        f"slippage: price {plain(current)} is {worse:.2f}% {direction} the signal's entry_price "
        f"{plain(signal_price)} (risk.max_slippage_percent {plain(max_slippage_percent)})"
    )
