"""Conversions between domain objects and pynamodb items (groups, orders, queue entries).

Domain ``version`` 0 means "never stored": the item is written without a version (pynamodb's
``VersionAttribute`` then requires the item to be absent and stores version 1).
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

from engine.domain.counters import Counted, counted_of
from engine.domain.models import (
    ZERO,
    CloseReason,
    Fill,
    Group,
    GroupFigures,
    Order,
    ProtectionState,
    Pyramid,
    QueueEntry,
)
from engine.store.attributes import format_utc, parse_utc
from engine.store.tables import GroupModel, OrderModel, QueueModel, bind

# ---------------------------------------------------------------- helpers


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _with_version(item: GroupModel | OrderModel, version: int) -> None:
    """Version 0 means never stored: leave the item's version unset (pynamodb then requires absence)."""
    if version:
        item.version = version


# ---------------------------------------------------------------- groups

#: Purpose prefixes of the text ``close_reason`` written before the codes (``"<purpose>: <text>"``).
_LEGACY_CLOSE_PREFIXES: dict[str, CloseReason] = {
    "tp": CloseReason.TAKE_PROFIT,
    "exit": CloseReason.EXIT,
    "risk_close": CloseReason.RISK,
}
#: The operator's close as it was written before the codes.
_LEGACY_OPERATOR_CLOSE = "exit: operator close"


def close_reason_from_item(
    stored: str | None, note: str | None = None
) -> tuple[CloseReason | None, str | None]:
    """``(close_reason, close_note)`` of a stored group, also for items written before the codes.

    A code is taken as it is, with the stored note. An older text ``"<purpose>: <text>"`` maps its
    purpose to the code (``tp`` -> ``take_profit``, ``exit`` -> ``exit``, ``risk_close`` -> ``risk``;
    ``"exit: operator close"`` -> ``operator``) and keeps ``<text>`` as the note; any other text becomes
    ``exit`` with the whole text as the note. Never raises.
    """
    if not stored:
        return None, note
    try:
        return CloseReason(stored), note
    except ValueError:
        pass
    if stored == _LEGACY_OPERATOR_CLOSE:
        return CloseReason.OPERATOR, note or stored.partition(": ")[2]
    prefix, separator, text = stored.partition(": ")
    code = _LEGACY_CLOSE_PREFIXES.get(prefix) if separator else None
    if code is None:
        return CloseReason.EXIT, note or stored
    return code, note or text or None


def pyramid_to_doc(pyramid: Pyramid) -> dict[str, Any]:
    """A pyramid as a JSON-like map (Decimals as strings)."""
    return {
        "index": pyramid.index,
        "entry_price": str(pyramid.entry_price),
        "capital_usd": str(pyramid.capital_usd),
        "candle": pyramid.candle,
        "leg_count": pyramid.leg_count,
        "created_at": format_utc(pyramid.created_at),
        "signal_id": pyramid.signal_id,
        "max_slippage_percent": _dec(pyramid.max_slippage_percent),
    }


def pyramid_from_doc(doc: dict[str, Any]) -> Pyramid:
    """Inverse of :func:`pyramid_to_doc`."""
    return Pyramid(
        index=int(doc["index"]),
        entry_price=Decimal(str(doc["entry_price"])),
        capital_usd=Decimal(str(doc["capital_usd"])),
        candle=int(doc["candle"]),
        leg_count=int(doc["leg_count"]),
        created_at=parse_utc(str(doc["created_at"])),
        signal_id=doc.get("signal_id"),
        max_slippage_percent=_undec(doc.get("max_slippage_percent")),
    )


_PROTECTION_PRICES = ("alert_stop", "alert_take_profit", "high", "trailing_stop", "stop_price", "trail_price")


def protection_to_doc(state: ProtectionState) -> dict[str, Any] | None:
    """A group's protection state as a JSON-like map (Decimals as strings); None when it is all default."""
    if state == ProtectionState():
        return None
    doc: dict[str, Any] = {name: _dec(getattr(state, name)) for name in _PROTECTION_PRICES}
    doc.update(
        alert_pyramid=state.alert_pyramid,
        alert_config_version=state.alert_config_version,
        stop_armed=state.stop_armed,
        trailing_armed=state.trailing_armed,
        trailing_pyramids=state.trailing_pyramids,
        stop_rule=state.stop_rule,
        expires_at=None if state.expires_at is None else format_utc(state.expires_at),
    )
    return doc


def protection_from_doc(doc: dict[str, Any] | None) -> ProtectionState:
    """Inverse of :func:`protection_to_doc` (an item without the attribute has the default state)."""
    if not doc:
        return ProtectionState()

    def integer(name: str) -> int | None:
        value = doc.get(name)
        return None if value is None else int(value)

    expires = doc.get("expires_at")
    return ProtectionState(
        **{name: _undec(doc.get(name)) for name in _PROTECTION_PRICES},
        alert_pyramid=integer("alert_pyramid"),
        alert_config_version=integer("alert_config_version"),
        stop_armed=bool(doc.get("stop_armed")),
        trailing_armed=bool(doc.get("trailing_armed")),
        trailing_pyramids=integer("trailing_pyramids"),
        stop_rule=doc.get("stop_rule"),
        expires_at=None if expires is None else parse_utc(str(expires)),
    )


