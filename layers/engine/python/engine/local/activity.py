"""What happened, in one line per event: signals handled, orders placed and filled, groups opened and
closed, slots released, dead letters. Kept in a short ring for the live view and ``/_local/status``,
and printed as plain log lines when there is no terminal view.

Order and group events are read from the stream records themselves (an observer consumer of each
stream), so they show what was written, whichever function wrote it.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()
TERMINAL_GROUP_STATUSES = frozenset({"closed", "failed"})


class ActivityLog:
    """The recent events; echoes each to ``echo`` (a stream) when set."""

    def __init__(self, size: int = 50, echo: TextIO | None = None) -> None:
        self._events: deque[dict[str, str]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.echo = echo

    def add(self, text: str) -> None:
        """Record one event (and print it in plain mode)."""
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self._events.append({"at": at, "event": text})
            if self.echo is not None:
                print(f"{at} {text}", file=self.echo, flush=True)

    def recent(self, limit: int | None = None) -> list[dict[str, str]]:
        """Newest last."""
        with self._lock:
            events = list(self._events)
        return events[-limit:] if limit else events

    def observe_stream(self, event: Mapping[str, Any]) -> None:
        """Observer consumer: describe each stream record worth a line (never fails the batch)."""
        for record in event.get("Records", []):
            try:
                text = describe_record(record)
            except Exception as exc:
                text = f"unreadable stream record {record.get('eventID')}: {exc!r}"
            if text:
                self.add(text)


def plain_echo() -> TextIO:
    """Where plain event lines go."""
    return sys.stdout


def image(record: Mapping[str, Any], which: str) -> dict[str, Any]:
    """A stream record's ``NewImage``/``OldImage`` as plain Python values ({} when absent)."""
    raw = record.get("dynamodb", {}).get(which) or {}
    return {name: _deserializer.deserialize(value) for name, value in raw.items()}


def _short(identifier: Any) -> str:
    return str(identifier)[:8]


def describe_record(record: Mapping[str, Any]) -> str | None:
    """One line for an order or group change, or None when nothing notable changed."""
    table = str(record.get("eventSourceARN", "")).split("/stream/")[0].rsplit("/", 1)[-1]
    new, old = image(record, "NewImage"), image(record, "OldImage")
    if table.endswith("orders"):
        return _describe_order(record["eventName"], new, old)
    if table.endswith("groups"):
        return _describe_group(record["eventName"], new, old)
    return None


def _describe_order(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> str | None:
    if not new:
        return None
    what = (
        f"order {_short(new.get('id'))} {new.get('purpose')} {new.get('side')} {new.get('amount')} "
        f"{new.get('symbol')} @ {new.get('price') or 'market'}"
    )
    if event_name == "INSERT":
        return f"{what} placed ({new.get('status')})"
    if new.get("status") != old.get("status"):
        detail = f" filled {new.get('filled')} avg {new.get('average')}" if new.get("filled") else ""
        reason = f" reason: {new.get('reason')}" if new.get("reason") else ""
        return f"{what} {old.get('status')} -> {new.get('status')}{detail}{reason}"
    if new.get("filled") != old.get("filled"):
        return f"{what} partial fill {new.get('filled')} avg {new.get('average')}"
    return None


def _describe_group(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> str | None:
    if not new:
        return None
    what = (
        f"group {_short(new.get('id'))} {new.get('exchange')} {new.get('symbol')} "
        f"{new.get('timeframe')} {new.get('side')}"
    )
    if event_name == "INSERT":
        return f"{what} opened ({new.get('status')})"
    pyramids, old_pyramids = len(new.get("pyramids") or []), len(old.get("pyramids") or [])
    if pyramids > old_pyramids and old:
        return f"{what} pyramid {pyramids} added"
    if new.get("status") == old.get("status"):
        return None
    text = f"{what} {old.get('status')} -> {new.get('status')}"
    if new.get("status") in TERMINAL_GROUP_STATUSES:
        figures = new.get("figures") or {}
        realized = figures.get("realized_pnl_usd") if isinstance(figures, dict) else None
        reason, note = new.get("close_reason"), new.get("close_note")
        text += f" realised {realized} USD" if realized is not None else ""
        text += f" ({reason}: {note})" if reason and note else f" ({reason})" if reason else ""
    return text


def released_groups(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of groups whose record moved them into a terminal state (slot_release frees their slot)."""
    released = []
    for record in records:
        new, old = image(record, "NewImage"), image(record, "OldImage")
        if new.get("status") in TERMINAL_GROUP_STATUSES and old.get("status") not in TERMINAL_GROUP_STATUSES:
            released.append(str(new.get("id")))
    return released
