"""The reconciliation report: the engine's orders and positions compared with the exchange's (DESIGN §5).

:func:`reconciliation_report` is read-only. For every configured account (and any other account with
engine orders) it reads the exchange's orders once — for a paper account the paper book itself (no
matching step, unlike the paper gateway's reads), for a live account the gateway's open orders plus
the closed orders of every symbol the engine traded since its oldest order there — and matches them
to the engine's orders by client order id. Every mismatch is one :class:`Drift`:

=========================  =====================================================================
kind                       meaning
=========================  =====================================================================
``missing_on_exchange``    the engine recorded the order as placed (it holds an exchange id, or a
                           status only an exchange gives: open / partially_filled / filled), the
                           exchange has no order with its client id
``not_in_engine``          the exchange has an order no engine order claims (a stray or a duplicate)
``unrecorded``             the exchange has the order, the engine still has it ``pending`` /
                           ``unknown`` / cancelled-before-sending / rejected (a crash after the send)
``status``                 both have it, our status differs from the exchange's (mapped as the
                           executor maps it: ``exchange_orders.status_from_exchange``)
``fill``                   both have it, the filled quantity differs (a fill not yet recorded)
``unknown_outcome``        the engine has the order ``unknown`` and the exchange does not show it
``stale_intent``           a ``pending`` order (not waiting for a price trigger) older than
                           ``stale_after`` that never reached the exchange (the executor never ran)
``position``               a group's stored quantity or filled-leg count differs from what its
                           orders hold once the exchange's fills are applied (position_update has
                           not caught up with a fill)
=========================  =====================================================================

Not drift: a fresh ``pending`` order that has not reached the exchange yet (listed in
``Report.in_flight``), a pending order waiting for its price trigger, an order the engine cancelled
or that the exchange rejected before it was ever placed.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from engine.app import gateways
from engine.app.context import Stores
from engine.app.execution import apply_exchange_order, status_from_exchange
from engine.config import load_config
from engine.domain.accounting import base_currency_of, compute_figures
from engine.domain.config import ConfigSnapshot
from engine.domain.models import ExchangeOrder, Group, Order, OrderStatus
from engine.exchange.gateway import ExchangeGateway

__all__ = [
    "STALE_INTENT_AFTER",
    "Drift",
    "DriftKind",
    "ExchangeOrderSource",
    "Report",
    "orders_from_gateway",
    "reconciliation_report",
]

#: A pending order older than this that is not on the exchange is drift (order_sync re-drives it then).
STALE_INTENT_AFTER = timedelta(minutes=2)

#: Reads every order of one account as the exchange has it.
ExchangeOrderSource = Callable[[], Iterable[ExchangeOrder]]

#: Statuses only an exchange answer can give an order.
_PLACED_STATUSES = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED})


class DriftKind(StrEnum):
    """Kinds of difference between the engine and the exchange (table in the module docstring)."""

    MISSING_ON_EXCHANGE = "missing_on_exchange"
    NOT_IN_ENGINE = "not_in_engine"
    UNRECORDED = "unrecorded"
    STATUS = "status"
    FILL = "fill"
    UNKNOWN_OUTCOME = "unknown_outcome"
    STALE_INTENT = "stale_intent"
    POSITION = "position"


@dataclass(frozen=True)
class Drift:
    """One difference: where (account, order or group) and both sides' view, in words."""

    kind: DriftKind
    exchange: str
    detail: str
    order_id: str | None = None
    client_order_id: str | None = None
    group_id: str | None = None


