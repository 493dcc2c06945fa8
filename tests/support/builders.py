"""Builders for domain objects with sensible defaults; override any field by keyword."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.domain.models import (
    Group,
    GroupFigures,
    GroupStatus,
    Order,
    OrderPurpose,
    OrderSide,
    OrderType,
    Pyramid,
    QueueEntry,
    Side,
    TpMode,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def new_id(prefix: str = "") -> str:
    """A unique id (optionally prefixed)."""
    return f"{prefix}{uuid.uuid4().hex}"


def make_pyramid(**overrides: Any) -> Pyramid:
    """A first pyramid at 100 USDT with 200 USD capital."""
    fields: dict[str, Any] = {
        "index": 0,
        "entry_price": Decimal("100.00"),
        "capital_usd": Decimal("200"),
        "candle": 1_767_000_000,
        "leg_count": 5,
        "created_at": T0,
        "signal_id": "sig-1",
    }
    fields.update(overrides)
    return Pyramid(**fields)


def make_group(**overrides: Any) -> Group:
    """A live long BTC/USDT 60-minute group on binance with one pyramid."""
    fields: dict[str, Any] = {
        "id": new_id("g-"),
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": 60,
        "side": Side.LONG,
        "status": GroupStatus.LIVE,
        "pyramids": [make_pyramid()],
        "figures": GroupFigures(),
        "tp_mode": TpMode.PER_LEG,
        "tp_aggregate_percent": Decimal("1.0"),
        "config_versions": {"engine": 1, "dca/default": 2},
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Group(**fields)


def make_order(group: Group | None = None, **overrides: Any) -> Order:
    """A pending limit buy entry leg of ``group`` (or of a fresh group id)."""
    order_id = overrides.pop("id", None) or new_id("o-")
    fields: dict[str, Any] = {
        "id": order_id,
        "group_id": group.id if group is not None else new_id("g-"),
        "exchange": group.exchange if group is not None else "binance",
        "symbol": group.symbol if group is not None else "BTC/USDT",
        "purpose": OrderPurpose.ENTRY,
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "amount": Decimal("0.0004"),
        "price": Decimal("99.5"),
        "client_order_id": f"ee-{order_id}",
        "pyramid": 0,
        "leg": 0,
        "tp_percent": Decimal("0.5"),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Order(**fields)


def make_queue_entry(**overrides: Any) -> QueueEntry:
    """A queued long entry for binance ETH/USDT 60."""
    fields: dict[str, Any] = {
        "id": new_id("q-"),
        "exchange": "binance",
        "symbol": "ETH/USDT",
        "timeframe": 60,
        "side": Side.LONG,
        "entry_price": Decimal("2500.25"),
        "candle": 1_767_000_000,
        "payload": {"action": "buy", "price": Decimal("2500.25"), "tf": 60},
        "queued_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return QueueEntry(**fields)
