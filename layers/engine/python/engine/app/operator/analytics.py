"""``GET /analytics`` and the closed-groups CSV export (DESIGN §6): reads behind the performance view.

Where the figures come from, without reading the whole history on every call:

- **day / week / month** (today, the last 7 or the last 30 UTC days, today included): the groups closed
  on each day of the period from the groups table's index by close day (``by_closed_day``, one query
  per day), and the daily realised PnL from the day counters (``day#<account>#<date>``, one batch read).
- **all**: a roll-up of every *settled* day (older than :data:`SETTLE_DAYS` days) kept in the state
  table (``analytics/<scope>``: additive totals per symbol, timeframe and side, the drawdown's running
  state, the best and worst groups, the daily PnL series), plus the unsettled days read as above. Each
  call folds only the days that settled since the roll-up was saved; the very first call builds it
  from the closed groups once (index ``by_status``). A closed group never changes, and days are only
  folded once they are two days old, so late writes to a day's groups still count.

Decisions written down here: the equity that daily returns are measured on is
``engine.paper.balance_usd`` (the same base as the equity curve) plus the realised PnL before that
day; without ``account`` every configured account is included (one base for all of them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.app.context import EngineContext
from engine.app.shared.views import group_view, iso, jsonable
from engine.domain.analytics import ClosedTrade, Rollup, report
from engine.domain.counters import account_of
from engine.domain.models import Group, GroupStatus

__all__ = ["PERIODS", "SETTLE_DAYS", "analytics_report", "closed_groups_csv", "closed_trade"]

#: Days (today included) of each bounded period; ``all`` has none.
PERIODS: dict[str, int | None] = {"day": 1, "week": 7, "month": 30, "all": None}
#: A day is folded into the stored roll-up once it is this many days old.
SETTLE_DAYS = 2
ROLLUP_PREFIX = "analytics/"
ALL_ACCOUNTS = "*"

CSV_COLUMNS = (
    "id", "account", "exchange", "symbol", "timeframe", "side", "status", "pyramid_count", "filled_legs",
    "total_legs", "invested_usd", "realized_pnl_usd", "fees_usd", "created_at", "closed_at",
    "close_reason", "close_note",
)  # fmt: skip


def closed_trade(group: Group) -> ClosedTrade:
    """The analytics record of a closed group."""
    assert group.closed_at is not None
    return ClosedTrade(
        group_id=group.id,
        account=account_of(group.exchange),
        exchange=group.exchange,
        symbol=group.symbol,
        timeframe=group.timeframe,
        side=group.side.value,
        realized_usd=group.figures.realized_pnl_usd,
        invested_usd=group.figures.invested_usd,
        closed_at=group.closed_at,
        close_reason=None if group.close_reason is None else group.close_reason.value,
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class _Reader:
    """The reads of one report: accounts in scope, trades per day, daily PnL."""

    def __init__(self, ctx: EngineContext, accounts: list[str]) -> None:
        self.ctx = ctx
        self.accounts = accounts

    def _mine(self, group: Group) -> bool:
        return (
            group.status == GroupStatus.CLOSED
            and group.closed_at is not None
            and account_of(group.exchange) in self.accounts
        )

    def trades_on(self, days: Iterable[date]) -> list[ClosedTrade]:
        trades: list[ClosedTrade] = []
        for day in days:
            trades.extend(
                closed_trade(g) for g in self.ctx.stores.groups.list_closed_on(day) if self._mine(g)
            )
        return trades

    def all_closed(self) -> list[ClosedTrade]:
        groups = self.ctx.stores.groups.list_by_status([GroupStatus.CLOSED])
        return [closed_trade(g) for g in groups if self._mine(g)]

    def daily(self, days: list[date]) -> list[Decimal]:
        if not days:
            return []
        keys = [d.isoformat() for d in days]
        totals = self.ctx.stores.counters.realized_by_day(self.accounts, keys)
        return [totals[key] for key in keys]


def _scope_accounts(ctx: EngineContext, account: str | None) -> list[str]:
    if account:
        return [account_of(account)]
    return sorted({account_of(name) for name in ctx.config.snapshot().engine.accounts})


def _settled_rollup(reader: _Reader, scope: str, settled: date) -> tuple[Rollup, date | None, list[Decimal]]:
    """The stored roll-up of every day up to ``settled`` (brought up to date and saved when behind)."""
    stores = reader.ctx.stores
    name = ROLLUP_PREFIX + scope
    doc = stores.state.get(name)
    if doc is not None:
        rollup = Rollup.from_document(doc.get("rollup") or {})
        through = date.fromisoformat(str(doc["through"]))
        first = None if doc.get("first_day") is None else date.fromisoformat(str(doc["first_day"]))
        daily = [Decimal(str(v)) for v in doc.get("daily") or []]
        if through >= settled:
            return rollup, first, daily
        new_days = _days(through + timedelta(days=1), settled)
        trades = reader.trades_on(new_days)
    else:
        rollup, first, daily = Rollup(), None, []
        trades = [t for t in reader.all_closed() if t.closed_at.date() <= settled]
        new_days = []
        if trades:
            new_days = _days(min(t.closed_at.date() for t in trades), settled)
    if first is None and trades:
        first = min(t.closed_at.date() for t in trades)
        new_days = [d for d in new_days if d >= first]
    rollup.fold(trades)
    if first is not None:
        daily.extend(reader.daily([d for d in new_days if d >= first]))
    stores.state.put(
        name,
        {
            "through": settled.isoformat(),
            "first_day": None if first is None else first.isoformat(),
            "rollup": rollup.as_document(),
            "daily": [str(v) for v in daily],
        },
    )
    return rollup, first, daily


def analytics_report(ctx: EngineContext, period: str, account: str | None, now: datetime) -> dict[str, Any]:
    """The ``GET /analytics`` answer for ``period`` (a :data:`PERIODS` key) and ``account`` (None = all)."""
    accounts = _scope_accounts(ctx, account)
    reader = _Reader(ctx, accounts)
    today = now.date()
    length = PERIODS[period]
    if length is not None:
        days = _days(today - timedelta(days=length - 1), today)
        rollup = Rollup()
        rollup.fold(reader.trades_on(days))
        daily = reader.daily(days)
        first = days[0]
    else:
        settled = today - timedelta(days=SETTLE_DAYS)
        stored, first_day, stored_daily = _settled_rollup(
            reader, account_of(account) if account else ALL_ACCOUNTS, settled
        )
        rollup = stored.copy()
        recent_days = _days(settled + timedelta(days=1), today)
        recent = reader.trades_on(recent_days)
        rollup.fold(recent)
        if first_day is None and recent:
            first_day = min(t.closed_at.date() for t in recent)
        first = first_day or today
        daily = stored_daily + reader.daily([d for d in recent_days if d >= first])
    base = ctx.config.snapshot().engine.paper.balance_usd
    figures = report(rollup, daily, base)
    return jsonable(
        {
            "period": period,
            "account": account_of(account) if account else None,
            "accounts": accounts,
            "from": first.isoformat(),
            "to": today.isoformat(),
            "base_equity_usd": base,
            **figures,
        }
    )


def closed_groups_csv(ctx: EngineContext, account: str | None) -> str:
    """Every closed group (oldest close first) as CSV with a header row (:data:`CSV_COLUMNS`)."""
    groups = ctx.stores.groups.list_by_status([GroupStatus.CLOSED])
    if account:
        groups = [g for g in groups if account_of(g.exchange) == account_of(account)]
    groups.sort(key=lambda g: (g.closed_at or g.updated_at, g.id))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for group in groups:
        view = group_view(group)
        view["account"] = account_of(group.exchange)
        view["closed_at"] = iso(group.closed_at)
        writer.writerow(["" if view.get(column) is None else view[column] for column in CSV_COLUMNS])
    return out.getvalue()
