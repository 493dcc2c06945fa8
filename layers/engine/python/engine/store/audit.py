"""Audit trails: the append-only event log (signals, group transitions, fills, risk and operator
actions; DESIGN §1), risk-engine actions, equity curve points.

The event log never overwrites: a standalone :func:`record_event` is a put conditioned on the id being
new (a replay with the same deterministic id writes nothing and answers False); inside a transaction
(:func:`add_event`) the event rides with the change it records, whose own conditions (a version check,
a key lock) already refuse a replay. Reads: a group's events (GSI ``by_group``) or every event since a
time (GSI ``by_day``, one query per UTC day, newest first). The signals audit (:class:`SignalAudit`) is
the log's ``signal`` events.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import PutError

from engine.domain.events import (
    KIND_OPERATOR,
    KIND_PROTECTION,
    KIND_RISK,
    KIND_SIGNAL,
    OPERATOR_ACTIONS,
    Event,
    event_day,
)
from engine.domain.models import Outcome
from engine.store.errors import StoreError
from engine.store.tables import EquityModel, EventModel, RiskActionModel, bind
from engine.store.tx import Transaction

#: Summary keys containing any of these (case-insensitive) are dropped before storing.
SECRET_MARKERS = ("secret", "passphrase", "password", "token", "api_key", "apikey")
#: The equity series of the whole engine (every account); each account also has its own series.
DEFAULT_SERIES = "default"
#: Prefix of an account's equity series (DESIGN §3.10): ``account#<name>``.
ACCOUNT_SERIES_PREFIX = "account#"


def account_series(account: str) -> str:
    """The equity series of ``account`` (lower case, as accounts are named)."""
    return f"{ACCOUNT_SERIES_PREFIX}{account.strip().lower()}"


#: How far back ``list`` looks when no ``since`` is given.
DEFAULT_LOOKBACK_DAYS = 30


def event_to_model(event: Event) -> EventModel:
    """The pynamodb item of ``event`` (bound to the current table)."""
    bind(EventModel)
    return EventModel(
        id=event.id,
        at=event.at,
        day=event_day(event.at),
        kind=event.kind,
        name=event.name,
        reason=event.reason,
        group_id=event.group_id,
        account=event.account,
        symbol=event.symbol,
        side=event.side,
        timeframe=event.timeframe,
        data=dict(event.data),
    )


def event_from_model(item: EventModel) -> Event:
    """The domain event stored in ``item``."""
    return Event(
        id=item.id,
        at=item.at,
        kind=item.kind,
        name=item.name,
        reason=item.reason,
        group_id=item.group_id,
        account=item.account,
        symbol=item.symbol,
        side=item.side,
        timeframe=None if item.timeframe is None else int(item.timeframe),
        data=dict(item.data or {}),
    )


def event_from_image(image: dict[str, Any]) -> Event:
    """The event in a stream record's ``NewImage`` (DynamoDB JSON)."""
    return event_from_model(EventModel.from_raw_data(image))


def add_event(tx: Transaction, event: Event) -> None:
    """Put ``event`` into ``tx`` (the change it records refuses a replay, so no condition of its own)."""
    tx.put(f"event:{event.id}", event_to_model(event))


