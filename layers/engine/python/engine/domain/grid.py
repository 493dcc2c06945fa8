"""DCA grid math (DESIGN §3.3): a pyramid's legs from its entry price, capital and levels.

Leg price = entry * (1 + gap/100) for a long, entry * (1 - gap/100) for a short (gaps are signed; a
negative gap is the adverse side: below the entry for a long, above it for a short), rounded to the tick
in the trader's favour: **down** for a long (buy no higher), **up** for a short (sell no lower).
Quantity = capital * weight/100 / price rounded **down** to the step, so the grid never costs
more than its capital. A leg under the market's minimums rejects the whole pyramid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.config import DcaConfig, DcaLevel
from engine.domain.models import ZERO, MarketPrecision, OrderType, Side
from engine.domain.money import plain, round_down, round_up

__all__ = [
    "GridPlan",
    "GridRejected",
    "LegPlan",
    "build_grid",
    "pyramid_settings",
    "resolve_capital",
    "trigger_reached",
]

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LegPlan:
    """One planned entry leg of a pyramid.

    ``price`` is the leg's limit price, or for a market leg the reference price its cost is estimated
    at. ``trigger_price`` is set on market legs that wait for the price to reach them (sent by order_sync).
    """

    leg: int
    price: Decimal
    amount: Decimal
    gap_percent: Decimal
    weight_percent: Decimal
    tp_percent: Decimal
    type: OrderType
    trigger_price: Decimal | None = None

    @property
    def notional(self) -> Decimal:
        """Quote value of the leg: amount * price."""
        return self.amount * self.price


@dataclass(frozen=True)
class GridPlan:
    """The legs of one pyramid (``pyramid`` is 1-based: 1 = the group's first entry)."""

    pyramid: int
    entry_price: Decimal
    capital_usd: Decimal
    legs: tuple[LegPlan, ...]

    @property
    def total_cost(self) -> Decimal:
        """Sum of the legs' notionals (never more than ``capital_usd``)."""
        return sum((leg.notional for leg in self.legs), ZERO)


class GridRejected(Exception):
    """A pyramid cannot be placed; ``reason`` names the offending leg (``leg``, 1-based, or None)."""

    def __init__(self, reason: str, leg: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.leg = leg


def pyramid_settings(dca: DcaConfig, pyramid_index: int) -> tuple[list[DcaLevel], Decimal | None]:
    """Levels and capital override of pyramid ``pyramid_index`` (1-based).

    ``dca.pyramids[k-1]`` overrides pyramid k when present: its ``levels`` (if set) replace
    ``dca.levels`` and its ``capital_usd`` (if set) is returned as the override; otherwise the
    document's ``levels`` and ``None``.
    """
    if pyramid_index < 1:
        raise ValueError(f"pyramid index is 1-based, got {pyramid_index}")
    if pyramid_index <= len(dca.pyramids):
        override = dca.pyramids[pyramid_index - 1]
        levels = override.levels if override.levels is not None else dca.levels
        return list(levels), override.capital_usd
    return list(dca.levels), None


def resolve_capital(
    *,
    signal_capital: Decimal | None,
    override_capital: Decimal | None,
    default_capital: Decimal,
    headroom_usd: Decimal,
) -> Decimal:
    """Capital of a new pyramid in USD.

    Precedence: the signal's ``order_size`` (already converted to quote) > the pyramid's configured
    override (``dca.pyramids[k-1].capital_usd``) > the document's ``capital_usd``. The result is shrunk
    to the exposure headroom (``engine.max_total_exposure_usd`` minus what is invested) and is never
    negative; a capital too small for the legs is then rejected by :func:`build_grid`.
    """
    if signal_capital is not None:
        capital = signal_capital
    elif override_capital is not None:
        capital = override_capital
    else:
        capital = default_capital
    return max(min(capital, headroom_usd), ZERO)


def _leg_price(side: Side, entry_price: Decimal, gap_percent: Decimal) -> Decimal:
    factor = Decimal(1) + gap_percent / _HUNDRED
    if Side(side) == Side.SHORT:
        factor = Decimal(1) - gap_percent / _HUNDRED
    return entry_price * factor


def build_grid(
    *,
    side: Side,
    pyramid: int,
    entry_price: Decimal,
    capital_usd: Decimal,
    levels: Sequence[DcaLevel],
    precision: MarketPrecision,
    entry_order_type: OrderType,
) -> GridPlan:
    """Plan the legs of one pyramid, or raise :class:`GridRejected` naming the first leg that fails.

    A leg fails when its price is not positive, its quantity is zero or under ``min_qty``, or its
    notional is under ``min_notional``. Limit entry: every leg is a limit order at its price. Market
    entry: legs with gap >= 0 are market orders sent at once (``price`` keeps the computed reference
    price for the cost estimate, no trigger); the other legs are market orders with
    ``trigger_price`` = their computed price, sent when the market reaches it (:func:`trigger_reached`).
    """
    if not levels:
        raise GridRejected("the DCA configuration has no levels")
    if entry_price <= 0:
        raise GridRejected(f"entry price {plain(entry_price)} is not positive")
    legs: list[LegPlan] = []
    for number, level in enumerate(levels, start=1):
        label = f"leg {number} (gap {plain(level.gap_percent)}%)"
        rounding = round_up if Side(side) == Side.SHORT else round_down
        price = rounding(_leg_price(side, entry_price, level.gap_percent), precision.tick)
        if price <= 0:
            raise GridRejected(f"{label}: price {plain(price)} is not positive", number)
        amount = round_down(capital_usd * level.weight_percent / _HUNDRED / price, precision.step)
        if amount <= 0 or amount < precision.min_qty:
            raise GridRejected(
                f"{label}: quantity {plain(amount)} is below the minimum {plain(precision.min_qty)}"
                f" for {precision.symbol}",
                number,
            )
        if amount * price < precision.min_notional:
            raise GridRejected(
                f"{label}: value {plain(amount * price)} is below the minimum notional"
                f" {plain(precision.min_notional)} for {precision.symbol}",
                number,
            )
        if OrderType(entry_order_type) == OrderType.LIMIT:
            order_type, trigger = OrderType.LIMIT, None
        else:
            order_type = OrderType.MARKET
            trigger = None if level.gap_percent >= 0 else price
        legs.append(
            LegPlan(
                leg=number,
                price=price,
                amount=amount,
                gap_percent=level.gap_percent,
                weight_percent=level.weight_percent,
                tp_percent=level.tp_percent,
                type=order_type,
                trigger_price=trigger,
            )
        )
    return GridPlan(pyramid=pyramid, entry_price=entry_price, capital_usd=capital_usd, legs=tuple(legs))


def trigger_reached(side: Side, trigger_price: Decimal, price: Decimal) -> bool:
    """True when a waiting market leg should fire: long at or below its trigger, short at or above."""
    if Side(side) == Side.LONG:
        return price <= trigger_price
    return price >= trigger_price
