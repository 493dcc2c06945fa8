"""Every call the local runtime makes into ``engine.store`` and ``engine.config``, in one place.

The runtime reads and writes engine state only through these functions: tables, seeded config and
secret, paper prices, and the snapshot the status view shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from engine.domain.models import Group, QueueEntry
from engine.domain.queue import promotion_order


def prepare(secret: str) -> str:
    """Create the tables, seed the default documents and the webhook secret; returns the secret in use."""
    from engine.config import seed_defaults, seed_webhook_secret
    from engine.config import webhook_secret as stored_webhook_secret
    from engine.store import PoolStore, create_all_tables, reset_connections

    reset_connections()
    create_all_tables()
    PoolStore().migrate_legacy_counter()  # state from before the per-account pools (DESIGN §3.10)
    seed_defaults()
    if seed_webhook_secret(secret):
        return secret
    return stored_webhook_secret()


def paper_exchanges() -> list[str]:
    """Names of the accounts configured in paper mode (``engine.accounts``), as the handlers see them."""
    from engine.app.context import engine_context

    accounts = engine_context().config.snapshot().engine.accounts
    return sorted(name for name, account in accounts.items() if account.mode == "paper")


def set_prices(prices: Mapping[str, Decimal], exchanges: list[str]) -> None:
    """Write paper prices for each symbol on each exchange (observed now, on the engine context's clock)."""
    from engine.app.context import engine_context

    ctx = engine_context()
    now = ctx.now()
    for exchange in exchanges:
        for symbol, price in prices.items():
            ctx.stores.prices.set(exchange, symbol, price, now)


@dataclass
class StateSnapshot:
    """Pool, queue and open groups, JSON-ready (DESIGN §6 field names)."""

    pool: dict[str, Any] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)


def read_state() -> StateSnapshot:
    """Read the pool (counter and configured size), the queue in promotion order and the open groups."""
    from engine.app.context import engine_context

    ctx = engine_context()
    config = ctx.config.snapshot()
    counts = ctx.stores.pool.counts()
    limit = sum(config.pool.max_open_for(account) for account in config.engine.accounts)
    open_count = sum(counts.values())
    pool = {"max_open_groups": limit, "open": open_count, "free": max(0, limit - open_count)}
    entries = ctx.stores.queue.list_all()
    price_store = ctx.stores.prices
    prices: dict[tuple[str, str], Decimal] = {}
    for exchange, symbol in {(entry.exchange, entry.symbol) for entry in entries}:
        price = price_store.get(exchange, symbol)
        if price is not None:
            prices[(exchange, symbol)] = price
    ordered = promotion_order(entries, config.queue.rules, prices)
    queue = [queue_entry_view(entry, rank) for rank, entry in enumerate(ordered, start=1)]
    groups = [group_view(group) for group in ctx.stores.groups.list_open()]
    return StateSnapshot(pool=pool, queue=queue, groups=groups)


def group_view(group: Group) -> dict[str, Any]:
    """The DESIGN §6 group shape."""
    figures = group.figures
    return jsonable(
        {
            "id": group.id,
            "exchange": group.exchange,
            "symbol": group.symbol,
            "timeframe": group.timeframe,
            "side": group.side,
            "status": group.status,
            "pyramid_count": group.pyramid_count,
            "filled_legs": figures.filled_legs,
            "total_legs": figures.total_legs,
            "quantity": figures.quantity,
            "avg_entry": figures.avg_entry,
            "invested_usd": figures.invested_usd,
            "unrealized_pnl_usd": figures.unrealized_pnl_usd,
            "unrealized_pnl_percent": figures.unrealized_pnl_percent,
            "realized_pnl_usd": figures.realized_pnl_usd,
            "created_at": group.created_at,
            "closed_at": group.closed_at,
        }
    )


def queue_entry_view(entry: QueueEntry, rank: int) -> dict[str, Any]:
    """The DESIGN §6 queue entry shape."""
    return jsonable(
        {
            "id": entry.id,
            "exchange": entry.exchange,
            "symbol": entry.symbol,
            "timeframe": entry.timeframe,
            "side": entry.side,
            "entry_price": entry.entry_price,
            "replacement_count": entry.replacement_count,
            "queued_at": entry.queued_at,
            "rank": rank,
        }
    )


def jsonable(value: Any) -> Any:
    """Decimals as JSON numbers, enums as values, times ISO-8601 with ``Z``."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
