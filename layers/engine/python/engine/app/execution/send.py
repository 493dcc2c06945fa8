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
resent blindly); ``BackOff`` / ``TemporaryFailure`` (nothing placed) -> stays pending with ``wait``
``not_sent`` and the reason ``"not sent yet: <label>; will retry"`` (``label``: the failure's own) and
the failure is re-raised, so the stream item is retried. A cancel that fails the same way keeps the
order as it is with ``wait`` ``cancel_pending`` (``"cancel not confirmed yet: ..."``) and is re-raised
too (order_sync retries cancels of open orders every run). Waiting reasons are written only when they
change, so a lasting fault cannot turn the orders stream into a write loop.

Send claim: ``StateStore.mark_once("send:<order id>:<version>:<attempt>")`` (TTL
:data:`SEND_CLAIM_TTL`), so overlapping deliveries of one version send once. An attempt that placed
nothing (``BackOff`` / ``TemporaryFailure``) releases the claim by moving the attempt number on (a small
state document), so the retried record sends at once; an attempt whose outcome is unknown or that
crashed keeps it. Any save of the order (order_sync putting an ``unknown`` order back to pending or
re-driving a stuck pending order) makes a new version with fresh claims; a resend always carries the
same client order id. A pending order that makes no progress (a crashed attempt holding its claim, or
a lost record) is re-driven by order_sync after a while: it saves the order with ``wait`` ``redriven``
(reason :data:`REDRIVE_REASON`) and the next send looks the order up by client id before creating it,
in case the earlier attempt did reach the exchange (``lookup_first``; implied by that wait).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext, Stores
from engine.app.execution.exchange_orders import (
    MAX_SAVE_ATTEMPTS,
    apply_exchange_order,
    save_change,
    wait_reason,
)
from engine.app.execution.fees import FeePricing, fee_pricing
from engine.app.shared.retry import retry_on_stale
from engine.domain.config import ConfigSnapshot
from engine.domain.models import (
    ExchangeOrder,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderWait,
)
from engine.domain.protection import slippage_refusal
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


def _claim_send(stores: Stores, order: Order, now: datetime) -> int | None:
    """Claim the next send attempt of this order version: its number, or None when it is taken."""
    attempt = int((stores.state.get(_attempts_document(order)) or {}).get("next", 0))
    if not stores.state.mark_once(send_claim_id(order, attempt), SEND_CLAIM_TTL, now=now):
        return None
    return attempt


def _release_send(stores: Stores, order: Order, attempt: int) -> None:
    """Nothing was placed by ``attempt``: let the next delivery claim a new attempt at once.

    Only the holder of claim ``attempt`` writes ``attempt + 1``, so attempts stay one at a time.
    """
    stores.state.put(_attempts_document(order), {"next": attempt + 1})


def process_order(
    ctx: EngineContext,
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
    ``config``: the snapshot the caller already holds (read from ``ctx.config`` once when omitted).
    """
    snapshot = config if config is not None else ctx.config.snapshot()

    def attempt() -> Order | None:
        order = ctx.stores.orders.get(order_id)
        if order is None:
            logger.warning("order not found", order_id=order_id)
            return None
        redriven = order.wait is OrderWait.REDRIVEN
        return _decide(ctx, order, now, snapshot, lookup_first=lookup_first or redriven)

    return retry_on_stale(
        attempt,
        attempts=MAX_SAVE_ATTEMPTS,
        on_exhausted=lambda: StaleWrite(
            f"order {order_id}: changed {MAX_SAVE_ATTEMPTS} times while being processed"
        ),
        on_stale=lambda _stale: logger.info("order changed while deciding; re-reading", order_id=order_id),
    )


def asks_for_action(order: Order) -> bool:
    """True when an order in this state asks the executor for something: a pending order without a price
    trigger to send, or a cancel requested on a pending or resting order.

    The executor skips a stream record whose image asks for nothing without reading the table: an order
    never goes back to such a state, and every change that asks for something (a trigger fired, a cancel
    requested, a re-drive) is a write of its own, with a record of its own.
    """
    if order.status is OrderStatus.PENDING:
        return order.cancel_requested or order.trigger_price is None
    return order.cancel_requested and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


def _decide(
    ctx: EngineContext, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    if order.status is OrderStatus.PENDING:
        if order.cancel_requested:
            return _cancel_unsent(ctx, order, now, config, lookup_first=lookup_first)
        if order.trigger_price is not None:
            return order
        return _send(ctx, order, now, config, lookup_first=lookup_first)
    if order.cancel_requested and order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        return _cancel_sent(ctx, order, now, config)
    return order


def _gateway(ctx: EngineContext, order: Order, config: ConfigSnapshot) -> ExchangeGateway:
    return ctx.gateways(order.exchange, config)


def _record(
    stores: Stores, order: Order, now: datetime, ex: ExchangeOrder, fees: FeePricing | None = None
) -> Order:
    """Save what the exchange says about ``order`` (re-applied on a conflict: the exchange is the truth)."""
    return save_change(stores, order, lambda o: apply_exchange_order(o, ex, now, fees=fees), now)


def _set_outcome(stores: Stores, order: Order, status: OrderStatus, reason: str, now: datetime) -> Order:
    def change(o: Order) -> bool:
        if o.status is status and o.reason == reason and o.wait is None:
            return False
        o.status = status
        o.reason, o.wait = reason, None
        return True

    return save_change(stores, order, change, now)


def _note_wait(
    stores: Stores, order: Order, status: OrderStatus, wait: OrderWait, label: str, now: datetime
) -> None:
    """Record that the order waits and why (only when that changes: no write loop while a fault lasts)."""
    reason = wait_reason(wait, label)

    def change(o: Order) -> bool:
        if o.status is not status or (o.reason == reason and o.wait is wait):
            return False
        o.reason, o.wait = reason, wait
        return True

    save_change(stores, order, change, now)


def _defer(stores: Stores, order: Order, failure: ExchangeFailure, now: datetime) -> None:
    """Nothing was placed: keep the order pending with a stable reason, then re-raise for a retry."""
    logger.warning("send deferred", order_id=order.id, error=failure.error, reason=failure.reason)
    _note_wait(stores, order, OrderStatus.PENDING, OrderWait.NOT_SENT, failure.label, now)
    raise failure


def _send(
    ctx: EngineContext, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    stores = ctx.stores
    attempt = _claim_send(stores, order, now)
    if attempt is None:
        logger.info("send already claimed", order_id=order.id, version=order.version)
        return order
    try:
        gateway = _gateway(ctx, order, config)
        if lookup_first:
            existing = gateway.fetch_order(order.client_order_id, order.symbol)
            if existing is not None:
                logger.info("re-driven order found on the exchange", order_id=order.id)
                return _record(
                    stores, order, now, existing, fee_pricing(stores, gateway, order.exchange, config)
                )
        refusal = _slippage(stores, gateway, order)
        if refusal is not None:
            logger.info("market entry refused for slippage", order_id=order.id, reason=refusal)
            return _set_outcome(stores, order, OrderStatus.REJECTED, refusal, now)
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
        return _set_outcome(stores, order, OrderStatus.REJECTED, refused.reason, now)
    except OutcomeUnknown as unknown:
        logger.warning("order outcome unknown", order_id=order.id, reason=unknown.reason)
        return _set_outcome(stores, order, OrderStatus.UNKNOWN, unknown.reason, now)
    except (BackOff, TemporaryFailure) as failure:
        _release_send(stores, order, attempt)
        _defer(stores, order, failure, now)
        raise
    logger.info("order sent", order_id=order.id, status=ex.status, filled=str(ex.filled))
    return _record(stores, order, now, ex, fee_pricing(stores, gateway, order.exchange, config))


def _slippage(stores: Stores, gateway: ExchangeGateway, order: Order) -> str | None:
    """Why a market entry leg must not be sent (its pyramid's ``risk.max_slippage_percent``), or None.

    Only market entries are checked (a limit bounds its own price; closes are never blocked): the current
    price is the gateway's (the ticker live, the paper price on paper) against the pyramid's
    ``entry_price`` (the signal's). A price that cannot be read lets the order go.
    """
    if order.purpose is not OrderPurpose.ENTRY or order.type is not OrderType.MARKET or order.pyramid is None:
        return None
    group = stores.groups.get(order.group_id)
    pyramid = next((p for p in group.pyramids if p.index == order.pyramid), None) if group else None
    if pyramid is None or pyramid.max_slippage_percent is None:
        return None
    current = gateway.fetch_prices([order.symbol]).get(order.symbol)
    if current is None:
        return None
    return slippage_refusal(
        order.side is OrderSide.BUY, pyramid.entry_price, current, pyramid.max_slippage_percent
    )


def _cancel_unsent(
    ctx: EngineContext, order: Order, now: datetime, config: ConfigSnapshot, *, lookup_first: bool
) -> Order:
    stores = ctx.stores
    if _claim_send(stores, order, now) is None:
        logger.info("cancel of a pending order waits for its send claim", order_id=order.id)
        return order
    if lookup_first and order.trigger_price is None:
        gateway = _gateway(ctx, order, config)
        existing = gateway.fetch_order(order.client_order_id, order.symbol)
        if existing is not None:  # it was sent after all: record it, the next pass cancels it
            return _record(stores, order, now, existing, fee_pricing(stores, gateway, order.exchange, config))
    reason = order.reason if order.reason and order.wait is None else None
    cancelled = dataclasses.replace(
        order, status=OrderStatus.CANCELLED, reason=reason or "cancelled before it was sent", wait=None
    )
    stores.orders.save(cancelled, now=now)  # StaleWrite -> re-read and re-decide
    logger.info("pending order cancelled without an exchange call", order_id=order.id)
    return cancelled


def _cancel_sent(ctx: EngineContext, order: Order, now: datetime, config: ConfigSnapshot) -> Order:
    stores = ctx.stores
    gateway = _gateway(ctx, order, config)
    try:
        ex = gateway.cancel_order(order.client_order_id, order.symbol)
    except (BackOff, TemporaryFailure) as failure:
        logger.warning("cancel deferred", order_id=order.id, error=failure.error, reason=failure.reason)
        _note_wait(stores, order, order.status, OrderWait.CANCEL_PENDING, failure.label, now)
        raise
    except OrderRefused as refused:
        logger.error("cancel refused", order_id=order.id, reason=refused.reason)
        reason = f"cancel refused: {refused.reason}"

        def note(o: Order) -> bool:
            if o.reason == reason and o.wait is None:
                return False
            o.reason, o.wait = reason, None
            return True

        return save_change(stores, order, note, now)
    if ex is None:
        logger.warning("order to cancel is unknown to the exchange", order_id=order.id)
        reason = "cancel: the exchange does not know the order"
        return _set_outcome(stores, order, OrderStatus.CANCELLED, reason, now)

    fees = fee_pricing(stores, gateway, order.exchange, config)

    def change(o: Order) -> bool:
        changed = apply_exchange_order(o, ex, now, fees=fees)
        if o.status is OrderStatus.CANCELLED and o.reason is None:
            o.reason = "cancelled on request"
            changed = True
        return changed

    logger.info("order cancel answered", order_id=order.id, status=ex.status, filled=str(ex.filled))
    return save_change(stores, order, change, now)
