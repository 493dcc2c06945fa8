"""Drive the Lambda functions from moto's REAL DynamoDB stream records, in order, in tests.

Typical use (inside the ``dynamodb`` fixture, i.e. one ``mock_aws`` per test)::

    streams = Streams()                              # one per test: positions per table
    executor = load_function("order_executor")       # functions/order_executor/handler.py, by path
    position_update = load_function("position_update")
    ...write something...
    event = streams.next_event("orders")             # only the records written since the last call
    deliver(position_update, event)                  # lambda_handler(event, context) -> its response
    # or: deliver every stream to its consumers until nothing new is written
    drain(streams, {"orders": [executor, position_update], "groups": [slot_release]})

- :class:`StreamTap` reads one table's stream (``describe_stream`` → shard →
  ``get_shard_iterator`` TRIM_HORIZON / AFTER_SEQUENCE_NUMBER → ``get_records``) and remembers the
  last sequence number it returned, so each read returns only new records, in sequence order.
- Records become Lambda events with :func:`engine.local.events.stream_event_record` /
  :func:`engine.local.events.stream_event` — the same builders the local runtime uses.
- :func:`drain` delivers each batch to every consumer of its table (each consumer is its own event
  source mapping and sees every record); ``replay=2`` delivers every batch twice in a row (at-least-
  once delivery); failures reported by a handler (``batchItemFailures``) are collected and, with
  ``strict=True`` (default), raise at the end of the round that saw them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from engine.local.events import stream_event, stream_event_record
from engine.local.functions import FunctionRegistry
from engine.store import table_name
from engine.store.tables import GroupModel, OrderModel, QueueModel

REGION = "us-east-1"
FUNCTIONS_ROOT = Path(__file__).resolve().parents[2] / "functions"

#: Short table names accepted everywhere a table is named (full names work too).
SHORT_TABLES: dict[str, Callable[[], str]] = {
    "groups": lambda: table_name(GroupModel),
    "orders": lambda: table_name(OrderModel),
    "queue": lambda: table_name(QueueModel),
}

_registry = FunctionRegistry(FUNCTIONS_ROOT, REGION)


def full_table_name(table: str) -> str:
    """``"orders"`` → the orders table's current name; any other name is returned as is."""
    resolve = SHORT_TABLES.get(table)
    return resolve() if resolve is not None else table


