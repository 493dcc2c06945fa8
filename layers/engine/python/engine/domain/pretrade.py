"""Pre-trade checks (DESIGN §3.7, §3.3 exposure): may this entry open now, wait in the queue, or not at all?

:func:`check_entry` runs the checks in this fixed order and stops at the first that does not pass:

1. a configuration problem (a document with no valid version) -> ``reject`` with that reason;
2. ``engine.paused`` -> ``reject`` ``"engine paused"``, the operator's pause control -> ``reject``
   ``"engine paused by the operator"`` (new groups and pyramids alike);
   then a requested capital <= 0 -> ``reject`` (nothing to trade);
3. new groups only: open groups on the same exchange and symbol (any timeframe) ≥
   ``engine.max_open_per_symbol`` -> ``reject`` naming the limit;
4. the daily loss breaker (today's realised PnL ≤ -``engine.max_daily_loss_usd``): a new group
   -> ``queue`` (the sweep promotes it after the UTC midnight reset), a pyramid -> ``reject`` with a
   reason naming the breaker (DESIGN §3.7);
5. no pool slot (a new group, or a pyramid while ``pool.pyramids_bypass`` is off) -> ``queue``
   ``"pool full (10/10)"``;
6. exposure: the capital shrinks to the headroom under ``engine.max_total_exposure_usd``; no headroom
   -> ``reject``;
7. otherwise ``accept`` with the (possibly shrunk) capital.

Decisions written down here:

- The daily loss breaker rejects pyramids rather than queueing them: a queued add-on would replay a
  stale price after midnight.
- Rejections come before queueing, so a signal that could never be accepted is not parked in the queue;
  the queue re-runs these checks on promotion anyway.
- A limit of ``max_daily_loss_usd = 0`` trips the breaker on any realised loss (not on a flat day).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from engine.domain.config import EngineConfig
from engine.domain.models import ZERO

PreTradeAction = Literal["accept", "queue", "reject"]


@dataclass(frozen=True)
class PreTradeDecision:
    """Outcome of the pre-trade checks: what to do, why, and the capital to use (maybe shrunk)."""

    action: PreTradeAction
    reason: str
    capital_usd: Decimal

    @property
    def accepted(self) -> bool:
        """True when the entry may be placed now."""
        return self.action == "accept"


def _usd(value: Decimal) -> str:
    """A USD amount for a reason text: two decimals, no exponent."""
    return f"{value.quantize(Decimal('0.01')):f}"


def exposure_headroom(max_total_exposure_usd: Decimal, open_exposure_usd: Decimal) -> Decimal:
    """Capital that may still be committed under the exposure cap (never negative)."""
    return max(max_total_exposure_usd - open_exposure_usd, ZERO)


def breaker_tripped(engine: EngineConfig, realized_today: Decimal) -> bool:
    """True when today's realised PnL (UTC day, net of fees) is a loss of at least the daily limit."""
    return realized_today < ZERO and realized_today <= -engine.max_daily_loss_usd


def breaker_reason(engine: EngineConfig, realized_today: Decimal) -> str | None:
    """The daily loss breaker's refusal in words when it holds, else None."""
    if not breaker_tripped(engine, realized_today):
        return None
    return (
        f"daily loss breaker: realised today {_usd(realized_today)} USD "
        f"<= -{_usd(engine.max_daily_loss_usd)} USD limit"
    )


def pause_reason(engine: EngineConfig, operator_paused: bool) -> str | None:
    """Why entries are paused: the ``engine`` document or the operator's control (DESIGN §6), or None."""
    if engine.paused:
        return "engine paused"
    if operator_paused:
        return "engine paused by the operator"
    return None


def check_entry(
    *,
    engine: EngineConfig,
    is_pyramid: bool,
    pool_bypass: bool,
    pool_open: int,
    pool_max: int,
    open_on_symbol: int,
    open_exposure_usd: Decimal,
    requested_capital_usd: Decimal,
    realized_today_usd: Decimal,
    config_problem: str | None,
    operator_paused: bool = False,
) -> PreTradeDecision:
    """Run the pre-trade checks for one entry (a new group or a pyramid); see the module doc for order.

    ``pool_open``/``pool_max``: groups holding a slot and ``pool.max_open_groups``; ``pool_bypass``:
    ``pool.pyramids_bypass``; ``open_on_symbol``: open groups on the same exchange and symbol (any
    timeframe, either side); ``open_exposure_usd``: capital committed by open groups;
    ``config_problem``: why new entries are refused because of configuration, or None;
    ``operator_paused``: the operator's pause control (DESIGN §6), honoured like ``engine.paused``.
    """
    requested = requested_capital_usd
    if config_problem:
        return PreTradeDecision("reject", config_problem, requested)
    paused = pause_reason(engine, operator_paused)
    if paused:
        return PreTradeDecision("reject", paused, requested)
    if requested <= ZERO:
        return PreTradeDecision("reject", f"capital must be positive, got {requested} USD", requested)
    is_new_group = not is_pyramid
    if is_new_group and open_on_symbol >= engine.max_open_per_symbol:
        return PreTradeDecision(
            "reject",
            f"max open groups per symbol reached ({open_on_symbol}/{engine.max_open_per_symbol})",
            requested,
        )
    breaker = breaker_reason(engine, realized_today_usd)
    if breaker is not None:
        return PreTradeDecision("queue" if is_new_group else "reject", breaker, requested)
    needs_slot = is_new_group or not pool_bypass
    if needs_slot and pool_open >= pool_max:
        return PreTradeDecision("queue", f"pool full ({pool_open}/{pool_max})", requested)
    headroom = exposure_headroom(engine.max_total_exposure_usd, open_exposure_usd)
    if headroom <= ZERO:
        return PreTradeDecision(
            "reject",
            f"no exposure headroom (open {_usd(open_exposure_usd)} of "
            f"{_usd(engine.max_total_exposure_usd)} USD max)",
            requested,
        )
    if requested > headroom:
        return PreTradeDecision(
            "accept",
            f"capital shrunk from {_usd(requested)} to {_usd(headroom)} USD (exposure headroom)",
            headroom,
        )
    return PreTradeDecision("accept", "ok", requested)