@dataclass
class Report:
    """The outcome of one comparison."""

    generated_at: datetime
    accounts: list[str] = field(default_factory=list)
    orders_compared: int = 0
    exchange_orders: int = 0
    groups_compared: int = 0
    #: Fresh pending orders not on the exchange yet (intent the executor is about to act on).
    in_flight: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing drifted."""
        return not self.drift

    def of_kind(self, kind: DriftKind) -> list[Drift]:
        """The drift items of one kind."""
        return [item for item in self.drift if item.kind is kind]

    def summary(self) -> dict[str, int]:
        """Drift count per kind (kinds with none left out)."""
        counts: dict[str, int] = defaultdict(int)
        for item in self.drift:
            counts[item.kind.value] += 1
        return dict(counts)


def orders_from_gateway(
    gateway: ExchangeGateway, symbols: Iterable[str], since: datetime | None
) -> list[ExchangeOrder]:
    """Open orders of every symbol plus the closed orders of ``symbols`` since ``since`` (live accounts)."""
    found: dict[str, ExchangeOrder] = {o.client_order_id: o for o in gateway.fetch_open_orders(None)}
    for symbol in sorted(set(symbols)):
        for order in gateway.fetch_closed_orders(symbol, since):
            found.setdefault(order.client_order_id, order)
    return list(found.values())


def _default_source(
    stores: Stores, exchange: str, orders: Sequence[Order], config: ConfigSnapshot
) -> ExchangeOrderSource:
    account = config.engine.accounts.get(exchange)
    if account is None or account.mode == "paper":
        return lambda: stores.paper.list_all(exchange)
    symbols = {o.symbol for o in orders}
    since = min((o.created_at for o in orders), default=None)
    gateway = gateways.gateway_for_exchange(stores, exchange, config)
    return lambda: orders_from_gateway(gateway, symbols, since)


def _was_placed(order: Order) -> bool:
    return order.exchange_order_id is not None or order.status in _PLACED_STATUSES


def _compare_order(
    order: Order, ex: ExchangeOrder | None, now: datetime, stale_after: timedelta
) -> Drift | str | None:
    """A drift item, the order id when it is merely in flight, or None when both sides agree."""

    def drift(kind: DriftKind, detail: str) -> Drift:
        return Drift(kind, order.exchange, detail, order.id, order.client_order_id, order.group_id)

    if ex is None:
        if order.status is OrderStatus.UNKNOWN:
            return drift(
                DriftKind.UNKNOWN_OUTCOME, f"engine: unknown ({order.reason}); exchange: no such order"
            )
        if order.status is OrderStatus.PENDING:
            if order.trigger_price is not None and not order.cancel_requested:
                return None
            if now - order.updated_at >= stale_after:
                age = int((now - order.updated_at).total_seconds())
                return drift(DriftKind.STALE_INTENT, f"engine: pending for {age} s; exchange: no such order")
            return order.id
        if _was_placed(order):
            return drift(
                DriftKind.MISSING_ON_EXCHANGE, f"engine: {order.status.value}; exchange: no such order"
            )
        return None
    theirs = status_from_exchange(ex)
    if order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN) or not _was_placed(order):
        if order.status is OrderStatus.CANCELLED and theirs is OrderStatus.CANCELLED and ex.filled == 0:
            return None
        return drift(
            DriftKind.UNRECORDED,
            f"engine: {order.status.value}; exchange: {ex.status} filled {ex.filled} of {ex.amount}",
        )
    if ex.filled != order.filled:
        return drift(DriftKind.FILL, f"engine: filled {order.filled}; exchange: filled {ex.filled}")
    if theirs is not order.status:
        return drift(
            DriftKind.STATUS, f"engine: {order.status.value}; exchange: {ex.status} ({theirs.value})"
        )
    return None


def _position_drift(
    group: Group, orders: Sequence[Order], theirs: Mapping[str, ExchangeOrder], now: datetime
) -> Drift | None:
    """Compare the group's stored figures with its orders after applying the exchange's fills."""
    as_exchange_has_them = []
    for order in orders:
        copy = dataclasses.replace(order)
        ex = theirs.get(order.client_order_id)
        if ex is not None:
            apply_exchange_order(copy, ex, now)
        as_exchange_has_them.append(copy)
    figures = compute_figures(
        as_exchange_has_them,
        side=group.side,
        base_currency=base_currency_of(group.symbol),
        price=None,
        total_legs=group.figures.total_legs,
    )
    stored = group.figures
    if figures.quantity == stored.quantity and figures.filled_legs == stored.filled_legs:
        return None
    return Drift(
        DriftKind.POSITION,
        group.exchange,
        f"engine: holds {stored.quantity} with {stored.filled_legs} legs filled; by the exchange's fills: "
        f"{figures.quantity} with {figures.filled_legs} legs filled",
        group_id=group.id,
    )


def reconciliation_report(
    stores: Stores,
    now: datetime,
    *,
    config: ConfigSnapshot | None = None,
    sources: Mapping[str, ExchangeOrderSource] | None = None,
    stale_after: timedelta = STALE_INTENT_AFTER,
) -> Report:
    """Compare every engine order and group with the exchange's orders (module docstring).

    ``sources`` overrides where an account's exchange orders are read from (account name -> reader).
    """
    cfg = config if config is not None else load_config()
    engine_orders = stores.orders.list_by_status(OrderStatus)
    by_account: dict[str, list[Order]] = defaultdict(list)
    for order in engine_orders:
        by_account[order.exchange].append(order)
    accounts = set(by_account) | set(sources or {}) | set(cfg.engine.accounts)
    report = Report(generated_at=now, accounts=sorted(accounts))
    theirs_by_account: dict[str, dict[str, ExchangeOrder]] = {}
    for exchange in report.accounts:
        orders = by_account.get(exchange, [])
        source = (sources or {}).get(exchange) or _default_source(stores, exchange, orders, cfg)
        theirs = {o.client_order_id: o for o in source()}
        theirs_by_account[exchange] = theirs
        report.exchange_orders += len(theirs)
        claimed = set()
        for order in sorted(orders, key=lambda o: o.id):
            claimed.add(order.client_order_id)
            report.orders_compared += 1
            outcome = _compare_order(order, theirs.get(order.client_order_id), now, stale_after)
            if isinstance(outcome, Drift):
                report.drift.append(outcome)
            elif outcome is not None:
                report.in_flight.append(outcome)
        for client_id, ex in sorted(theirs.items()):
            if client_id not in claimed:
                report.drift.append(
                    Drift(
                        DriftKind.NOT_IN_ENGINE,
                        exchange,
                        f"exchange: {ex.side.value} {ex.amount} {ex.symbol} {ex.status}; engine: no order",
                        client_order_id=client_id,
                    )
                )
    orders_by_group: dict[str, list[Order]] = defaultdict(list)
    for order in engine_orders:
        orders_by_group[order.group_id].append(order)
    for group_id in sorted(orders_by_group):
        group = stores.groups.get(group_id)
        if group is None:
            continue
        report.groups_compared += 1
        found = _position_drift(
            group, orders_by_group[group_id], theirs_by_account.get(group.exchange, {}), now
        )
        if found is not None:
            report.drift.append(found)
    return report
