"""The event log's vocabulary (DESIGN §1 "An append-only events table"): what happened, once.

An :class:`Event` records one thing that happened: a routed signal with its outcome and reason, a group
transition, a fill, a risk or operator action, a protection trigger, a configuration problem. Ids are
deterministic (derived from what the event records: the signal's idempotency key, the group id and the
version its write produced, the order id and its filled quantity), so a replayed write finds its own
event and writes nothing twice.

Pure: no boto3 or pynamodb. The store (``engine.store.audit``) persists events; the notifier
(``engine.app.notify``) turns some of them into messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.domain.models import CloseReason, Group, GroupStatus

__all__ = [
    "KIND_CONFIG",
    "KIND_FILL",
    "KIND_GROUP",
    "KIND_OPERATOR",
    "KIND_PROTECTION",
    "KIND_RISK",
    "KIND_SIGNAL",
    "OPERATOR_ACTIONS",
    "Event",
    "event_day",
    "group_event",
]

#: A routed signal (name = its outcome: opened, pyramided, queued, replaced, exited, ignored, rejected).
KIND_SIGNAL = "signal"
#: A group transition (name = ``opened`` or the new status: partially_filled, active, closing, closed,
#: failed).
KIND_GROUP = "group"
#: A fill of an order (name = ``fill``).
KIND_FILL = "fill"
#: A risk-engine action (name = the action: close_loser, partial_close, ...).
KIND_RISK = "risk"
#: An operator action (name = block, unblock, skip_once, close, promote, remove, pause, resume, ...).
KIND_OPERATOR = "operator"
#: A protection trigger (stop-loss, trailing, break-even, time limit; name = the close reason).
KIND_PROTECTION = "protection"
#: A configuration problem (name = ``config_invalid``).
KIND_CONFIG = "config"

#: Risk-action names that are an operator's doing rather than the risk engine's.
OPERATOR_ACTIONS = frozenset(
    {
        "block",
        "unblock",
        "skip_once",
        "skip",
        "close",
        "operator_close",
        "promote",
        "remove",
        "pause",
        "resume",
    }
)


def event_day(at: datetime) -> str:
    """The UTC day (``YYYY-MM-DD``) of ``at``: the time index's partition."""
    return at.astimezone(UTC).date().isoformat()


@dataclass(frozen=True)
class Event:
    """One entry of the event log.

    ``name`` says what happened within ``kind`` (see the ``KIND_*`` constants); ``reason`` is the human
    text; ``data`` holds the figures a reader (console, notifier) needs, JSON-like with Decimals exact.
    """

    id: str
    at: datetime
    kind: str
    name: str
    reason: str | None = None
    group_id: str | None = None
    account: str | None = None
    symbol: str | None = None
    side: str | None = None
    timeframe: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def day(self) -> str:
        """UTC day of the event."""
        return event_day(self.at)


def _figure(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def group_event(group: Group, name: str, at: datetime, *, previous: GroupStatus | None = None) -> Event:
    """The event of ``group``'s write at version ``group.version`` (the version that write produces).

    ``name`` is ``opened`` for a new group, else the new status. The id is ``group#<id>#v<version>``: one
    write of a group makes at most one event, and a replayed write (refused by the version check) none.
    """
    figures = group.figures
    data: dict[str, Any] = {
        "status": group.status.value,
        "pyramid_count": group.pyramid_count,
        "quantity": _figure(figures.quantity),
        "avg_entry": _figure(figures.avg_entry),
        "last_price": _figure(figures.last_price),
        "realized_pnl_usd": _figure(figures.realized_pnl_usd),
        "unrealized_pnl_usd": _figure(figures.unrealized_pnl_usd),
        "fees_usd": _figure(figures.fees_usd),
    }
    if previous is not None:
        data["previous"] = GroupStatus(previous).value
    if group.pyramids:
        data["entry_price"] = _figure(group.pyramids[-1].entry_price)
        data["capital_usd"] = _figure(sum((p.capital_usd for p in group.pyramids), Decimal(0)))
    if group.close_reason is not None:
        data["close_reason"] = CloseReason(group.close_reason).value
    if group.close_note:
        data["close_note"] = group.close_note
    reason = group.close_note or (data.get("close_reason") if name in ("closed", "failed") else None)
    return Event(
        id=f"group#{group.id}#v{group.version}",
        at=at,
        kind=KIND_GROUP,
        name=name,
        reason=reason,
        group_id=group.id,
        account=group.account,
        symbol=group.symbol,
        side=group.side.value,
        timeframe=group.timeframe,
        data=data,
    )
