"""position_update's service: recompute a group from its orders and act on it (DESIGN §3.4, §3.5).

:func:`refresh_group` is idempotent and decides from current state only: it re-reads the group and
its orders, recomputes the figures (never increments), moves the state and writes only what is
missing, so a replayed or stale stream record changes nothing. In order:

1. figures (:func:`engine.domain.accounting.compute_figures`) at the stored price (the last known
   price when none is stored) and the next state (:func:`~engine.domain.accounting.next_group_status`);
2. open, not closing:
   - protections (DESIGN §3.9, :mod:`engine.app.positions.protection`): the DCA document's ``protection``
     rules and the alert's stop / take-profit at the price; a trigger saves the group ``closing`` with the
     rule's ``close_reason`` at once (version-checked) and the close converges as below. With a trailing
     take-profit set no take-profit order is placed (the steps below are skipped);
   - ``aggregate`` / ``hybrid``: price at or beyond average entry * (1 +- agg %) → the group starts
     closing with ``close_reason`` ``take_profit`` (close order purpose ``tp``; every live order, leg
     TPs included, gets ``cancel_requested``);
   - ``pyramid_aggregate``: each pyramid whose own average reached it is closed on its own
     (:func:`engine.app.positions.closing.close_pyramid_orders`);
   - ``per_leg`` / ``hybrid``: leg TPs sized by each leg's lot (:mod:`engine.app.positions.leg_tps`):
     TPs offering more than their lot holds after a pro-rata sell are cancelled to be re-sized, and
     every entry leg with a fill gets limit TPs for the part of its lot not yet offered, at
     ``tp_price`` of the leg's **own average fill**, id ``"<leg id>-tp-<n>"``;
   - ``close_when_flat`` (DCA document, default true): when a take-profit left the group holding
     nothing and its newest pyramid has at least one fill
     (:func:`~engine.domain.accounting.flat_after_take_profit`), the group starts closing with
     ``close_reason`` ``take_profit``: its resting entry legs are cancelled and it then closes, freeing
     its slot (DESIGN §3.5);
3. ``closing``: every live order other than a close order gets ``cancel_requested``; once no order of
   the group is live, ONE market close order for the held quantity (rounded down to the step) is
   placed (:mod:`engine.app.positions.closing`). When nothing is live and what is held cannot be sold (under
   one step, ``min_qty`` or ``min_notional``) the group is ``closed``: there is nothing left to do;
4. ``closed``/``failed``: ``closed_at`` is stamped, a group the state machine ended on its own gets its
   ``close_reason`` (:func:`engine.domain.accounting.end_reason`: ``failed``, or ``take_profit`` when its
   take-profits sold everything), leftover live orders get ``cancel_requested`` and
   the risk timer stops; otherwise the risk timer is observed (``engine.domain.risk.next_timer`` via
   :mod:`engine.app.risk.candidates`) when a price is known;
5. refusals: a leg whose TPs the exchange rejected :data:`~engine.app.positions.closing.MAX_REFUSALS`
   times gets no further TP, and a group whose close was rejected that often gets no further close
   (logged as errors; the rejected orders keep the exchange's reason) — a final refusal must not loop;
6. the group is saved only when something other than its mark (unrealised PnL, ``last_price``;
   :func:`engine.domain.marks.materially_changed`) changed, so price ticks put nothing on the groups
   stream; the save uses optimistic locking: a lost race re-reads
   everything and starts again (at most :data:`~engine.app.positions.closing.SAVE_ATTEMPTS` times).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext, Stores
from engine.app.positions.leg_tps import leg_tp_id, place_leg_tps, resize_leg_tps
from engine.app.positions.protection import evaluate_protections, record_trigger
from engine.app.positions.pyramid_close import close_pyramid_orders
from engine.app.shared.closing import (
    MAX_REFUSALS,
    SAVE_ATTEMPTS,
    CloseConflict,
    close_order_id,
    is_close_order,
    is_sellable,
    new_close_order,
    refusals,
    request_cancels,
)
from engine.app.shared.markets import MarketUnknown, load_precision
from engine.app.shared.retry import retry_on_stale
from engine.domain.accounting import (
    base_currency_of,
    compute_figures,
    end_reason,
    flat_after_take_profit,
    next_group_status,
)
from engine.domain.config import ConfigSnapshot
from engine.domain.marks import materially_changed
from engine.domain.models import (
    TERMINAL_GROUP_STATUSES,
    ZERO,
    CloseReason,
    Group,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    close_purpose,
)
from engine.domain.money import round_down
from engine.domain.risk import RiskCandidate, dca_progress, observed_timer
from engine.domain.takeprofit import (
    aggregate_triggered,
    pyramid_aggregate_triggered,
    tp_mode_uses_aggregate,
    tp_mode_uses_leg_tps,
    tp_mode_uses_pyramid_aggregate,
)

logger = Logger(child=True)

__all__ = [
    "AGGREGATE_TP_REASON",
    "FLAT_CLOSE_NOTE",
    "MarketUnknown",
    "leg_tp_id",
    "load_precision",
    "refresh_group",
]

AGGREGATE_TP_REASON = "aggregate take-profit"
#: ``close_note`` of a group closed by ``close_when_flat`` (its take-profits left nothing held).
FLAT_CLOSE_NOTE = "take-profits sold everything held; resting entry legs cancelled (close_when_flat)"


def refresh_group(
    ctx: EngineContext, group_id: str, now: datetime, *, config: ConfigSnapshot | None = None
) -> Group | None:
    """Recompute group ``group_id`` from its orders and act on it (module docstring); None if unknown.

    ``config``: the snapshot the caller already holds (read from ``ctx.config`` once when omitted).
    """
    stores = ctx.stores
    cfg = config if config is not None else ctx.config.snapshot()

    def attempt() -> Group | None:
        group = stores.groups.get(group_id)
        if group is None:
            return None
        return _refresh(ctx, group, cfg, now)

    return retry_on_stale(
        attempt,
        attempts=SAVE_ATTEMPTS,
        on_exhausted=lambda: CloseConflict(f"group {group_id} kept changing while refreshing it"),
    )


def _refresh(ctx: EngineContext, group: Group, cfg: ConfigSnapshot, now: datetime) -> Group:
    stores = ctx.stores
    before = copy.deepcopy(group)
    orders = stores.orders.list_for_group(group.id)
    if group.status in TERMINAL_GROUP_STATUSES:
        request_cancels(stores, [order for order in orders if order.is_live], now)
        return group
    precision = load_precision(stores, group, cfg)
    stored_price = stores.prices.get(group.exchange, group.symbol)
    price = stored_price if stored_price is not None else group.figures.last_price
    group.figures = compute_figures(
        orders,
        side=group.side,
        base_currency=base_currency_of(group.symbol),
        price=price,
        total_legs=sum(pyramid.leg_count for pyramid in group.pyramids),
    )
    first_pyramid = group.pyramids[0].index if group.pyramids else 1
    group.status = next_group_status(group.status, orders, group.figures, precision, first_pyramid)
    if (
        group.is_open
        and group.status != GroupStatus.CLOSING
        and _closes_when_flat(ctx, group, orders, precision)
    ):
        group.status = GroupStatus.CLOSING
        group.close_reason, group.close_note = CloseReason.TAKE_PROFIT, FLAT_CLOSE_NOTE
    hold_tps = False
    if group.is_open and group.status != GroupStatus.CLOSING:
        hold_tps, saved = _protect(ctx, group, orders, precision, price, cfg, now)
        if saved:
            before = copy.deepcopy(group)
            orders = stores.orders.list_for_group(group.id)
    if group.is_open and group.status != GroupStatus.CLOSING and not hold_tps:
        _take_profits(stores, group, orders, precision, price, now)
    if group.status == GroupStatus.CLOSING:
        _converge_close(stores, group, orders, precision, price, now)
    if group.status in TERMINAL_GROUP_STATUSES:
        group.closed_at = group.closed_at or now
        ended = end_reason(group.status, orders) if group.close_reason is None else None
        if ended is not None:
            group.close_reason, group.close_note = ended
        group.risk_timer_started_at = None
        request_cancels(stores, [order for order in orders if order.is_live], now)
    elif stored_price is not None:
        group.risk_timer_started_at = _observed_timer(stores, group, orders, precision, cfg, now)
    if materially_changed(before, group):
        stores.groups.save(group, now=now)
    return group


def _protect(
    ctx: EngineContext,
    group: Group,
    orders: list[Order],
    precision: MarketPrecision,
    price: Decimal | None,
    cfg: ConfigSnapshot,
    now: datetime,
) -> tuple[bool, bool]:
    """Evaluate the protections (:mod:`engine.app.positions.protection`); ``(hold_tps, saved)``.

    ``hold_tps``: place no take-profit now — a trailing take-profit replaces them, or the DCA document
    could not be read (SSM unreachable: its defaults must not stand in for a trailing take-profit, so
    nothing is decided this pass). ``saved``: a rule fired and the group was saved ``closing`` before any
    order is written: of two passes (or a pass and a risk close) racing on this group, one wins the
    version check and the other re-reads (DESIGN §3.9: never a double close).
    """
    dca = ctx.config.dca(group.exchange, group.symbol, group.timeframe)
    if dca.unreadable:
        return True, False
    protection = dca.config.protection
    trigger = evaluate_protections(protection, group, orders, precision, price, cfg, now)
    hold_tps = protection.trailing_take_profit is not None
    if trigger is None:
        return hold_tps, False
    group.status = GroupStatus.CLOSING
    group.close_reason, group.close_note = trigger.reason, trigger.note
    ctx.stores.groups.save(group, now=now)
    logger.info("protection triggered", group_id=group.id, rule=trigger.reason.value, note=trigger.note)
    try:
        record_trigger(ctx.stores, group, trigger, price, (dca.document, dca.version), now)
    except Exception:  # the audit record must not hold up the close
        logger.exception("protection event not recorded", group_id=group.id)
    return hold_tps, True


def _take_profits(
    stores: Stores,
    group: Group,
    orders: list[Order],
    precision: MarketPrecision,
    price: Decimal | None,
    now: datetime,
) -> None:
    figures = group.figures
    if (
        price is not None
        and tp_mode_uses_aggregate(group.tp_mode)
        and figures.quantity >= precision.step
        and aggregate_triggered(group.side, figures.avg_entry, price, group.tp_aggregate_percent)
    ):
        group.status = GroupStatus.CLOSING
        group.close_reason = CloseReason.TAKE_PROFIT
        group.close_note = AGGREGATE_TP_REASON
        return
    if price is not None and tp_mode_uses_pyramid_aggregate(group.tp_mode):
        base = base_currency_of(group.symbol)
        for pyramid in pyramid_aggregate_triggered(
            orders, group.side, price, group.tp_aggregate_percent, base
        ):
            placed = close_pyramid_orders(stores, group, orders, pyramid, precision, now)
            if placed is not None:
                orders.append(placed)
    if tp_mode_uses_leg_tps(group.tp_mode):
        resize_leg_tps(stores, group, orders, precision, now)
        orders.extend(place_leg_tps(stores, group, orders, precision, now))


def _closes_when_flat(
    ctx: EngineContext, group: Group, orders: Sequence[Order], precision: MarketPrecision
) -> bool:
    """True when ``close_when_flat`` applies: a TP left nothing held, the newest pyramid has a fill, an
    entry leg still rests, and the market's DCA document has ``close_when_flat`` on."""
    if not group.pyramids or not any(o.purpose == OrderPurpose.ENTRY and o.is_live for o in orders):
        return False
    if not flat_after_take_profit(orders, group.figures, precision, group.pyramids[-1].index):
        return False
    return ctx.config.dca(group.exchange, group.symbol, group.timeframe).config.close_when_flat


