"""Execution: the only code that sends orders and cancels to the exchange, and that reconciles them."""

from engine.app.execution.exchange_orders import (
    REDRIVE_REASON,
    apply_exchange_order,
    save_change,
    status_from_exchange,
)
from engine.app.execution.fees import FeePricing, fee_pricing
from engine.app.execution.send import SEND_CLAIM_TTL, asks_for_action, process_order, send_claim_id
from engine.app.execution.unknown import ReconcileOutcome, reconcile_unknown

__all__ = [
    "REDRIVE_REASON",
    "SEND_CLAIM_TTL",
    "FeePricing",
    "ReconcileOutcome",
    "apply_exchange_order",
    "asks_for_action",
    "fee_pricing",
    "process_order",
    "reconcile_unknown",
    "save_change",
    "send_claim_id",
    "status_from_exchange",
]