def record_event(event: Event) -> bool:
    """Append ``event`` on its own (a conditional put); False, writing nothing, when its id exists."""
    try:
        event_to_model(event).save(condition=EventModel.id.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


class EventStore:
    """Events table access; every method returns domain :class:`Event` objects."""

    def record(self, event: Event) -> bool:
        """Append ``event``; False (nothing written) when an event with its id exists already."""
        return record_event(event)

    def get(self, event_id: str) -> Event | None:
        """The event ``event_id``, or None."""
        try:
            return event_from_model(bind(EventModel).get(event_id, consistent_read=True))
        except EventModel.DoesNotExist:
            return None

    def list(
        self,
        *,
        group_id: str | None = None,
        since: datetime | None = None,
        kind: str | None = None,
        account: str | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[Event]:
        """Newest first, at most ``limit``: a group's events, else every event since ``since`` (default
        :data:`DEFAULT_LOOKBACK_DAYS` before ``now``); ``kind``/``account`` filter."""
        found: list[Event] = []
        for event in self._newest_first(group_id, since, now):
            if kind is not None and event.kind != kind:
                continue
            if account is not None and event.account != account:
                continue
            found.append(event)
            if len(found) >= limit:
                break
        return found

    def _newest_first(
        self, group_id: str | None, since: datetime | None, now: datetime | None
    ) -> Iterator[Event]:
        model = bind(EventModel)
        if group_id is not None:
            condition = None if since is None else EventModel.at >= since
            for item in model.by_group.query(
                group_id, range_key_condition=condition, scan_index_forward=False
            ):
                yield event_from_model(item)
            return
        end = (now or datetime.now(UTC)).astimezone(UTC)
        start = since.astimezone(UTC) if since is not None else end - timedelta(days=DEFAULT_LOOKBACK_DAYS)
        day = end.date()
        while day >= start.date():
            condition = EventModel.at >= start
            for item in model.by_day.query(
                day.isoformat(), range_key_condition=condition, scan_index_forward=False
            ):
                yield event_from_model(item)
            day -= timedelta(days=1)


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


def signal_event_id(signal_id: str) -> str:
    """Id of the event recording signal ``signal_id`` (one per signal: a replay writes nothing)."""
    return f"signal#{signal_id}"


def signal_event(record: SignalRecord, *, account: str | None = None, symbol: str | None = None) -> Event:
    """The event log entry (kind ``signal``) of a signal's outcome."""
    data: dict[str, Any] = {"signal_id": record.signal_id, "intent": record.intent, "summary": record.summary}
    if record.key is not None:
        data["key"] = record.key
    if record.queue_id is not None:
        data["queue_id"] = record.queue_id
    summary = record.summary
    side = summary.get("side")
    timeframe = summary.get("timeframe")
    return Event(
        id=signal_event_id(record.signal_id),
        at=record.received_at,
        kind=KIND_SIGNAL,
        name=record.outcome,
        reason=record.reason,
        group_id=record.group_id,
        account=account or _key_part(record.key, 0),
        symbol=symbol or summary.get("symbol") or _key_part(record.key, 1),
        side=str(side) if side is not None else _key_part(record.key, 3),
        timeframe=int(timeframe) if isinstance(timeframe, int) else None,
        data=data,
    )


def _key_part(key: str | None, index: int) -> str | None:
    parts = (key or "").split("#")
    return parts[index] if len(parts) > index and parts[index] else None


def signal_record(
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
    """A :class:`SignalRecord`; top-level summary keys that look secret are dropped."""
    return SignalRecord(
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


class SignalAudit:
    """The signals audit: signal events (kind ``signal``) in the event log (DESIGN §1).

    One event per signal id; a replay with the same id writes nothing (the first outcome stands).
    """

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
        """Store a signal's outcome as an event; top-level summary keys that look secret are dropped."""
        record = signal_record(
            signal_id=signal_id,
            received_at=received_at,
            intent=intent,
            outcome=outcome,
            key=key,
            reason=reason,
            group_id=group_id,
            queue_id=queue_id,
            summary=summary,
        )
        record_event(signal_event(record))
        return record

    def list_recent(self, limit: int = 100) -> list[SignalRecord]:
        """The ``limit`` most recently received signals, newest first (scans the event log)."""
        model = bind(EventModel)
        records = [
            SignalRecord(
                signal_id=str((item.data or {}).get("signal_id", item.id)),
                received_at=item.at,
                intent=str((item.data or {}).get("intent", "")),
                outcome=item.name,
                key=(item.data or {}).get("key"),
                reason=item.reason,
                group_id=item.group_id,
                queue_id=(item.data or {}).get("queue_id"),
                summary=dict((item.data or {}).get("summary") or {}),
            )
            for item in model.scan(EventModel.kind == KIND_SIGNAL)
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


def risk_action_event(action: RiskActionRecord) -> Event:
    """The event log entry of a risk-engine or operator action (id ``risk#<action id>``)."""
    details = dict(action.details)
    by_operator = details.get("by") == "operator" or action.action in OPERATOR_ACTIONS
    loser = details.get("loser")
    symbol = loser.get("symbol") if isinstance(loser, Mapping) else details.get("symbol")
    data: dict[str, Any] = {"action": action.action, "details": details}
    if action.amount_usd is not None:
        data["amount_usd"] = str(action.amount_usd)
    if action.related_group_ids:
        data["related_group_ids"] = list(action.related_group_ids)
    # A protection trigger (engine.app.positions.protection) is its own kind, named by the rule that fired.
    protection = action.action == "protection"
    kind = KIND_PROTECTION if protection else KIND_OPERATOR if by_operator else KIND_RISK
    return Event(
        id=f"risk#{action.id}",
        at=action.at,
        kind=kind,
        name=str(details.get("rule") or action.action) if protection else action.action,
        reason=action.reason,
        group_id=action.group_id,
        account=details.get("account") if isinstance(details.get("account"), str) else None,
        symbol=str(symbol) if symbol else None,
        data=data,
    )


class RiskActionStore:
    """Risk actions table (hash ``id``)."""

    def record(self, action: RiskActionRecord) -> None:
        """Store ``action`` and its event (kind ``risk``, or ``operator`` for an operator's action) in one
        transaction (same id overwrites: replays do not duplicate)."""
        bind(RiskActionModel)
        item = RiskActionModel(
            id=action.id,
            at=action.at,
            action=action.action,
            reason=action.reason,
            group_id=action.group_id,
            related_group_ids=list(action.related_group_ids),
            amount_usd=action.amount_usd,
            details=dict(action.details),
        )
        tx = Transaction(f"risk-action:{action.id}")
        tx.put("action", item)
        add_event(tx, risk_action_event(action))
        failed = tx.commit()
        if failed:
            raise StoreError(f"risk action {action.id} not recorded: {sorted(failed)}")

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
