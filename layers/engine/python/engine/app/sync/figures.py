"""The engine's gauges, computed by order_sync once per run: an equity point and CloudWatch metrics.

- Realised PnL: Σ ``figures.realized_pnl_usd`` over every group (open, closed, failed).
- Unrealised PnL: Σ ``figures.unrealized_pnl_usd`` over the open groups, marked at the stored prices
  (:mod:`engine.app.shared.marks`: groups are not saved on price ticks).
- Equity: the paper starting balance (``engine.paper.balance_usd``) + realised + unrealised.
- Per account (DESIGN §3.10): the same three figures over the account's groups, for every configured
  account and every account holding a group; each is recorded as its own equity series
  (``account#<name>``, :func:`engine.store.account_series`) next to the total series (``default``,
  kept as before). Each account's equity is measured on the same base, ``engine.paper.balance_usd``
  (the base ``GET /analytics?account=`` uses too), so the accounts' equities do not add up to the
  total, which keeps a single base as before.
- Metrics (EMF, namespace env POWERTOOLS_METRICS_NAMESPACE): PoolOpen, PoolMax, QueueDepth, OpenGroups,
  RealizedPnlUsd, UnrealizedPnlUsd, EquityUsd, UnknownOrders, and OrdersByState with dimension
  ``State`` (one ``single_metric`` per live state, so the dimension does not leak into the others).

The metrics go through an ``EphemeralMetrics`` set flushed at once: they are printed whether or not the
caller runs under a ``log_metrics`` decorator, and never mix with another function's shared set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from engine.app.context import Stores
from engine.app.shared.marks import marked_all
from engine.config.reporting import emit_dimensioned_metric
from engine.config.settings import metrics_namespace
from engine.domain.config import ConfigSnapshot
from engine.domain.models import LIVE_ORDER_STATUSES, ZERO, GroupStatus, OrderStatus
from engine.store import account_series

__all__ = ["AccountFigures", "EngineFigures", "emit_metrics", "measure", "record_equity"]

logger = Logger()


@dataclass(frozen=True)
class AccountFigures:
    """One account's money gauges."""

    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    equity_usd: Decimal

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly view (Decimals as strings)."""
        return {name: str(value) for name, value in vars(self).items()}


@dataclass(frozen=True)
class EngineFigures:
    """The gauges of one sync run."""

    pool_open: int
    pool_max: int
    queue_depth: int
    open_groups: int
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    equity_usd: Decimal
    orders_by_state: dict[str, int] = field(default_factory=dict)
    #: Account name → its figures (DESIGN §3.10), accounts in name order.
    accounts: dict[str, AccountFigures] = field(default_factory=dict)

    @property
    def unknown_orders(self) -> int:
        """Orders whose outcome is not known."""
        return self.orders_by_state.get(OrderStatus.UNKNOWN.value, 0)


def measure(stores: Stores, config: ConfigSnapshot) -> EngineFigures:
    """Read the current gauges from the stores (see the module docstring)."""
    groups = stores.groups.list_by_status(list(GroupStatus))
    open_groups = marked_all(stores, [g for g in groups if g.is_open])
    realized = sum((g.figures.realized_pnl_usd for g in groups), ZERO)
    unrealized = sum((g.figures.unrealized_pnl_usd for g in open_groups), ZERO)
    states = Counter(o.status.value for o in stores.orders.list_by_status(LIVE_ORDER_STATUSES))
    base = config.engine.paper.balance_usd
    names = sorted({*config.engine.accounts, *(g.account for g in groups)})
    accounts: dict[str, AccountFigures] = {}
    for name in names:
        own_realized = sum((g.figures.realized_pnl_usd for g in groups if g.account == name), ZERO)
        own_unrealized = sum((g.figures.unrealized_pnl_usd for g in open_groups if g.account == name), ZERO)
        accounts[name] = AccountFigures(own_realized, own_unrealized, base + own_realized + own_unrealized)
    return EngineFigures(
        pool_open=sum(stores.pool.counts().values()),
        pool_max=sum(config.pool.max_open_for(account) for account in config.engine.accounts),
        queue_depth=len(stores.queue.list_all()),
        open_groups=len(open_groups),
        realized_pnl_usd=realized,
        unrealized_pnl_usd=unrealized,
        equity_usd=base + realized + unrealized,
        orders_by_state={status.value: states.get(status.value, 0) for status in sorted(LIVE_ORDER_STATUSES)},
        accounts=accounts,
    )


def record_equity(stores: Stores, figures: EngineFigures, now: datetime) -> None:
    """Append the equity points of ``now``: the total series, then one per account."""
    stores.equity.append(now, figures.realized_pnl_usd, figures.equity_usd)
    for name, own in figures.accounts.items():
        stores.equity.append(now, own.realized_pnl_usd, own.equity_usd, series=account_series(name))


def emit_metrics(figures: EngineFigures) -> None:
    """Print the gauges as EMF metrics (a failure is logged, never raised)."""
    namespace = metrics_namespace()
    try:
        metrics = EphemeralMetrics(namespace=namespace)
        counts = {
            "PoolOpen": figures.pool_open,
            "PoolMax": figures.pool_max,
            "QueueDepth": figures.queue_depth,
            "OpenGroups": figures.open_groups,
            "UnknownOrders": figures.unknown_orders,
        }
        for name, count in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
        money = {
            "RealizedPnlUsd": figures.realized_pnl_usd,
            "UnrealizedPnlUsd": figures.unrealized_pnl_usd,
            "EquityUsd": figures.equity_usd,
        }
        for name, amount in money.items():
            metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=float(amount))
        metrics.flush_metrics()
        for state, count in figures.orders_by_state.items():
            emit_dimensioned_metric("OrdersByState", count, "State", state)
    except Exception:  # metrics must never break the sync
        logger.exception("could not emit the sync metrics")