def figures_to_doc(figures: GroupFigures) -> dict[str, Any]:
    """Group figures as a JSON-like map (Decimals as strings)."""
    return {
        "quantity": str(figures.quantity),
        "avg_entry": str(figures.avg_entry),
        "invested_usd": str(figures.invested_usd),
        "realized_pnl_usd": str(figures.realized_pnl_usd),
        "unrealized_pnl_usd": str(figures.unrealized_pnl_usd),
        "unrealized_pnl_percent": str(figures.unrealized_pnl_percent),
        "fees_usd": str(figures.fees_usd),
        "filled_legs": figures.filled_legs,
        "total_legs": figures.total_legs,
        "last_price": _dec(figures.last_price),
        "realized_by_day": {day: str(value) for day, value in figures.realized_by_day.items()},
    }


def figures_from_doc(doc: dict[str, Any]) -> GroupFigures:
    """Inverse of :func:`figures_to_doc`."""

    def dec(name: str) -> Decimal:
        value = doc.get(name)
        return ZERO if value is None else Decimal(str(value))

    return GroupFigures(
        quantity=dec("quantity"),
        avg_entry=dec("avg_entry"),
        invested_usd=dec("invested_usd"),
        realized_pnl_usd=dec("realized_pnl_usd"),
        unrealized_pnl_usd=dec("unrealized_pnl_usd"),
        unrealized_pnl_percent=dec("unrealized_pnl_percent"),
        fees_usd=dec("fees_usd"),
        filled_legs=int(doc.get("filled_legs", 0)),
        total_legs=int(doc.get("total_legs", 0)),
        last_price=_undec(doc.get("last_price")),
        realized_by_day={
            str(day): Decimal(str(value)) for day, value in (doc.get("realized_by_day") or {}).items()
        },
    )


def group_to_model(group: Group) -> GroupModel:
    """The pynamodb item for ``group`` (bound to the current table)."""
    bind(GroupModel)
    item = GroupModel(
        id=group.id,
        key=group.key,
        exchange=group.exchange,
        symbol=group.symbol,
        timeframe=group.timeframe,
        side=group.side,
        status=group.status,
        pyramids=[pyramid_to_doc(p) for p in group.pyramids],
        figures=figures_to_doc(group.figures),
        tp_mode=group.tp_mode,
        tp_aggregate_percent=group.tp_aggregate_percent,
        config_versions=dict(group.config_versions),
        created_at=group.created_at,
        updated_at=group.updated_at,
        closed_at=group.closed_at,
        risk_timer_started_at=group.risk_timer_started_at,
        risk_blocked=group.risk_blocked,
        risk_skip_once=group.risk_skip_once,
        close_reason=None if group.close_reason is None else CloseReason(group.close_reason).value,
        close_note=group.close_note,
        closed_day=None if group.closed_at is None else group.closed_at.astimezone(UTC).date().isoformat(),
        counted=counted_to_doc(counted_of(group)),
        protection=protection_to_doc(group.protection),
    )
    _with_version(item, group.version)
    return item


def counted_to_doc(counted: Counted) -> dict[str, Any]:
    """The ``counted`` document of a group item."""
    return {
        "account": counted.account,
        "symbol": counted.symbol,
        "open_groups": counted.open_groups,
        "exposure_usd": str(counted.exposure_usd),
        "realized_by_day": {day: str(value) for day, value in counted.realized_by_day.items()},
    }


def counted_from_doc(doc: dict[str, Any]) -> Counted:
    """The :class:`Counted` stored in a group item's ``counted`` document."""
    return Counted(
        account=str(doc["account"]),
        symbol=str(doc["symbol"]),
        open_groups=int(doc.get("open_groups") or 0),
        exposure_usd=Decimal(str(doc.get("exposure_usd") or "0")),
        realized_by_day={
            str(day): Decimal(str(value)) for day, value in (doc.get("realized_by_day") or {}).items()
        },
    )


def group_from_model(item: GroupModel) -> Group:
    """The domain group stored in ``item``."""
    close_reason, close_note = close_reason_from_item(item.close_reason, item.close_note)
    group = Group(
        id=item.id,
        exchange=item.exchange,
        symbol=item.symbol,
        timeframe=int(item.timeframe),
        side=item.side,
        status=item.status,
        pyramids=[pyramid_from_doc(p) for p in item.pyramids or []],
        figures=figures_from_doc(item.figures or {}),
        tp_mode=item.tp_mode,
        tp_aggregate_percent=item.tp_aggregate_percent,
        config_versions={str(k): int(v) for k, v in (item.config_versions or {}).items()},
        created_at=item.created_at,
        updated_at=item.updated_at,
        closed_at=item.closed_at,
        risk_timer_started_at=item.risk_timer_started_at,
        risk_blocked=bool(item.risk_blocked),
        risk_skip_once=bool(item.risk_skip_once),
        close_reason=close_reason,
        close_note=close_note,
        protection=protection_from_doc(item.protection),
        version=int(item.version or 0),
    )
    # Items written before the counters count as what they hold now (the reconciliation backfills).
    group.counted = counted_from_doc(item.counted) if item.counted else counted_of(group)
    group.stored_status = group.status
    return group


