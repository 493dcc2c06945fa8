"""order_sync: polling the exchanges, in two passes (DESIGN §1 "Sync has two passes").

:func:`run_sync` runs, each when due (``force`` runs both at once, the local ``/_local/tick``):

- the **fast pass** (:func:`run_fast_pass`) every ``engine.sync_interval_seconds`` (claimed through the
  ``order_sync_fast`` last-run item with :func:`fast_claim_interval`); in AWS the minute schedule and the
  sync loop (:mod:`engine.app.sync.loop`) both ask for it, locally the scheduler does;
- the **minute pass** (:func:`engine.app.sync.minute.run_minute_pass`) once a minute (the ``order_sync``
  last-run item, :data:`SYNC_INTERVAL`): markets, queue sweep and expiry, counter reconciliation,
  equity point and metrics — after the fast pass when both are due.

The fast pass:

1. For every account with open groups or live orders (one failing account is logged and skipped):
   a. prices of the symbols in play -> the prices table: live accounts from the exchange's tickers;
      paper accounts keep the table's prices (set locally), or with env ``PAPER_PRICE_SOURCE=tickers``
      (a dry run in AWS) from the public ccxt tickers;
   b. poll open / partially_filled orders by client order id (one open-orders listing per symbol, a
      ``fetch_order`` for those no longer in it) and save fill changes — the orders stream then drives
      position_update; an order with ``cancel_requested`` goes to the executor's cancel instead;
   c. fire price triggers: a pending leg whose ``trigger_price`` is reached loses it (the executor, fed
      by the orders stream, then sends it);
   d. reconcile ``unknown`` orders (:mod:`engine.app.execution.unknown`);
   e. re-drive pending orders untouched for :data:`STALE_PENDING` (a send deferred or lost): a save
      with ``wait`` ``redriven`` (reason ``REDRIVE_REASON``; a fresh send claim), then the executor's
      :func:`process_order` with ``lookup_first`` (an earlier attempt may have reached the exchange).
2. ``refresh_group`` of every open group (take-profits for new fills, aggregate TP triggers). A group
   is saved only when something other than its unrealised PnL changed (:mod:`engine.domain.marks`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext, Stores
from engine.app.execution import (
    REDRIVE_REASON,
    FeePricing,
    ReconcileOutcome,
    apply_exchange_order,
    fee_pricing,
    process_order,
    reconcile_unknown,
    save_change,
)
from engine.app.positions import refresh_group
from engine.app.sync.minute import run_minute_pass
from engine.app.sync.summary import SyncSummary
from engine.domain.config import ConfigSnapshot
from engine.domain.grid import trigger_reached
from engine.domain.models import ExchangeOrder, Group, Order, OrderStatus, OrderWait
from engine.exchange.errors import ExchangeFailure
from engine.exchange.gateway import ExchangeGateway
from engine.exchange.prices import CcxtPriceSource, paper_price_source

__all__ = [
    "FAST_SYNC_NAME",
    "STALE_PENDING",
    "SYNC_INTERVAL",
    "SyncSummary",
    "fast_claim_interval",
    "live_work",
    "run_fast_pass",
    "run_sync",
]

logger = Logger()

#: The minute pass's interval (the schedule fires every minute, with some jitter).
SYNC_INTERVAL = timedelta(seconds=55)
#: Last-run item of the fast pass (the minute pass keeps ``order_sync``).
FAST_SYNC_NAME = "order_sync_fast"
#: How much earlier than ``sync_interval_seconds`` after the last fast pass a new one may start: a tick
#: that comes a little early (scheduler jitter) still runs, a duplicate right after one does not.
FAST_CLAIM_SLACK = timedelta(milliseconds=500)
#: A pending order not updated for this long is re-driven.
STALE_PENDING = timedelta(minutes=2)

_POLLED = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
_LIVE = (OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


def fast_claim_interval(cfg: ConfigSnapshot) -> timedelta:
    """Least time between two fast passes: ``engine.sync_interval_seconds`` less :data:`FAST_CLAIM_SLACK`."""
    return timedelta(seconds=cfg.engine.sync_interval_seconds) - FAST_CLAIM_SLACK


def live_work(stores: Stores) -> tuple[list[Order], list[Group]]:
    """(live orders, open groups): what the fast pass works on; both empty = nothing is live."""
    return stores.orders.list_by_status(_LIVE), stores.groups.list_open()


def run_sync(ctx: EngineContext, now: datetime, *, force: bool = False) -> SyncSummary:
    """One order_sync run: the fast pass and the minute pass, each when due (module docstring).

    ``force`` runs both, ignoring (and not advancing) their intervals.
    """
    stores = ctx.stores
    cfg = ctx.config.snapshot()
    summary = SyncSummary()
    if force or stores.state.claim_interval(FAST_SYNC_NAME, fast_claim_interval(cfg), now):
        run_fast_pass(ctx, now, cfg, summary)
    if force or stores.state.claim_interval("order_sync", SYNC_INTERVAL, now):
        run_minute_pass(ctx, now, cfg, summary)
    summary.ran = summary.fast or summary.minute
    if summary.ran:
        logger.info("order sync done", summary=summary.as_dict())
    return summary


def run_fast_pass(ctx: EngineContext, now: datetime, cfg: ConfigSnapshot, summary: SyncSummary) -> None:
    """The fast pass (module docstring) into ``summary``; ``summary.live`` says whether anything was live."""
    stores = ctx.stores
    summary.fast = True
    live_orders, open_groups = live_work(stores)
    summary.live = bool(live_orders or open_groups)
    orders_by_account: dict[str, list[Order]] = defaultdict(list)
    for order in live_orders:
        orders_by_account[order.exchange].append(order)
    groups_by_account: dict[str, list[Group]] = defaultdict(list)
    for group in open_groups:
        groups_by_account[group.exchange].append(group)
    summary.accounts = sorted(set(orders_by_account) | set(groups_by_account))
    for exchange in summary.accounts:
        try:
            _sync_account(
                ctx, exchange, groups_by_account[exchange], orders_by_account[exchange], now, cfg, summary
            )
        except Exception as exc:
            logger.exception("account sync failed", exchange=exchange)
            summary.failures[exchange] = f"{type(exc).__name__}: {exc}"
    for group in open_groups:
        try:
            refresh_group(ctx, group.id, now, config=cfg)
            summary.groups_refreshed += 1
        except Exception as exc:
            logger.exception("group refresh failed", group_id=group.id)
            summary.failures[f"group:{group.id}"] = f"{type(exc).__name__}: {exc}"


def _sync_account(
    ctx: EngineContext,
    exchange: str,
    groups: list[Group],
    orders: list[Order],
    now: datetime,
    cfg: ConfigSnapshot,
    summary: SyncSummary,
) -> None:
    stores = ctx.stores
    gateway = ctx.gateways(exchange, cfg)
    symbols = sorted({g.symbol for g in groups} | {o.symbol for o in orders})
    _update_prices(stores, gateway, exchange, symbols, now, cfg, summary)
    _poll_open_orders(ctx, gateway, [o for o in orders if o.status in _POLLED], now, cfg, summary)
    _fire_triggers(stores, exchange, [o for o in orders if o.status is OrderStatus.PENDING], now, summary)
    for order in orders:
        if order.status is not OrderStatus.UNKNOWN:
            continue
        try:
            outcome = reconcile_unknown(ctx, gateway, order, now, cfg)
        except ExchangeFailure as failure:
            logger.warning("unknown order lookup failed", order_id=order.id, reason=failure.reason)
            continue
        if outcome is ReconcileOutcome.FOUND:
            summary.unknown_found += 1
        elif outcome is ReconcileOutcome.WAITING:
            summary.unknown_waiting += 1
        elif outcome is ReconcileOutcome.RESENT:
            summary.unknown_resent += 1
    _redrive_stale_pending(ctx, orders, now, cfg, summary)


def _update_prices(
    stores: Stores,
    gateway: ExchangeGateway,
    exchange: str,
    symbols: list[str],
    now: datetime,
    cfg: ConfigSnapshot,
    summary: SyncSummary,
) -> None:
    if not symbols:
        return
    account = cfg.engine.accounts.get(exchange)
    if account is not None and account.mode == "live":
        prices = gateway.fetch_prices(symbols)
    elif paper_price_source() == "tickers":
        source = CcxtPriceSource(exchange)
        prices = {}
        for symbol in symbols:
            price = source.get(exchange, symbol)
            if price is not None:
                prices[symbol] = price
    else:
        return
    for symbol, price in prices.items():
        stores.prices.set(exchange, symbol, price, now)
        summary.prices_updated += 1


def _poll_open_orders(
    ctx: EngineContext,
    gateway: ExchangeGateway,
    orders: list[Order],
    now: datetime,
    cfg: ConfigSnapshot,
    summary: SyncSummary,
) -> None:
    by_symbol: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_symbol[order.symbol].append(order)
    fees = fee_pricing(ctx.stores, gateway, orders[0].exchange if orders else gateway.name, cfg)
    for symbol, symbol_orders in sorted(by_symbol.items()):
        listed: dict[str, ExchangeOrder] | None = None
        for order in symbol_orders:
            try:
                if order.cancel_requested:
                    process_order(ctx, order.id, now, config=cfg)
                    summary.cancels_driven += 1
                    continue
                if listed is None:
                    listed = {o.client_order_id: o for o in gateway.fetch_open_orders(symbol)}
                ex = listed.get(order.client_order_id) or gateway.fetch_order(order.client_order_id, symbol)
            except ExchangeFailure as failure:
                logger.warning("order poll failed", order_id=order.id, reason=failure.reason)
                continue
            summary.orders_polled += 1
            if ex is None:
                logger.warning("open order not found on the exchange", order_id=order.id)
                continue
            if save_change(ctx.stores, order, _recorder(ex, now, fees), now) is not order:
                summary.orders_updated += 1


def _recorder(ex: ExchangeOrder, now: datetime, fees: FeePricing) -> Callable[[Order], bool]:
    def record(order: Order) -> bool:
        return apply_exchange_order(order, ex, now, fees=fees)

    return record


def _fire_triggers(
    stores: Stores, exchange: str, pending: list[Order], now: datetime, summary: SyncSummary
) -> None:
    sides: dict[str, Group | None] = {}
    for order in pending:
        if order.trigger_price is None or order.cancel_requested:
            continue
        price = stores.prices.get(exchange, order.symbol)
        if price is None:
            continue
        if order.group_id not in sides:
            sides[order.group_id] = stores.groups.get(order.group_id)
        group = sides[order.group_id]
        if group is None or not trigger_reached(group.side, order.trigger_price, price):
            continue

        def fire(o: Order) -> bool:
            if o.status is not OrderStatus.PENDING or o.trigger_price is None or o.cancel_requested:
                return False
            o.trigger_price = None
            return True

        saved = save_change(stores, order, fire, now)
        if saved is not order:
            summary.triggers_fired += 1
            logger.info("price trigger reached", order_id=order.id, price=str(price))


def _redrive_stale_pending(
    ctx: EngineContext, orders: list[Order], now: datetime, cfg: ConfigSnapshot, summary: SyncSummary
) -> None:
    for order in orders:
        if order.status is not OrderStatus.PENDING:
            continue
        if order.trigger_price is not None and not order.cancel_requested:
            continue
        if now - order.updated_at < STALE_PENDING:
            continue
        try:
            marked = save_change(ctx.stores, order, _redrive_mark, now)
            if marked.status is not OrderStatus.PENDING:
                continue
            process_order(ctx, order.id, now, config=cfg, lookup_first=True)
        except ExchangeFailure as failure:
            logger.warning("re-drive deferred", order_id=order.id, reason=failure.reason)
        summary.redriven += 1


def _redrive_mark(order: Order) -> bool:
    """A new version of a stuck pending order (a fresh send claim), saying it was re-driven."""
    if order.status is not OrderStatus.PENDING:
        return False
    previous = order.reason
    if previous is None or order.wait is OrderWait.REDRIVEN:
        order.reason = REDRIVE_REASON
    else:
        order.reason = f"{REDRIVE_REASON} (was: {previous})"
    order.wait = OrderWait.REDRIVEN
    return True
