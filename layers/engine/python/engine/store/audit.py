"""Audit trails: signal outcomes, risk-engine actions, equity curve points."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.domain.models import Outcome
from engine.store.tables import EquityModel, RiskActionModel, SignalModel, bind

#: Summary keys containing any of these (case-insensitive) are dropped before storing.
SECRET_MARKERS = ("secret", "passphrase", "password", "token", "api_key", "apikey")
DEFAULT_SERIES = "default"


def _without_secrets(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in summary.items()
        if not any(marker in key.lower() for marker in SECRET_MARKERS)
    }


@dataclass(frozen=True)
class SignalRecord:
    """What the webhook did with one valid signal."""

    signal_id: str
    received_at: datetime
    intent: str
    outcome: str
    key: str | None = None
    reason: str | None = None
    group_id: str | None = None
    queue_id: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class SignalAudit:
    """Signals table: one item per valid signal (a replay with the same id overwrites it)."""

    def record(
        self,
        *,
        signal_id: str,
        received_at: datetime,
        intent: str,
        outcome: Outcome | str,
        key: str | None = None,
        reason: str | None = None,
        group_id: str | None = None,
        queue_id: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> SignalRecord:
        """Store a signal's outcome; top-level summary keys that look secret are dropped."""
        record = SignalRecord(
            signal_id=signal_id,
            received_at=received_at,
            intent=intent,
            outcome=outcome.value if isinstance(outcome, Outcome) else str(outcome),
            key=key,
            reason=reason,
            group_id=group_id,
            queue_id=queue_id,
            summary=_without_secrets(summary or {}),
        )
        bind(SignalModel)
        SignalModel(
            id=record.signal_id,
            received_at=record.received_at,
            intent=record.intent,
            outcome=record.outcome,
            key=record.key,
            reason=record.reason,
            group_id=record.group_id,
            queue_id=record.queue_id,
            summary=record.summary,
        ).save()
        return record

    def list_recent(self, limit: int = 100) -> list[SignalRecord]:
        """The ``limit`` most recently received signals, newest first (scans the table)."""
        records = [
            SignalRecord(
                signal_id=item.id,
                received_at=item.received_at,
                intent=item.intent,
                outcome=item.outcome,
                key=item.key,
                reason=item.reason,
                group_id=item.group_id,
                queue_id=item.queue_id,
                summary=dict(item.summary or {}),
            )
            for item in bind(SignalModel).scan()
        ]
        records.sort(key=lambda r: (r.received_at, r.signal_id), reverse=True)
        return records[:limit]


@dataclass(frozen=True)
class RiskActionRecord:
    """One risk-engine or operator action (e.g. ``close_loser``, ``partial_close``, ``block``).

    Defined here (not in ``engine.domain``) because it is purely an audit record.
    """

    id: str
    at: datetime
    action: str
    reason: str
    group_id: str | None = None
    related_group_ids: tuple[str, ...] = ()
    amount_usd: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)


class RiskActionStore:
    """Risk actions table (hash ``id``)."""

    def record(self, action: RiskActionRecord) -> None:
        """Store ``action`` (same id overwrites: replays do not duplicate)."""
        bind(RiskActionModel)
        RiskActionModel(
            id=action.id,
            at=action.at,
            action=action.action,
            reason=action.reason,
            group_id=action.group_id,
            related_group_ids=list(action.related_group_ids),
            amount_usd=action.amount_usd,
            details=dict(action.details),
        ).save()

    def list_recent(self, limit: int = 100) -> list[RiskActionRecord]:
        """The ``limit`` most recent actions, newest first (scans the table)."""
        actions = [
            RiskActionRecord(
                id=item.id,
                at=item.at,
                action=item.action,
                reason=item.reason,
                group_id=item.group_id,
                related_group_ids=tuple(str(g) for g in item.related_group_ids or []),
                amount_usd=item.amount_usd,
                details=dict(item.details or {}),
            )
            for item in bind(RiskActionModel).scan()
        ]
        actions.sort(key=lambda a: (a.at, a.id), reverse=True)
        return actions[:limit]


@dataclass(frozen=True)
class EquityPoint:
    """One point of the equity curve."""

    at: datetime
    realized_usd: Decimal
    equity_usd: Decimal


class EquityStore:
    """Equity table (hash ``series``, range ``at``): an append-only curve per series."""

    def append(
        self, at: datetime, realized_usd: Decimal, equity_usd: Decimal, *, series: str = DEFAULT_SERIES
    ) -> None:
        """Add a point (a second point at the same instant overwrites the first)."""
        bind(EquityModel)
        EquityModel(series=series, at=at, realized_usd=realized_usd, equity_usd=equity_usd).save()

    def list(
        self, since: datetime | None = None, *, series: str = DEFAULT_SERIES
    ) -> builtins.list[EquityPoint]:
        """Points at or after ``since`` (all when None), oldest first."""
        model = bind(EquityModel)
        condition = None if since is None else EquityModel.at >= since
        return [
            EquityPoint(at=item.at, realized_usd=item.realized_usd, equity_usd=item.equity_usd)
            for item in model.query(series, range_key_condition=condition, scan_index_forward=True)
        ]
