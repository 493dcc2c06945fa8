"""order_sync: the every-minute poll of the exchanges and the engine's safety nets (DESIGN §1, §5, §3.6).

One run (unless ``force``, only when the ``order_sync`` interval of :data:`SYNC_INTERVAL` has passed):

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
2. Market precision of every configured account, refreshed when older than :data:`MARKETS_MAX_AGE`
   (one attempt per :data:`MARKETS_RETRY` through ``claim_interval("markets:<account>")``, so a failing
   exchange is retried soon while a refreshed one waits an hour).
3. ``refresh_group`` of every open group (aggregate TP triggers and unrealised PnL follow the price).
4. ``sweep_queue`` (expiry, promotion into free slots, breaker reset).
5. Equity point and metrics (:mod:`engine.app.sync.figures`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from engine.app.pool import sweep_queue
from engine.app.positions import refresh_group
from engine.app.sync.figures import EngineFigures, emit_metrics, measure, record_equity
from engine.domain.config import ConfigSnapshot
from engine.domain.grid import trigger_reached
from engine.domain.models import ExchangeOrder, Group, Order, OrderStatus, OrderWait
from engine.exchange.errors import ExchangeFailure
from engine.exchange.gateway import ExchangeGateway
from engine.exchange.prices import CcxtPriceSource, paper_price_source

__all__ = [
    "MARKETS_MAX_AGE",
    "STALE_PENDING",
    "SYNC_INTERVAL",
    "SyncSummary",
    "run_sync",
]

logger = Logger()

#: order_sync's own interval (the schedule fires every minute, with some jitter).
SYNC_INTERVAL = timedelta(seconds=55)
#: Market precision older than this is refreshed.
MARKETS_MAX_AGE = timedelta(hours=1)
#: At most one market refresh attempt per account in this time.
MARKETS_RETRY = timedelta(minutes=5)
#: A pending order not updated for this long is re-driven.
STALE_PENDING = timedelta(minutes=2)

_POLLED = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
_LIVE = (OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


@dataclass
class SyncSummary:
    """What one run did (``ran`` False: the interval had not passed, nothing was done)."""

    ran: bool = False
    accounts: list[str] = field(default_factory=list)
    prices_updated: int = 0
    orders_polled: int = 0
    orders_updated: int = 0
    cancels_driven: int = 0
    triggers_fired: int = 0
    unknown_found: int = 0
    unknown_waiting: int = 0
    unknown_resent: int = 0
    redriven: int = 0
    markets_refreshed: list[str] = field(default_factory=list)
    groups_refreshed: int = 0
    promoted: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    figures: EngineFigures | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (Decimals as strings)."""
        data: dict[str, Any] = {key: value for key, value in vars(self).items() if key != "figures"}
        if self.figures is not None:
            data["figures"] = {
                key: str(value) if not isinstance(value, int | dict) else value
                for key, value in vars(self.figures).items()
            }
        return data


def run_sync(ctx: EngineContext, now: datetime, *, force: bool = False) -> SyncSummary:
    """One order_sync run (module docstring); ``force`` ignores the interval (local tick)."""
    stores = ctx.stores
    if not force and not stores.state.claim_interval("order_sync", SYNC_INTERVAL, now):
        return SyncSummary(ran=False)
    cfg = ctx.config.snapshot()
    summary = SyncSummary(ran=True)
    live_orders = stores.orders.list_by_status(_LIVE)
    open_groups = stores.groups.list_open()
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
    for exchange in cfg.engine.accounts:
        _refresh_markets(ctx, exchange, now, cfg, summary)
    for group in open_groups:
        try:
            refresh_group(ctx, group.id, now, config=cfg)
            summary.groups_refreshed += 1
        except Exception as exc:
            logger.exception("group refresh failed", group_id=group.id)
            summary.failures[f"group:{group.id}"] = f"{type(exc).__name__}: {exc}"
    try:
        summary.promoted = list(sweep_queue(ctx, cfg, now))
    except Exception as exc:
        logger.exception("queue sweep failed")
        summary.failures["queue"] = f"{type(exc).__name__}: {exc}"
    figures = measure(stores, cfg)
    record_equity(stores, figures, now)
    emit_metrics(figures)
    summary.figures = figures
    logger.info("order sync done", summary=summary.as_dict())
    return summary


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


def _refresh_markets(
    ctx: EngineContext, exchange: str, now: datetime, cfg: ConfigSnapshot, summary: SyncSummary
) -> None:
    stores = ctx.stores
    refreshed_at = stores.markets.refreshed_at(exchange)
    if refreshed_at is not None and now - refreshed_at < MARKETS_MAX_AGE:
        return
    if not stores.state.claim_interval(f"markets:{exchange}", MARKETS_RETRY, now):
        return
    try:
        markets = ctx.gateways(exchange, cfg).load_markets()
        stores.markets.put_many(exchange, markets, now)
    except Exception as exc:
        logger.exception("market refresh failed", exchange=exchange)
        summary.failures[f"markets:{exchange}"] = f"{type(exc).__name__}: {exc}"
        return
    summary.markets_refreshed.append(exchange)
