"""Reconciling ``unknown`` orders (a create whose outcome was lost), DESIGN §5.

An unknown order is never resent blindly. order_sync looks it up by client order id on every run:

- found -> the exchange's state is recorded (open / partially_filled / filled / cancelled ...);
- absent -> the miss is remembered in the state table (``reconcile:<order id>:<version>``, the time of
  the first miss). Absent again on a later lookup at least :data:`ABSENCE_SPACING` after the first
  miss (i.e. on a later sync run) -> *provably absent*: the order goes back to ``pending`` and is
  resent at once with the same client order id (a late create that lands meanwhile is then
  recognised by the exchange or by the paper book as the same order).

The state document is keyed by the order version, so a later unknown episode of the same order starts
its own count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.app.execution.exchange_orders import apply_exchange_order, save_change
from engine.app.execution.fees import fee_pricing
from engine.app.execution.send import process_order
from engine.domain.config import ConfigSnapshot
from engine.domain.models import Order, OrderStatus
from engine.exchange.errors import BackOff, TemporaryFailure
from engine.exchange.gateway import ExchangeGateway

__all__ = ["ABSENCE_SPACING", "ReconcileOutcome", "reconcile_unknown"]

logger = Logger()

#: Minimum time between the two lookups that prove an order absent (one sync run apart, with jitter).
ABSENCE_SPACING = timedelta(seconds=55)

RESEND_REASON = "absent from the exchange on two lookups: resent with the same client order id"


class ReconcileOutcome(StrEnum):
    """What one reconciliation pass did with an unknown order."""

    FOUND = "found"
    WAITING = "waiting"
    RESENT = "resent"
    SKIPPED = "skipped"


def _state_name(order: Order) -> str:
    return f"reconcile:{order.id}:{order.version}"


def reconcile_unknown(
    ctx: EngineContext, gateway: ExchangeGateway, order: Order, now: datetime, config: ConfigSnapshot
) -> ReconcileOutcome:
    """One reconciliation pass over the unknown ``order`` (see the module docstring)."""
    stores = ctx.stores
    if order.status is not OrderStatus.UNKNOWN:
        return ReconcileOutcome.SKIPPED
    found = gateway.fetch_order(order.client_order_id, order.symbol)
    if found is not None:
        exchange_order = found
        fees = fee_pricing(stores, gateway, order.exchange, config)

        def record(o: Order) -> bool:
            return o.status is OrderStatus.UNKNOWN and apply_exchange_order(o, exchange_order, now, fees=fees)

        save_change(stores, order, record, now)
        logger.info("unknown order found on the exchange", order_id=order.id, status=found.status)
        return ReconcileOutcome.FOUND
    name = _state_name(order)
    first_miss = (stores.state.get(name) or {}).get("first_miss_at")
    if first_miss is None:
        stores.state.put(name, {"first_miss_at": now.isoformat()})
        logger.info("unknown order not on the exchange (first lookup)", order_id=order.id)
        return ReconcileOutcome.WAITING
    if now - datetime.fromisoformat(str(first_miss)) < ABSENCE_SPACING:
        return ReconcileOutcome.WAITING

    def back_to_pending(o: Order) -> bool:
        if o.status is not OrderStatus.UNKNOWN:
            return False
        o.status = OrderStatus.PENDING
        o.reason, o.wait = RESEND_REASON, None
        return True

    saved = save_change(stores, order, back_to_pending, now)
    if saved.status is not OrderStatus.PENDING:
        return ReconcileOutcome.SKIPPED
    logger.warning("unknown order provably absent: resending", order_id=order.id)
    try:
        process_order(ctx, order.id, now, config=config)
    except (BackOff, TemporaryFailure) as failure:  # stays pending; the executor / re-drive retry it
        logger.warning("resend deferred", order_id=order.id, reason=failure.reason)
    return ReconcileOutcome.RESENT
