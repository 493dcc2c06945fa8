"""Take-profit math (DESIGN §3.4): per-leg TP prices and quantities, aggregate triggers, TP re-sizing.

Modes: ``per_leg`` places a limit TP per filled leg; ``aggregate`` market-closes the whole group when the
price reaches the group's average entry +/- the aggregate percent; ``hybrid`` runs both (the first to
trigger wins); ``pyramid_aggregate`` applies the aggregate rule to each pyramid on its own average entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from engine.domain.accounting import base_currency_of, fee_in_base, lots_held, pyramid_figures
from engine.domain.models import ZERO, Order, OrderPurpose, OrderType, Side, TpMode
from engine.domain.money import round_down, round_up

__all__ = [
    "aggregate_trigger_price",
    "aggregate_triggered",
    "leg_tp_resizes",
    "leg_tp_shortfall",
    "pyramid_aggregate_triggered",
    "resize_tps",
    "tp_mode_uses_aggregate",
    "tp_mode_uses_leg_tps",
    "tp_mode_uses_pyramid_aggregate",
    "tp_price",
]

_HUNDRED = Decimal(100)


def _target(side: Side, reference: Decimal, percent: Decimal) -> Decimal:
    if Side(side) == Side.LONG:
        return reference * (Decimal(1) + percent / _HUNDRED)
    return reference * (Decimal(1) - percent / _HUNDRED)


def tp_price(side: Side, avg_fill_price: Decimal, tp_percent: Decimal, tick: Decimal) -> Decimal:
    """Per-leg TP limit price from the leg's actual average fill price.

    Long: ``avg * (1 + pct/100)`` rounded **up** to the tick; short: ``avg * (1 - pct/100)`` rounded
    **down**: the TP never yields less than its configured percent.
    """
    rounding = round_up if Side(side) == Side.LONG else round_down
    price = rounding(_target(side, avg_fill_price, tp_percent), tick)
    if price <= 0:
        raise ValueError(f"take-profit price {price} is not positive")
    return price


def _tp_covers(tp: Order) -> Decimal:
    """Quantity a TP order accounts for: its whole amount while live, what it filled once final."""
    return tp.amount if tp.is_live else tp.filled


def leg_tp_shortfall(
    entry_leg: Order, tps_for_leg: Sequence[Order], step: Decimal, lot_held: Decimal | None = None
) -> Decimal:
    """Quantity of an entry leg not yet covered by its TP orders, rounded down to the step.

    Without ``lot_held`` the leg holds its fill minus any base-coin fee; a live TP covers its whole
    amount, a final one what it filled (a cancelled or rejected TP frees the rest). With ``lot_held``
    (the leg's lot from :func:`engine.domain.accounting.lots_held`, which already lacks what its TPs
    and any pro-rata sells took out) only the unfilled part of live TPs counts as covering. A partial
    fill that grows therefore yields a further TP for the delta; 0 means nothing to place.
    """
    if lot_held is not None:
        live = sum((tp.remaining for tp in tps_for_leg if tp.is_live), ZERO)
        return round_down(max(lot_held - live, ZERO), step)
    held = entry_leg.filled - fee_in_base(entry_leg, base_currency_of(entry_leg.symbol))
    covered = sum((_tp_covers(tp) for tp in tps_for_leg), ZERO)
    return round_down(max(held - covered, ZERO), step)


def leg_tp_resizes(
    orders: Sequence[Order], side: Side, base_currency: str, step: Decimal
) -> list[tuple[Order, Decimal]]:
    """Leg TPs to shrink after a pro-rata sell (DESIGN §3.5): each leg's live TPs (``parent_order_id``)
    may sell at most what the leg's lot still holds. Returns ``(tp, new_open_quantity)`` pairs as
    :func:`resize_tps` does (0 = cancel it)."""
    held = lots_held(orders, side, base_currency)
    by_leg: dict[str, list[Order]] = {}
    for order in orders:
        if order.purpose == OrderPurpose.TP and order.parent_order_id is not None:
            by_leg.setdefault(order.parent_order_id, []).append(order)
    changes: list[tuple[Order, Decimal]] = []
    for leg_id, tps in by_leg.items():
        changes.extend(resize_tps(tps, held.get(leg_id, ZERO), step))
    return changes


def aggregate_trigger_price(side: Side, avg_entry: Decimal, percent: Decimal) -> Decimal:
    """Price at which the aggregate TP fires: ``avg * (1 + pct/100)`` long, ``avg * (1 - pct/100)`` short."""
    return _target(side, avg_entry, percent)


def aggregate_triggered(side: Side, avg_entry: Decimal, price: Decimal, percent: Decimal) -> bool:
    """True when ``price`` reached the aggregate TP of a position with average entry ``avg_entry``.

    Long: price >= trigger; short: price <= trigger. A position without an average (0) never triggers.
    """
    if avg_entry <= 0:
        return False
    trigger = aggregate_trigger_price(side, avg_entry, percent)
    return price >= trigger if Side(side) == Side.LONG else price <= trigger


def _aggregate_close_in_flight(orders: Sequence[Order], pyramid: int) -> bool:
    return any(
        o.pyramid == pyramid and o.purpose == OrderPurpose.TP and o.type == OrderType.MARKET and o.is_live
        for o in orders
    )


def pyramid_aggregate_triggered(
    orders: Sequence[Order], side: Side, price: Decimal, percent: Decimal, base_currency: str
) -> list[int]:
    """Pyramids (ascending) whose own average entry reached the aggregate TP at ``price`` and still hold.

    Each pyramid's average and held quantity come from :func:`engine.domain.accounting.pyramid_figures`.
    A pyramid that already has a live market TP order (its aggregate close in flight) is left out so the
    close is not sent twice.
    """
    triggered: list[int] = []
    for index, figures in pyramid_figures(orders, side, base_currency).items():
        if figures.quantity <= 0 or _aggregate_close_in_flight(orders, index):
            continue
        if aggregate_triggered(side, figures.avg_entry, price, percent):
            triggered.append(index)
    return triggered


def tp_mode_uses_leg_tps(mode: TpMode) -> bool:
    """True when filled legs get their own limit TP orders (``per_leg``, ``hybrid``)."""
    return TpMode(mode) in (TpMode.PER_LEG, TpMode.HYBRID)


def tp_mode_uses_aggregate(mode: TpMode) -> bool:
    """True when the group-wide aggregate TP is watched (``aggregate``, ``hybrid``).

    ``pyramid_aggregate`` watches each pyramid instead: see :func:`tp_mode_uses_pyramid_aggregate`.
    """
    return TpMode(mode) in (TpMode.AGGREGATE, TpMode.HYBRID)


def tp_mode_uses_pyramid_aggregate(mode: TpMode) -> bool:
    """True when each pyramid is closed on its own aggregate TP (``pyramid_aggregate``)."""
    return TpMode(mode) == TpMode.PYRAMID_AGGREGATE


def resize_tps(tps: Sequence[Order], remaining_qty: Decimal, step: Decimal) -> list[tuple[Order, Decimal]]:
    """Shrink live TP orders so together they never sell more than ``remaining_qty``.

    Used after a risk partial close. Only live TPs without a pending cancel count; the quantity they can
    still sell is ``amount - filled``. The newest (by ``created_at``, then ``id``) shrink first. Returns
    ``(order, new_open_quantity)`` for each order to change, where ``new_open_quantity`` is the unfilled
    quantity the order should keep, rounded down to the step; 0 means cancel it. Orders not listed stay
    as they are. A kept quantity under the market minimums is the caller's to cancel instead.
    """
    live = [tp for tp in tps if tp.is_live and not tp.cancel_requested]
    excess = sum((tp.remaining for tp in live), ZERO) - max(remaining_qty, ZERO)
    changes: list[tuple[Order, Decimal]] = []
    for tp in sorted(live, key=lambda o: (o.created_at, o.id), reverse=True):
        if excess <= 0:
            break
        open_qty = tp.remaining
        keep = round_down(max(open_qty - excess, ZERO), step)
        if keep == open_qty:
            continue
        changes.append((tp, keep))
        excess -= open_qty - keep
    return changes
