"""The order executor: the only code that sends orders and cancels to an exchange (DESIGN §1, §5).

:func:`process_order` re-reads the order and decides from its current state (a stream image may be stale):

==========================================================  ============================================
current order                                               action
==========================================================  ============================================
pending, not cancel_requested, no trigger_price             claim the send, ``create_order``, record it
pending with a trigger_price                                nothing (order_sync clears it when reached)
pending, cancel_requested                                   cancelled, no exchange call (never sent)
open / partially_filled, cancel_requested                   ``cancel_order``, record the result
unknown                                                     nothing (order_sync reconciles it first)
anything else                                               nothing (replays are no-ops)
==========================================================  ============================================

Send outcomes: the exchange's order -> open / partially_filled / filled with the fill figures;
``OrderRefused`` -> rejected with the reason; ``OutcomeUnknown`` -> unknown with the reason (never
resent blindly); ``BackOff`` / ``TemporaryFailure`` (nothing placed) -> stays pending with the reason
``"not sent yet: <label>; will retry"`` and the failure is re-raised, so the stream item is retried.
A cancel that fails the same way keeps the order as it is with ``"cancel not confirmed yet: ..."`` and
is re-raised too (order_sync retries cancels of open orders every run). Waiting reasons are written
only when they change, so a lasting fault cannot turn the orders stream into a write loop.

Send claim: ``StateStore.mark_once("send:<order id>:<version>:<attempt>")`` (TTL
:data:`SEND_CLAIM_TTL`), so overlapping deliveries of one version send once. An attempt that placed
nothing (``BackOff`` / ``TemporaryFailure``) releases the claim by moving the attempt number on (a small
state document), so the retried record sends at once; an attempt whose outcome is unknown or that
crashed keeps it. Any save of the order (order_sync putting an ``unknown`` order back to pending or
re-driving a stuck pending order) makes a new version with fresh claims; a resend always carries the
same client order id. A pending order that makes no progress (a crashed attempt holding its claim, or
a lost record) is re-driven by order_sync after a while: it saves the order with
:data:`REDRIVE_REASON` and the next send looks the order up by client id before creating it, in case
the earlier attempt did reach the exchange (``lookup_first``; implied by that reason).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from engine.app import gateways
from engine.app.context import Stores
from engine.app.execution.exchange_orders import (
    CANCEL_PENDING_PREFIX,
    MAX_SAVE_ATTEMPTS,
    NOT_SENT_PREFIX,
    REDRIVE_REASON,
    apply_exchange_order,
    failure_label,
    is_transient_reason,
    save_change,
)
from engine.config import load_config
from engine.domain.config import ConfigSnapshot
from engine.domain.models import ExchangeOrder, Order, OrderStatus
from engine.exchange.errors import BackOff, ExchangeFailure, OrderRefused, OutcomeUnknown, TemporaryFailure
from engine.exchange.gateway import ExchangeGateway, OrderRequest
from engine.store import StaleWrite

__all__ = ["SEND_CLAIM_TTL", "process_order", "send_claim_id"]

logger = Logger()

#: How long a send claim blocks other senders of the same order version (> the longest Lambda run).
SEND_CLAIM_TTL = timedelta(minutes=3)


def _attempts_document(order: Order) -> str:
    return f"send-attempts:{order.id}:{order.version}"


def send_claim_id(order: Order, attempt: int = 0) -> str:
    """The once-marker that lets one invocation make send attempt ``attempt`` of this order version."""
    return f"send:{order.id}:{order.version}:{attempt}"


def _claim_send(stores: Stores, order: Order) -> int | None:
    """Claim the next send attempt of this order version: its number, or None when it is taken."""
    attempt = int((stores.state.get(_attempts_document(order)) or {}).get("next", 0))
    if not stores.state.mark_once(send_claim_id(order, attempt), SEND_CLAIM_TTL):
        return None
    return attempt


def _release_send(stores: Stores, order: Order, attempt: int) -> None:
    """Nothing was placed by ``attempt``: let the next delivery claim a new attempt at once.

    Only the holder of claim ``attempt`` writes ``attempt + 1``, so attempts stay one at a time.
    """
    stores.state.put(_attempts_document(order), {"next": attempt + 1})


def process_order(
    stores: Stores,
    order_id: str,
    now: datetime,
    *,
    config: ConfigSnapshot | None = None,
    lookup_first: bool = False,
) -> Order | None:
    """Send or cancel order ``order_id`` as its current state asks (table in the module docstring).

    Returns the order as stored afterwards (``None`` when it does not exist). ``lookup_first``: look the
    order up by client id before creating it (re-drive of an order that may have been sent already).
    Raises ``BackOff`` / ``TemporaryFailure`` when the exchange could not be reached (nothing placed).
    """
    snapshot = config if config is not None else load_config()
    for _ in range(MAX_SAVE_ATTEMPTS):
        order = stores.orders.get(order_id)
        if order is None:
            logger.warning("order not found", order_id=order_id)
            return None
        redriven = order.reason is not None and order.reason.startswith(REDRIVE_REASON)
        try:
            return _decide(stores, order, now, snapshot, lookup_first=lookup_first or redriven)
        except StaleWrite:
            logger.info("order changed while deciding; re-reading", order_id=order_id)
    raise StaleWrite(f"order {order_id}: changed {MAX_SAVE_ATTEMPTS} times while being processed")


def _decide(
    stores: Stores, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    if order.status is OrderStatus.PENDING:
        if order.cancel_requested:
            return _cancel_unsent(stores, order, now, config, lookup_first=lookup_first)
        if order.trigger_price is not None:
            return order
        return _send(stores, order, now, config, lookup_first=lookup_first)
    if order.cancel_requested and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        return _cancel_sent(stores, order, now, config)
    return order


def _gateway(stores: Stores, order: Order, config: ConfigSnapshot) -> ExchangeGateway:
    return gateways.gateway_for_exchange(stores, order.exchange, config)


def _record(stores: Stores, order: Order, now: datetime, ex: ExchangeOrder) -> Order:
    """Save what the exchange says about ``order`` (re-applied on a conflict: the exchange is the truth)."""
    return save_change(stores, order, lambda o: apply_exchange_order(o, ex, now))


def _set_outcome(stores: Stores, order: Order, status: OrderStatus, reason: str) -> Order:
    def change(o: Order) -> bool:
        if o.status is status and o.reason == reason:
            return False
        o.status = status
        o.reason = reason
        return True

    return save_change(stores, order, change)


def _note_wait(stores: Stores, order: Order, status: OrderStatus, reason: str) -> None:
    """Record why the order waits (only when the reason changes: no write loop while a fault lasts)."""

    def change(o: Order) -> bool:
        if o.status is not status or o.reason == reason:
            return False
        o.reason = reason
        return True

    save_change(stores, order, change)


def _defer(stores: Stores, order: Order, failure: ExchangeFailure) -> None:
    """Nothing was placed: keep the order pending with a stable reason, then re-raise for a retry."""
    logger.warning("send deferred", order_id=order.id, error=failure.error, reason=failure.reason)
    reason = f"{NOT_SENT_PREFIX}: {failure_label(failure.reason)}; will retry"
    _note_wait(stores, order, OrderStatus.PENDING, reason)
    raise failure


def _send(
    stores: Stores, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    attempt = _claim_send(stores, order)
    if attempt is None:
        logger.info("send already claimed", order_id=order.id, version=order.version)
        return order
    try:
        gateway = _gateway(stores, order, config)
        if lookup_first:
            existing = gateway.fetch_order(order.client_order_id, order.symbol)
            if existing is not None:
                logger.info("re-driven order found on the exchange", order_id=order.id)
                return _record(stores, order, now, existing)
        ex = gateway.create_order(
            OrderRequest(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                amount=order.amount,
                price=order.price,
            )
        )
    except OrderRefused as refused:
        logger.info("order refused", order_id=order.id, error=refused.error, reason=refused.reason)
        return _set_outcome(stores, order, OrderStatus.REJECTED, refused.reason)
    except OutcomeUnknown as unknown:
        logger.warning("order outcome unknown", order_id=order.id, reason=unknown.reason)
        return _set_outcome(stores, order, OrderStatus.UNKNOWN, unknown.reason)
    except (BackOff, TemporaryFailure) as failure:
        _release_send(stores, order, attempt)
        _defer(stores, order, failure)
        raise
    logger.info("order sent", order_id=order.id, status=ex.status, filled=str(ex.filled))
    return _record(stores, order, now, ex)


def _cancel_unsent(
    stores: Stores, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    if _claim_send(stores, order) is None:
        logger.info("cancel of a pending order waits for its send claim", order_id=order.id)
        return order
    if lookup_first and order.trigger_price is None:
        existing = _gateway(stores, order, config).fetch_order(order.client_order_id, order.symbol)
        if existing is not None:  # it was sent after all: record it, the next pass cancels it
            return _record(stores, order, now, existing)
    reason = order.reason if order.reason and not is_transient_reason(order.reason) else None
    cancelled = dataclasses.replace(
        order, status=OrderStatus.CANCELLED, reason=reason or "cancelled before it was sent"
    )
    stores.orders.save(cancelled)  # StaleWrite -> re-read and re-decide
    logger.info("pending order cancelled without an exchange call", order_id=order.id)
    return cancelled


def _cancel_sent(stores: Stores, order: Order, now: datetime, config: ConfigSnapshot) -> Order:
    gateway = _gateway(stores, order, config)
    try:
        ex = gateway.cancel_order(order.client_order_id, order.symbol)
    except (BackOff, TemporaryFailure) as failure:
        logger.warning("cancel deferred", order_id=order.id, error=failure.error, reason=failure.reason)
        reason = f"{CANCEL_PENDING_PREFIX}: {failure_label(failure.reason)}; will retry"
        _note_wait(stores, order, order.status, reason)
        raise
    except OrderRefused as refused:
        logger.error("cancel refused", order_id=order.id, reason=refused.reason)
        reason = f"cancel refused: {refused.reason}"

        def note(o: Order) -> bool:
            if o.reason == reason:
                return False
            o.reason = reason
            return True

        return save_change(stores, order, note)
    if ex is None:
        logger.warning("order to cancel is unknown to the exchange", order_id=order.id)
        reason = "cancel: the exchange does not know the order"
        return _set_outcome(stores, order, OrderStatus.CANCELLED, reason)

    def change(o: Order) -> bool:
        changed = apply_exchange_order(o, ex, now)
        if o.status is OrderStatus.CANCELLED and o.reason is None:
            o.reason = "cancelled on request"
            changed = True
        return changed

    logger.info("order cancel answered", order_id=order.id, status=ex.status, filled=str(ex.filled))
    return save_change(stores, order, change)
