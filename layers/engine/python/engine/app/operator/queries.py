"""What the operator reads and does that is not a risk control: groups, the ranked queue, promotion and
removal of queued entries, the pool and the equity curve — as JSON-ready views (DESIGN §6 shapes).

Repeats are no-ops answered with ``"changed": false``: promote or delete of a queue entry the operator
already promoted/removed is remembered in the state table (``operator/queue/<id>``); an id never seen by
the operator and not queued raises :class:`NotFound`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from engine.app.context import EngineContext
from engine.app.pool import promote_entry
from engine.app.shared.errors import NotFound
from engine.app.shared.marks import marked, marked_all
from engine.app.shared.views import (
    equity_view,
    event_view,
    group_view,
    iso,
    order_view,
    pyramid_view,
    queue_view,
)
from engine.domain.models import GroupStatus
from engine.domain.queue import promotion_order
from engine.store import account_series

__all__ = [
    "MAX_EVENTS",
    "equity_points",
    "event_log",
    "group_detail",
    "groups_in",
    "pool_status",
    "promote_queued",
    "ranked_queue",
    "remove_queued",
]

QUEUE_MEMORY_PREFIX = "operator/queue/"
#: The most events one ``GET /events`` returns.
MAX_EVENTS = 500


def groups_in(
    ctx: EngineContext, statuses: Collection[GroupStatus], account: str | None = None
) -> dict[str, Any]:
    """``{"groups": [...]}``: the groups in ``statuses`` (of ``account`` when given), oldest first."""
    listed = ctx.stores.groups.list_by_status(sorted(statuses))
    if account is not None:
        listed = [group for group in listed if group.account == account]
    groups = marked_all(ctx.stores, listed)
    groups.sort(key=lambda group: (group.created_at, group.id))
    return {"groups": [group_view(group) for group in groups]}


def group_detail(ctx: EngineContext, group_id: str) -> dict[str, Any]:
    """One group with its pyramids and every order; :class:`NotFound`."""
    group = ctx.stores.groups.get(group_id)
    if group is None:
        raise NotFound(f"no group {group_id}")
    orders = ctx.stores.orders.list_for_group(group_id)
    return {
        "group": group_view(marked(ctx.stores, group)),
        "pyramids": [pyramid_view(pyramid) for pyramid in group.pyramids],
        "orders": [order_view(order) for order in orders],
    }


def ranked_queue(ctx: EngineContext, account: str | None = None) -> dict[str, Any]:
    """Queued entries (of ``account`` when given) in promotion order (the live ``queue.rules``), ranked
    from 1."""
    entries = ctx.stores.queue.list_all()
    if account is not None:
        entries = [entry for entry in entries if entry.exchange.strip().lower() == account]
    prices = {}
    for market in {(entry.exchange, entry.symbol) for entry in entries}:
        price = ctx.stores.prices.get(*market)
        if price is not None:
            prices[market] = price
    ordered = promotion_order(entries, ctx.config.snapshot().queue.rules, prices)
    return {"queue": [queue_view(entry, rank) for rank, entry in enumerate(ordered, start=1)]}


def _remembered(ctx: EngineContext, entry_id: str) -> dict[str, Any] | None:
    return ctx.stores.state.get(QUEUE_MEMORY_PREFIX + entry_id)


def promote_queued(ctx: EngineContext, entry_id: str, now: datetime) -> dict[str, Any]:
    """Promote a queued entry into a free slot now: its group and orders are created (orders placed)."""
    try:
        group = promote_entry(ctx, entry_id, ctx.config.snapshot(), now)
    except NotFound:
        memory = _remembered(ctx, entry_id)
        if memory is None or memory.get("action") != "promoted":
            raise
        existing = ctx.stores.groups.get(str(memory["group_id"]))
        return {"group": group_view(existing) if existing is not None else None, "changed": False}
    ctx.stores.state.put(
        QUEUE_MEMORY_PREFIX + entry_id, {"action": "promoted", "group_id": group.id, "at": iso(now)}
    )
    orders = ctx.stores.orders.list_for_group(group.id)
    return {"group": group_view(group), "orders": [order_view(o) for o in orders], "changed": True}


def remove_queued(ctx: EngineContext, entry_id: str, now: datetime) -> dict[str, Any]:
    """Remove a queued entry (it will not be promoted)."""
    if ctx.stores.queue.remove(entry_id):
        ctx.stores.state.put(QUEUE_MEMORY_PREFIX + entry_id, {"action": "removed", "at": iso(now)})
        return {"removed": entry_id, "changed": True}
    memory = _remembered(ctx, entry_id)
    if memory is not None and memory.get("action") == "removed":
        return {"removed": entry_id, "changed": False}
    raise NotFound(f"no queued entry {entry_id}")


def pool_status(ctx: EngineContext, account: str | None = None) -> dict[str, Any]:
    """Every account's pool (DESIGN §3.10) and their totals: size, groups holding a slot, free slots;
    ``account`` limits it to one account."""
    config = ctx.config.snapshot()
    counts = ctx.stores.pool.counts()
    names = sorted(set(config.engine.accounts) | {name for name, count in counts.items() if count})
    if account is not None:
        names = [account]
    accounts: dict[str, dict[str, int]] = {}
    for name in names:
        maximum, used = config.pool.max_open_for(name), counts.get(name, 0)
        accounts[name] = {"max_open_groups": maximum, "open": used, "free": max(maximum - used, 0)}
    slots = [
        group_id
        for group_id, key in ctx.stores.pool.slots()
        if account is None or key.split("#", 1)[0] == account
    ]
    return {
        "max_open_groups": sum(pool["max_open_groups"] for pool in accounts.values()),
        "open": sum(pool["open"] for pool in accounts.values()),
        "free": sum(pool["free"] for pool in accounts.values()),
        "groups": slots,
        "accounts": accounts,
    }


def equity_points(ctx: EngineContext, since: datetime | None, account: str | None = None) -> dict[str, Any]:
    """The equity curve, oldest first, from ``since`` when given: the whole engine's, or ``account``'s
    own series (DESIGN §3.10; an account without points yet has an empty curve)."""
    if account is None:
        points = ctx.stores.equity.list(since)
    else:
        points = ctx.stores.equity.list(since, series=account_series(account))
    return {"account": account, "points": [equity_view(point) for point in points]}


def event_log(
    ctx: EngineContext,
    *,
    group_id: str | None = None,
    since: datetime | None = None,
    kind: str | None = None,
    account: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """``{"events": [...]}`` newest first: a group's events, or every event since ``since`` (default the
    last 30 days), filtered by ``kind``/``account``, at most ``limit`` (≤ :data:`MAX_EVENTS`)."""
    events = ctx.stores.events.list(
        group_id=group_id,
        since=since,
        kind=kind,
        account=account,
        limit=max(1, min(limit, MAX_EVENTS)),
        now=ctx.now(),
    )
    return {"events": [event_view(event) for event in events]}
