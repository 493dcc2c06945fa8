"""JSON shapes of the operator API (DESIGN §6): groups, pyramids, orders, queue entries, risk records.

Conventions: money, prices and quantities are JSON numbers (``Decimal`` → ``int`` when integral, else
``float`` — the shortest float that reads back as the same decimal for the precisions exchanges use);
percentages in percent units; times ISO-8601 UTC with ``Z``; enums as their lowercase values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from engine.domain.events import Event
from engine.domain.models import Group, Order, ProtectionState, Pyramid, QueueEntry
from engine.domain.risk import LoserClose, RiskPlan, WinnerClose
from engine.store import EquityPoint, RiskActionRecord

#: Integral decimals beyond this stay floats (JSON readers lose exactness past 2**53 anyway).
_MAX_EXACT_INT = Decimal(2**53)


def number(value: Decimal | int | None) -> int | float | None:
    """A JSON number for ``value`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if value == value.to_integral_value() and abs(value) < _MAX_EXACT_INT:
        return int(value)
    return float(value)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z`` suffix (None stays None)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """Any JSON-like structure with Decimals, datetimes, enums and tuples made JSON-ready."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [jsonable(item) for item in value]
    return str(value)


def group_view(group: Group) -> dict[str, Any]:
    """A group (DESIGN §6 names, plus its key, risk flags, TP mode and close reason)."""
    figures = group.figures
    return {
        "id": group.id,
        "account": group.account,
        "exchange": group.exchange,
        "symbol": group.symbol,
        "timeframe": group.timeframe,
        "side": group.side.value,
        "status": group.status.value,
        "pyramid_count": group.pyramid_count,
        "filled_legs": figures.filled_legs,
        "total_legs": figures.total_legs,
        "quantity": number(figures.quantity),
        "avg_entry": number(figures.avg_entry),
        "invested_usd": number(figures.invested_usd),
        "unrealized_pnl_usd": number(figures.unrealized_pnl_usd),
        "unrealized_pnl_percent": number(figures.unrealized_pnl_percent),
        "realized_pnl_usd": number(figures.realized_pnl_usd),
        "fees_usd": number(figures.fees_usd),
        "last_price": number(figures.last_price),
        "created_at": iso(group.created_at),
        "updated_at": iso(group.updated_at),
        "closed_at": iso(group.closed_at),
        "key": group.key,
        "tp_mode": group.tp_mode.value,
        "risk_blocked": group.risk_blocked,
        "risk_skip_once": group.risk_skip_once,
        "risk_timer_started_at": iso(group.risk_timer_started_at),
        "close_reason": None if group.close_reason is None else group.close_reason.value,
        "close_note": group.close_note,
        "config_versions": dict(group.config_versions),
        "protection": protection_view(group.protection),
    }


def protection_view(state: ProtectionState) -> dict[str, Any]:
    """A group's protections (DESIGN §3.9): ``stop_price`` (the ruling stop, ``stop_rule`` says which),
    ``trailing_armed``, ``high`` (the trailing take-profit's best price), ``trail_price`` (where it closes),
    ``expires_at`` (time limit), plus the alert's levels and the trailing stop."""
    return {
        "stop_price": number(state.stop_price),
        "stop_rule": state.stop_rule,
        "stop_armed": state.stop_armed,
        "trailing_armed": state.trailing_armed,
        "high": number(state.high),
        "trail_price": number(state.trail_price),
        "trailing_stop": number(state.trailing_stop),
        "expires_at": iso(state.expires_at),
        "alert_stop": number(state.alert_stop),
        "alert_take_profit": number(state.alert_take_profit),
        "alert_pyramid": state.alert_pyramid,
        "alert_config_version": state.alert_config_version,
    }


def pyramid_view(pyramid: Pyramid) -> dict[str, Any]:
    """One pyramid of a group."""
    return {
        "index": pyramid.index,
        "entry_price": number(pyramid.entry_price),
        "capital_usd": number(pyramid.capital_usd),
        "candle": pyramid.candle,
        "leg_count": pyramid.leg_count,
        "created_at": iso(pyramid.created_at),
        "signal_id": pyramid.signal_id,
        "max_slippage_percent": number(pyramid.max_slippage_percent),
    }


def order_view(order: Order) -> dict[str, Any]:
    """One order (DESIGN §6 names, plus its pyramid/leg, trigger, fees and times)."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "purpose": order.purpose.value,
        "side": order.side.value,
        "type": order.type.value,
        "price": number(order.price),
        "amount": number(order.amount),
        "filled": number(order.filled),
        "average": number(order.average),
        "status": order.status.value,
        "reason": order.reason,
        "wait": None if order.wait is None else order.wait.value,
        "pyramid": order.pyramid,
        "leg": order.leg,
        "trigger_price": number(order.trigger_price),
        "parent_order_id": order.parent_order_id,
        "cancel_requested": order.cancel_requested,
        "fee_cost": number(order.fee_cost),
        "fee_currency": order.fee_currency,
        "exchange_status": order.exchange_status,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
    }


def queue_view(entry: QueueEntry, rank: int) -> dict[str, Any]:
    """A queued entry with its promotion rank (from 1)."""
    return {
        "id": entry.id,
        "exchange": entry.exchange,
        "symbol": entry.symbol,
        "timeframe": entry.timeframe,
        "side": entry.side.value,
        "entry_price": number(entry.entry_price),
        "replacement_count": entry.replacement_count,
        "queued_at": iso(entry.queued_at),
        "updated_at": iso(entry.updated_at),
        "pyramid_continuation": entry.pyramid_continuation,
        "reason": entry.reason,
        "rank": rank,
    }


def loser_close_view(close: LoserClose) -> dict[str, Any]:
    """The loser's planned full close."""
    return {
        "role": "loser",
        "group_id": close.group_id,
        "side": close.side.value,
        "qty": number(close.qty),
        "price": number(close.price),
        "loss_usd": number(close.loss_usd),
        "fee_usd": number(close.fee_usd),
    }


def winner_close_view(close: WinnerClose) -> dict[str, Any]:
    """A winner's planned partial close."""
    return {
        "role": "winner",
        "group_id": close.group_id,
        "side": close.side.value,
        "qty": number(close.qty),
        "price": number(close.price),
        "avg_entry": number(close.avg_entry),
        "realized_usd": number(close.realized_usd),
        "fee_usd": number(close.fee_usd),
    }


def plan_steps(plan: RiskPlan) -> list[dict[str, Any]]:
    """The plan as a list of closes: the loser first, then each winner."""
    return [loser_close_view(plan.loser), *(winner_close_view(close) for close in plan.winners)]


def plan_summary(plan: RiskPlan) -> dict[str, Any]:
    """The plan's totals and whether it would act."""
    return {
        "actionable": plan.actionable,
        "reason": plan.reason,
        "needed_usd": number(plan.needed_usd),
        "covered_usd": number(plan.covered_usd),
        "fees_usd": number(plan.fees_usd),
        "skipped": [{"group_id": s.group_id, "reason": s.reason} for s in plan.skipped],
    }


def action_view(action: RiskActionRecord) -> dict[str, Any]:
    """One recorded risk-engine or operator action."""
    return {
        "id": action.id,
        "at": iso(action.at),
        "action": action.action,
        "reason": action.reason,
        "group_id": action.group_id,
        "account": action.details.get("account"),
        "related_group_ids": list(action.related_group_ids),
        "amount_usd": number(action.amount_usd),
        "details": jsonable(action.details),
    }


def equity_view(point: EquityPoint) -> dict[str, Any]:
    """One point of the equity curve."""
    return {
        "at": iso(point.at),
        "realized_usd": number(point.realized_usd),
        "equity_usd": number(point.equity_usd),
    }


def event_view(event: Event) -> dict[str, Any]:
    """One entry of the event log (``GET /events``)."""
    return {
        "id": event.id,
        "at": iso(event.at),
        "kind": event.kind,
        "name": event.name,
        "reason": event.reason,
        "group_id": event.group_id,
        "account": event.account,
        "symbol": event.symbol,
        "side": event.side,
        "timeframe": event.timeframe,
        "data": jsonable(dict(event.data)),
    }