class StreamTap:
    """One table's stream, read from where the previous read stopped."""

    def __init__(self, table: str, *, region: str = REGION) -> None:
        self.table = full_table_name(table)
        self.region = region
        self._dynamodb = boto3.client("dynamodb", region_name=region)
        self._streams = boto3.client("dynamodbstreams", region_name=region)
        self._stream_arn: str | None = None
        self._last_sequence: dict[str, str] = {}

    @property
    def stream_arn(self) -> str:
        """The table's latest stream ARN (a new table, e.g. after a moto reset, restarts positions)."""
        arn = self._dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        if arn != self._stream_arn:
            self._stream_arn = arn
            self._last_sequence = {}
        return str(arn)

    def read(self) -> list[dict[str, Any]]:
        """The raw ``get_records`` records written since the last read, in sequence order."""
        arn = self.stream_arn
        records: list[dict[str, Any]] = []
        for shard in self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            after = self._last_sequence.get(shard_id)
            if after is None:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            else:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=arn,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=after,
                )["ShardIterator"]
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                batch = page["Records"]
                if not batch:
                    break
                records.extend(batch)
                self._last_sequence[shard_id] = batch[-1]["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
        records.sort(key=lambda record: int(record["dynamodb"]["SequenceNumber"]))
        return records

    def read_events(self, batch_size: int = 100) -> list[dict[str, Any]]:
        """The new records as Lambda stream events of at most ``batch_size`` records each."""
        records = self.read()
        if not records:
            return []
        arn = self.stream_arn
        lambda_records = [stream_event_record(r, stream_arn=arn, region=self.region) for r in records]
        return [
            stream_event(lambda_records[start : start + batch_size])
            for start in range(0, len(lambda_records), batch_size)
        ]


class Streams:
    """The stream taps of one test, one per table, created on first use."""

    def __init__(self, *, region: str = REGION) -> None:
        self.region = region
        self._taps: dict[str, StreamTap] = {}

    def tap(self, table: str) -> StreamTap:
        """The tap of ``table`` (short or full name)."""
        name = full_table_name(table)
        if name not in self._taps:
            self._taps[name] = StreamTap(name, region=self.region)
        return self._taps[name]

    def new_records(self, table: str) -> list[dict[str, Any]]:
        """Raw records of ``table`` written since the last read of it."""
        return self.tap(table).read()

    def new_events(self, table: str, batch_size: int = 100) -> list[dict[str, Any]]:
        """Lambda events for the records of ``table`` written since the last read of it."""
        return self.tap(table).read_events(batch_size)

    def next_event(self, table: str) -> dict[str, Any]:
        """ONE Lambda event holding every new record of ``table`` (``{"Records": []}`` when none)."""
        records = [
            record for event in self.new_events(table, batch_size=10_000) for record in event["Records"]
        ]
        return stream_event(records)

    def skip(self, *tables: str) -> None:
        """Move past everything written so far (e.g. the setup of a test)."""
        for table in tables:
            self.tap(table).read()


def load_function(name: str) -> ModuleType:
    """``functions/<name>/handler.py`` loaded by path (once per process, like a warm Lambda)."""
    _registry.handler(name)  # checks that it has a lambda_handler
    return _registry.module(name)


def function_name_of(module: ModuleType) -> str:
    """The function folder name of a handler module loaded by :func:`load_function`."""
    name = _registry.name_of(module)
    if name is not None:
        return name
    return Path(getattr(module, "__file__", "handler")).parent.name


def deliver(handler_module: ModuleType, event: Mapping[str, Any]) -> Any:
    """Invoke ``handler_module.lambda_handler(event, context)`` with a fresh Lambda context."""
    context = _registry.context(function_name_of(handler_module))
    return handler_module.lambda_handler(dict(event), context)


def failed_items(response: Any) -> list[str]:
    """The sequence numbers a stream handler reported failed (``batchItemFailures``)."""
    if not isinstance(response, Mapping):
        return []
    return [str(item.get("itemIdentifier")) for item in response.get("batchItemFailures") or []]


class StreamDeliveryFailed(AssertionError):
    """A stream handler reported failed records while draining strictly."""


@dataclass
class DrainResult:
    """What :func:`drain` delivered."""

    rounds: int = 0
    records: dict[str, int] = field(default_factory=dict)
    invocations: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def drain(
    streams: Streams,
    consumers: Mapping[str, Sequence[ModuleType]],
    *,
    replay: int = 1,
    strict: bool = True,
    max_rounds: int = 50,
    between_rounds: Callable[[], object] | None = None,
) -> DrainResult:
    """Deliver every table's new stream records to its consumers until no new record appears.

    Each round reads every table once and hands each batch to each consumer ``replay`` times in a
    row. ``between_rounds`` (optional) runs after each round that delivered something. Raises
    :class:`StreamDeliveryFailed` on reported failures when ``strict``, and ``RuntimeError`` if the
    streams do not go quiet within ``max_rounds``.
    """
    result = DrainResult()
    for _ in range(max_rounds):
        delivered = False
        round_failures: list[tuple[str, str]] = []
        for table, handlers in consumers.items():
            for event in streams.new_events(table):
                delivered = True
                result.records[table] = result.records.get(table, 0) + len(event["Records"])
                for handler in handlers:
                    for _attempt in range(replay):
                        response = deliver(handler, event)
                        result.invocations += 1
                        round_failures.extend(
                            (function_name_of(handler), seq) for seq in failed_items(response)
                        )
        if not delivered:
            return result
        result.rounds += 1
        result.failures.extend(round_failures)
        if strict and round_failures:
            raise StreamDeliveryFailed(f"stream handlers reported failed records: {round_failures}")
        if between_rounds is not None:
            between_rounds()
    raise RuntimeError(f"streams still busy after {max_rounds} rounds: {result}")
