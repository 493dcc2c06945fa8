"""Per-leg take-profits (``per_leg`` / ``hybrid``) sized by lots (DESIGN §3.4, §3.5).

Each filled entry leg is a lot (:func:`engine.domain.accounting.lots_held`): its own TPs sell from it,
every other sell (a risk partial close, an exit) takes from all lots pro rata. So:

- :func:`resize_leg_tps`: after a pro-rata sell a leg's live TPs may offer more than its lot still
  holds; those TPs (newest first, :func:`engine.domain.takeprofit.leg_tp_resizes`) get
  ``cancel_requested``. Once the cancel is confirmed :func:`place_leg_tps` re-places the leg's
  remainder at the same price, so a TP never sells units that belong to another lot.
- :func:`place_leg_tps`: every entry leg with a fill gets limit TPs for the part of its lot not yet
  offered by a live TP (``leg_tp_shortfall(lot_held=...)``) at ``tp_price`` of the leg's **own average
  fill**, id ``"<leg id>-tp-<n>"``. A shortfall under the market minimums waits for more fill. New TPs
  never sell more than the group holds beyond what its live closing orders already sell.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.app.shared.closing import MAX_REFUSALS, closing_side, is_sellable, refusals, request_cancels
from engine.domain.accounting import CLOSING_PURPOSES, base_currency_of, fill_price, lots_held
from engine.domain.models import ZERO, Group, MarketPrecision, Order, OrderPurpose, OrderType
from engine.domain.money import round_down
from engine.domain.takeprofit import leg_tp_resizes, leg_tp_shortfall, tp_price
from engine.exchange.client_ids import client_order_id

__all__ = ["leg_tp_id", "place_leg_tps", "resize_leg_tps"]

logger = Logger(child=True)


def leg_tp_id(leg: Order, existing_tps: Sequence[Order]) -> str:
    """Id of the next TP of an entry leg: ``"<leg id>-tp-<n>"``, n from 1."""
    return f"{leg.id}-tp-{len(existing_tps) + 1}"


def resize_leg_tps(
    stores: Stores, group: Group, orders: Sequence[Order], precision: MarketPrecision, now: datetime
) -> list[str]:
    """Cancel-request the leg TPs that offer more than their lot holds (module docstring); their ids."""
    changes = leg_tp_resizes(orders, group.side, base_currency_of(group.symbol), precision.step)
    if not changes:
        return []
    flagged = request_cancels(stores, [tp for tp, _keep in changes], now)
    for order in orders:
        if order.id in flagged:
            order.cancel_requested = True
    if flagged:
        logger.info("leg take-profits larger than their lots: cancelling to re-size", order_ids=flagged)
    return flagged


def place_leg_tps(
    stores: Stores, group: Group, orders: Sequence[Order], precision: MarketPrecision, now: datetime
) -> list[Order]:
    """Place the missing leg TPs (module docstring); the orders written."""
    tps_by_leg: dict[str, list[Order]] = {}
    for order in orders:
        if order.purpose == OrderPurpose.TP and order.parent_order_id is not None:
            tps_by_leg.setdefault(order.parent_order_id, []).append(order)
    selling = sum((o.remaining for o in orders if o.purpose in CLOSING_PURPOSES and o.is_live), ZERO)
    available = round_down(max(group.figures.quantity - selling, ZERO), precision.step)
    held = lots_held(orders, group.side, base_currency_of(group.symbol))
    legs = sorted(
        (
            o
            for o in orders
            if o.purpose == OrderPurpose.ENTRY and o.filled > ZERO and o.tp_percent is not None
        ),
        key=lambda o: (o.pyramid or 0, o.leg or 0, o.id),
    )
    placed: list[Order] = []
    for leg in legs:
        if leg.tp_percent is None:
            continue
        existing = tps_by_leg.get(leg.id, [])
        if refusals(existing) >= MAX_REFUSALS:
            logger.error(
                f"leg {leg.id}: take-profit refused {MAX_REFUSALS} times, not resent", group_id=group.id
            )
            continue
        shortfall = leg_tp_shortfall(leg, existing, precision.step, lot_held=held.get(leg.id, ZERO))
        quantity = min(shortfall, available)
        if quantity <= ZERO:
            continue
        limit = tp_price(group.side, fill_price(leg), leg.tp_percent, precision.tick)
        if not is_sellable(quantity, limit, precision):
            continue  # wait for more of the leg to fill
        tp = _leg_tp(group, leg, leg_tp_id(leg, existing), quantity, limit, now)
        if stores.orders.put_new(tp):
            placed.append(tp)
            available -= quantity
    return placed


def _leg_tp(
    group: Group, leg: Order, order_id: str, quantity: Decimal, limit: Decimal, now: datetime
) -> Order:
    return Order(
        id=order_id,
        group_id=group.id,
        exchange=group.exchange,
        symbol=group.symbol,
        purpose=OrderPurpose.TP,
        side=closing_side(group.side),
        type=OrderType.LIMIT,
        amount=quantity,
        price=limit,
        client_order_id=client_order_id(order_id),
        pyramid=leg.pyramid,
        leg=leg.leg,
        parent_order_id=leg.id,
        created_at=now,
        updated_at=now,
    )