# ---------------------------------------------------------------- orders


def fill_to_doc(fill: Fill) -> dict[str, Any]:
    """A ledger entry as a JSON-like map: Decimals as strings (exact), the time as UTC ISO 8601."""
    return {
        "quantity": str(fill.quantity),
        "price": str(fill.price),
        "at": format_utc(fill.at),
        "fee": str(fill.fee),
        "fee_currency": fill.fee_currency,
        "fee_usd": _dec(fill.fee_usd),
    }


def fill_from_doc(doc: dict[str, Any]) -> Fill:
    """Inverse of :func:`fill_to_doc`."""
    return Fill(
        quantity=Decimal(str(doc["quantity"])),
        price=Decimal(str(doc["price"])),
        at=parse_utc(str(doc["at"])),
        fee=Decimal(str(doc.get("fee") or "0")),
        fee_currency=doc.get("fee_currency"),
        fee_usd=_undec(doc.get("fee_usd")),
    )


def order_to_model(order: Order) -> OrderModel:
    """The pynamodb item for ``order`` (bound to the current table)."""
    bind(OrderModel)
    item = OrderModel(
        id=order.id,
        group_id=order.group_id,
        exchange=order.exchange,
        symbol=order.symbol,
        purpose=order.purpose,
        side=order.side,
        type=order.type,
        amount=order.amount,
        price=order.price,
        client_order_id=order.client_order_id,
        status=order.status,
        pyramid=order.pyramid,
        leg=order.leg,
        filled=order.filled,
        average=order.average,
        cost=order.cost,
        fee_cost=order.fee_cost,
        fee_currency=order.fee_currency,
        exchange_order_id=order.exchange_order_id,
        exchange_status=order.exchange_status,
        reason=order.reason,
        wait=order.wait,
        trigger_price=order.trigger_price,
        tp_percent=order.tp_percent,
        parent_order_id=order.parent_order_id,
        cancel_requested=order.cancel_requested,
        created_at=order.created_at,
        updated_at=order.updated_at,
        last_fill_at=order.last_fill_at,
        fills=[fill_to_doc(fill) for fill in order.fills] or None,
        fee_usd=order.fee_usd,
    )
    _with_version(item, order.version)
    return item


def order_from_model(item: OrderModel) -> Order:
    """The domain order stored in ``item``."""
    return Order(
        id=item.id,
        group_id=item.group_id,
        exchange=item.exchange,
        symbol=item.symbol,
        purpose=item.purpose,
        side=item.side,
        type=item.type,
        amount=item.amount,
        price=item.price,
        client_order_id=item.client_order_id,
        status=item.status,
        pyramid=None if item.pyramid is None else int(item.pyramid),
        leg=None if item.leg is None else int(item.leg),
        filled=item.filled,
        average=item.average,
        cost=item.cost,
        fee_cost=item.fee_cost,
        fee_currency=item.fee_currency,
        exchange_order_id=item.exchange_order_id,
        exchange_status=item.exchange_status,
        reason=item.reason,
        wait=item.wait,
        trigger_price=item.trigger_price,
        tp_percent=item.tp_percent,
        parent_order_id=item.parent_order_id,
        cancel_requested=bool(item.cancel_requested),
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_fill_at=item.last_fill_at,
        version=int(item.version or 0),
        fills=[fill_from_doc(doc) for doc in item.fills or []],
        fee_usd=item.fee_usd,
    )


# ---------------------------------------------------------------- queue


def queue_to_model(entry: QueueEntry) -> QueueModel:
    """The pynamodb item for ``entry`` (bound to the current table)."""
    bind(QueueModel)
    return QueueModel(
        id=entry.id,
        key=entry.key,
        exchange=entry.exchange,
        symbol=entry.symbol,
        timeframe=entry.timeframe,
        side=entry.side,
        entry_price=entry.entry_price,
        candle=entry.candle,
        payload=dict(entry.payload),
        queued_at=entry.queued_at,
        updated_at=entry.updated_at,
        replacement_count=entry.replacement_count,
        pyramid_continuation=entry.pyramid_continuation,
        reason=entry.reason,
    )


def queue_from_model(item: QueueModel) -> QueueEntry:
    """The domain queue entry stored in ``item``."""
    return QueueEntry(
        id=item.id,
        exchange=item.exchange,
        symbol=item.symbol,
        timeframe=int(item.timeframe),
        side=item.side,
        entry_price=item.entry_price,
        candle=int(item.candle),
        payload=dict(item.payload or {}),
        queued_at=item.queued_at,
        updated_at=item.updated_at,
        replacement_count=int(item.replacement_count or 0),
        pyramid_continuation=bool(item.pyramid_continuation),
        reason=item.reason,
    )