def _converge_close(
    stores: Stores,
    group: Group,
    orders: list[Order],
    precision: MarketPrecision,
    price: Decimal | None,
    now: datetime,
) -> None:
    request_cancels(stores, [order for order in orders if order.is_live and not is_close_order(order)], now)
    if any(order.is_live for order in orders):
        return  # cancels (or the close order itself) still in flight
    earlier = [order for order in orders if order.id.startswith(f"{group.id}-close-")]
    if refusals(earlier) >= MAX_REFUSALS:
        logger.error(f"group {group.id}: close refused {MAX_REFUSALS} times, not resent", group_id=group.id)
        return
    held = group.figures.quantity
    quantity = round_down(held, precision.step) if held > ZERO else ZERO
    valued_at = price if price is not None else group.figures.avg_entry
    if not is_sellable(quantity, valued_at, precision):
        group.status = GroupStatus.CLOSED  # nothing live, nothing sellable left
        return
    close = new_close_order(
        group,
        order_id=close_order_id(group.id, orders),
        purpose=close_purpose(group.close_reason),
        quantity=quantity,
        now=now,
    )
    if stores.orders.put_new(close):
        orders.append(close)


def _observed_timer(
    stores: Stores,
    group: Group,
    orders: Sequence[Order],
    precision: MarketPrecision,
    cfg: ConfigSnapshot,
    now: datetime,
) -> datetime | None:
    filled, submitted, all_filled = dca_progress(group, orders)
    candidate = RiskCandidate(
        group=group,
        precision=precision,
        pyramids_filled=filled,
        all_dca_submitted=submitted,
        all_dca_filled=all_filled,
    )
    queued = stores.queue.find_by_key(group.key)
    return observed_timer(candidate, cfg.risk, now, [queued] if queued is not None else [])
