"""The ``pyramid_aggregate`` take-profit of one pyramid: cancel its live orders, market-sell what it holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aws_lambda_powertools import Logger

from engine.app.context import Stores
from engine.app.shared.closing import (
    MAX_REFUSALS,
    close_order_id,
    is_close_order,
    is_sellable,
    new_close_order,
    refusals,
    request_cancels,
)
from engine.domain.accounting import base_currency_of, held_by_pyramid
from engine.domain.models import ZERO, Group, MarketPrecision, Order, OrderPurpose
from engine.domain.money import round_down

__all__ = ["close_pyramid_orders"]

logger = Logger(child=True)


def close_pyramid_orders(
    stores: Stores,
    group: Group,
    orders: Sequence[Order],
    pyramid: int,
    precision: MarketPrecision,
    now: datetime,
) -> Order | None:
    """Close one pyramid (``pyramid_aggregate``): cancel its live orders, market-sell what it holds.

    Live orders of the pyramid (its resting entry legs) get ``cancel_requested``; a market ``tp`` order
    ``"<group>-p<pyramid>-close-<n>"`` sells the pyramid's held quantity rounded down to the step (its
    entry buys do not lock the coin being sold, so the sale does not wait for the cancels). Returns the
    new order, or None when there is nothing sellable or a close of this pyramid is already live.
    """
    own = [order for order in orders if order.pyramid == pyramid]
    request_cancels(stores, [order for order in own if not is_close_order(order)], now)
    if any(is_close_order(order) and order.is_live for order in own):
        return None
    prefix = f"{group.id}-p{pyramid}-close-"
    if refusals(o for o in own if o.id.startswith(prefix)) >= MAX_REFUSALS:
        logger.error(f"pyramid {pyramid} of group {group.id}: close refused {MAX_REFUSALS} times, not resent")
        return None
    held = held_by_pyramid(orders, group.side, base_currency_of(group.symbol)).get(pyramid, ZERO)
    quantity = round_down(held, precision.step) if held > ZERO else ZERO
    if not is_sellable(quantity, group.figures.last_price, precision):
        return None
    order = new_close_order(
        group,
        order_id=close_order_id(group.id, orders, pyramid),
        purpose=OrderPurpose.TP,
        quantity=quantity,
        now=now,
        pyramid=pyramid,
    )
    return order if stores.orders.put_new(order) else None
