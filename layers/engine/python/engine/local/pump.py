"""The stream pump: DynamoDB stream records to their consumers, in order, with Lambda's semantics.

Each consumer is a separate event source mapping: its own shard iterators and its own position, so
``order_executor`` and ``position_update`` both see every record of the orders stream.

Delivery, per consumer and shard (the behaviour of a mapping with ``ReportBatchItemFailures``,
``BisectBatchOnFunctionError`` and ``MaximumRetryAttempts``):

- records go out in sequence order, at most ``batch_size`` (100) per invocation;
- a response ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}, ...]}`` acknowledges
  the records before the lowest failed one; that record and all after it are delivered again;
- an exception, or a failure naming a record not in the batch, fails the whole batch: the batch is
  halved and retried (bisect) until the failing record is alone, so one poison record never takes
  its neighbours down with it;
- a record that fails alone (or is reported failed) ``max_retries`` + 1 times goes to the dead-letter
  list (the local twin of the on-failure SQS destination) and the consumer moves on.

Positions: each consumer's position is the sequence number of the last record it acknowledged (or
dead-lettered). :meth:`StreamPump.positions` reads them (the local runtime saves them with the tables,
and trims what every consumer has acknowledged); a pump built with ``positions`` starts each consumer
right after its saved position, so records fetched but not acknowledged before a restart are delivered
again. ``has_records(table, after)`` (optional) says whether a stream may hold a record after a sequence
number without a request; :meth:`StreamPump.notify` is called by whoever writes, so the loops do not
wait out their poll period.

Fair delivery (``Consumer.fair_key``; locally the orders stream's consumers, keyed by group): the keys
take turns instead of the sequence order. A batch (``Consumer.batch_size`` records: 1 for the order
executor, as its AWS mapping has) is filled key by key, each key's records in order: first the keys whose
next record is urgent (``Consumer.urgent``; locally a cancel or a close order: what protects money goes
first), then the keys not served yet, then the key served least while it has been waiting, service counted
in seconds of invocation (:func:`_next_key`). Lambda keeps order per partition key only, and processes
keys concurrently when a mapping's parallelization allows it; here it means a new signal's first order
goes out after the record in flight, not after the remaining legs and take-profits of every signal before
it, and an exit's cancels and close go ahead of a round of entries. A record delivered out of sequence
order is acknowledged once every record before it is; until then a restart delivers it again (consumers
are idempotent). Failures follow the rules above within the delivered batch; a failed record is retried
after the other keys' turn. A pass delivers up to ``batch_size`` records this way.

Lanes: :meth:`StreamPump.start` runs one thread per ``Consumer.lane``, as Lambda polls each event source
mapping on its own: a long batch of one consumer does not hold up a consumer in another lane (the
order executor is in a lane of its own locally). ``lane_setup(lane)`` (optional) runs first on each
lane's thread. Each consumer is delivered by one thread at a time; :meth:`StreamPump.run_pass` and
:meth:`StreamPump.drain` hold every consumer, so a drain sees the streams quiet across all lanes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from engine.local.events import stream_event, stream_event_record

log = logging.getLogger("engine.local.pump")

#: Fair delivery looks this many undone records ahead: a new key's first record is seen behind a backlog
#: of up to this many, and beyond it the stream waits (records stay in the stream, nothing is lost).
FAIR_LOOKAHEAD = 1000

Deliver = Callable[[dict[str, Any]], Any]
FairKey = Callable[[dict[str, Any]], str]
Urgent = Callable[[dict[str, Any]], bool]
HasRecords = Callable[[str, "str | None"], bool]


@dataclass(frozen=True)
class Consumer:
    """One event source mapping: a table's stream feeding a function (or a local observer)."""

    name: str
    table: str
    deliver: Deliver
    lane: str = "stream"
    #: Fair delivery by this key of a stream record (module docstring); None: batches in sequence order.
    fair_key: FairKey | None = None
    #: Records per invocation of a fair consumer (None: the pump's ``batch_size``).
    batch_size: int | None = None
    #: Fair delivery: a key whose next record is urgent goes before the others (None: none is).
    urgent: Urgent | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A record its consumer failed on ``attempts`` times."""

    consumer: str
    table: str
    sequence_number: str
    event_id: str
    event_name: str
    keys: dict[str, Any]
    attempts: int
    error: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (status view)."""
        return asdict(self)


@dataclass
class PassResult:
    """What one pass (or a drain) did."""

    delivered: int = 0
    failures: int = 0
    dead_letters: int = 0
    sent: int = 0

    def add(self, other: PassResult) -> None:
        """Accumulate another result into this one."""
        self.delivered += other.delivered
        self.failures += other.failures
        self.dead_letters += other.dead_letters
        self.sent += other.sent


@dataclass
class _ShardReader:
    table: str
    stream_arn: str
    shard_id: str
    acknowledged: str | None = None
    last_fetched: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    batch_limit: int = 0
    iterator: str | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    #: Fair delivery: records done out of sequence order, and deliveries per key still pending.
    done: set[str] = field(default_factory=set)
    served: dict[str, float] = field(default_factory=dict)


def _failure_report(response: Any, batch: list[dict[str, Any]]) -> tuple[int | None, bool]:
    """(index of the first failed record or None when all succeeded, whether the whole batch failed).

    As in Lambda, a failure whose ``itemIdentifier`` is missing or names no record of the batch fails
    the whole batch.
    """
    if not isinstance(response, Mapping):
        return None, False
    failures = response.get("batchItemFailures")
    if not failures:
        return None, False
    sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if identifier not in sequence_numbers:
            return 0, True
        indexes.append(sequence_numbers.index(identifier))
    return min(indexes), False


def _next_key(reader: _ShardReader, heads: list[str], taken: set[str], urgent: set[str]) -> str | None:
    """The next key to serve: a key whose next record is urgent (the oldest such), else a key not served
    yet (the oldest such), else the key served least; keys in ``taken`` are passed over.

    A key served for the first time counts as level with the least-served key already waiting (fair
    queuing's virtual time), not as unserved: a steady arrival of new keys cannot starve the older ones
    beyond one turn per new key.
    """
    candidates = [key for key in heads if key not in taken]
    if not candidates:
        return None
    first = next((key for key in candidates if key in urgent), None)
    if first is None:
        first = next((key for key in candidates if key not in reader.served), None)
    if first is not None:
        floor = min((reader.served[key] for key in heads if key in reader.served), default=0.0)
        reader.served.setdefault(first, floor)
        return first
    return min(candidates, key=lambda key: reader.served[key])


def _fair_batch(
    reader: _ShardReader, fair_key: FairKey, urgent: Urgent | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` pending records, key by key (:func:`_next_key`), each key's records in order."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for record in reader.pending:
        if record["dynamodb"]["SequenceNumber"] not in reader.done:
            by_key.setdefault(fair_key(record), []).append(record)
    heads = list(by_key)
    pressing = {key for key, records in by_key.items() if urgent is not None and urgent(records[0])}
    batch: list[dict[str, Any]] = []
    taken: set[str] = set()
    while len(batch) < limit:
        key = _next_key(reader, heads, taken, pressing)
        if key is None:
            break
        batch.extend(by_key[key][: limit - len(batch)])
        taken.add(key)
    return batch


class StreamPump:
    """Feeds each consumer its table's stream records; continuous in a thread or one pass at a time."""

    def __init__(
        self,
        consumers: list[Consumer],
        *,
        dynamodb: Any,
        streams: Any,
        region: str,
        batch_size: int = 100,
        max_retries: int = 3,
        poll_seconds: float = 0.2,
        after_pass: Callable[[], object] | None = None,
        positions: Mapping[str, str] | None = None,
        has_records: HasRecords | None = None,
        dead_letters: list[DeadLetter] | None = None,
        lane_setup: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumers = consumers
        self._dynamodb = dynamodb
        self._streams = streams
        self._region = region
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.poll_seconds = poll_seconds
        self._after_pass = after_pass
        self._saved = dict(positions or {})
        self._has_records = has_records
        self._lane_setup = lane_setup
        self._clock = clock
        self._lanes: dict[str, list[Consumer]] = {}
        for consumer in consumers:
            self._lanes.setdefault(consumer.lane, []).append(consumer)
        self._wakes = {lane: threading.Event() for lane in self._lanes}
        self._readers: dict[str, list[_ShardReader]] = {}
        self._dead_letters: list[DeadLetter] = list(dead_letters or [])
        self._positions: dict[str, str] = dict(self._saved)
        self._positions_lock = threading.Lock()
        self._locks = {self.key_of(consumer): threading.RLock() for consumer in consumers}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public

    @staticmethod
    def key_of(consumer: Consumer) -> str:
        """The name of a consumer's position: ``<consumer>|<table>``."""
        return f"{consumer.name}|{consumer.table}"

    def positions(self) -> dict[str, str]:
        """Last acknowledged sequence number per consumer (:meth:`key_of`); saved positions of consumers
        not read yet are kept."""
        with self._positions_lock:
            return dict(self._positions)

    def acknowledged(self) -> dict[str, int | None]:
        """Per table, the lowest position over its consumers (None while one of them has none)."""
        current = self.positions()
        lowest: dict[str, int | None] = {}
        for consumer in self.consumers:
            position = current.get(self.key_of(consumer))
            value = None if position is None else int(position)
            if consumer.table not in lowest:
                lowest[consumer.table] = value
            else:
                seen = lowest[consumer.table]
                lowest[consumer.table] = None if seen is None or value is None else min(seen, value)
        return lowest

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Records given up on, oldest first (a copy; not blocked by a pass in progress)."""
        return list(self._dead_letters)

    def run_pass(self) -> PassResult:
        """Deliver at most one batch per consumer and shard."""
        result = PassResult()
        with self._every_consumer():
            for consumer in self.consumers:
                result.add(self._deliver_consumer(consumer))
            if self._after_pass is not None:
                self._after_pass()
        return result

    def drain(self, max_passes: int = 1000) -> tuple[PassResult, bool]:
        """Run passes until one sends nothing; returns the total and whether the streams went quiet."""
        total = PassResult()
        with self._every_consumer():
            for _ in range(max_passes):
                result = self.run_pass()
                total.add(result)
                if result.sent == 0:
                    return total, True
        return total, False

    def notify(self) -> None:
        """Something was written: every lane looks at its streams now."""
        for wake in self._wakes.values():
            wake.set()

    def start(self) -> None:
        """Pump continuously, one daemon thread per lane."""
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(lane,), name=f"stream-pump-{lane}", daemon=True)
            for lane in self._lanes
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads after their current pass."""
        self._stop.set()
        self.notify()
        for thread in self._threads:
            thread.join(timeout=60)
        self._threads = []

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _every_consumer(self) -> Iterator[None]:
        with ExitStack() as held:
            for consumer in self.consumers:
                held.enter_context(self._locks[self.key_of(consumer)])
            yield

    def _deliver_consumer(self, consumer: Consumer) -> PassResult:
        result = PassResult()
        with self._locks[self.key_of(consumer)]:
            for reader in self._readers_of(consumer):
                if consumer.fair_key is None:
                    result.add(self._deliver_once(consumer, reader))
                    continue
                sent = 0
                while sent < self.batch_size:  # a pass: up to a batch's worth of records
                    delivered = self._deliver_fair(consumer, consumer.fair_key, reader)
                    result.add(delivered)
                    if not delivered.sent:
                        break
                    sent += delivered.sent
        return result

    def _loop(self, lane: str) -> None:
        if self._lane_setup is not None:
            self._lane_setup(lane)
        wake = self._wakes[lane]
        while not self._stop.is_set():
            wake.clear()
            sent = 0
            try:
                for consumer in self._lanes[lane]:
                    sent += self._deliver_consumer(consumer).sent
                if self._after_pass is not None:
                    self._after_pass()
            except Exception:
                log.exception("stream pump pass failed (lane %s)", lane)
                sent = 0
            if not sent:
                wake.wait(self.poll_seconds)

    def _readers_of(self, consumer: Consumer) -> list[_ShardReader]:
        key = self.key_of(consumer)
        readers = self._readers.get(key)
        if readers:
            return readers
        table = self._dynamodb.describe_table(TableName=consumer.table)["Table"]
        stream_arn = table.get("LatestStreamArn")
        if not stream_arn:
            raise RuntimeError(f"table {consumer.table} has no stream")
        shards = self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        saved = self._saved.get(key)
        readers = [
            _ShardReader(
                table=consumer.table,
                stream_arn=stream_arn,
                shard_id=shard["ShardId"],
                acknowledged=saved,
                last_fetched=saved,
                batch_limit=self.batch_size,
            )
            for shard in shards
        ]
        if readers:
            self._readers[key] = readers
        return readers

    def _fetch(self, reader: _ShardReader, lookahead: int | None = None) -> None:
        """Read the next records into ``reader.pending``, up to ``lookahead`` (the batch size) undone."""
        room = (lookahead or self.batch_size) - (len(reader.pending) - len(reader.done))
        if room <= 0:
            return
        room = min(room, self.batch_size)
        if self._has_records is not None and not self._has_records(reader.table, reader.last_fetched):
            return
        # Follow the iterator each answer hands back (one request a fetch); when moto no longer knows
        # it (pruned, or its shard was replaced by a restore) start a fresh one after the last record held.
        for attempt in (1, 2):
            try:
                iterator = reader.iterator or self._new_iterator(reader)
                response = self._streams.get_records(ShardIterator=iterator, Limit=room)
                break
            except ClientError:
                reader.iterator = None
                if attempt == 2:
                    raise
        reader.iterator = response.get("NextShardIterator")
        for record in response.get("Records", []):
            reader.pending.append(
                stream_event_record(record, stream_arn=reader.stream_arn, region=self._region)
            )
            reader.last_fetched = record["dynamodb"]["SequenceNumber"]

    def _new_iterator(self, reader: _ShardReader) -> str:
        arguments: dict[str, Any] = {"StreamArn": reader.stream_arn, "ShardId": reader.shard_id}
        if reader.last_fetched is None:
            arguments["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            arguments["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            arguments["SequenceNumber"] = reader.last_fetched
        return str(self._streams.get_shard_iterator(**arguments)["ShardIterator"])

    def _deliver_once(self, consumer: Consumer, reader: _ShardReader) -> PassResult:
        self._fetch(reader)
        batch = reader.pending[: reader.batch_limit]
        if not batch:
            return PassResult()
        result, settled = self._deliver_batch(consumer, reader, batch)
        self._acknowledge(consumer, reader, settled)
        return result

    def _deliver_fair(self, consumer: Consumer, fair_key: FairKey, reader: _ShardReader) -> PassResult:
        self._fetch(reader, FAIR_LOOKAHEAD)
        limit = min(consumer.batch_size or self.batch_size, reader.batch_limit or self.batch_size)
        batch = _fair_batch(reader, fair_key, consumer.urgent, limit)
        if not batch:
            return PassResult()
        started = self._clock()
        result, settled = self._deliver_batch(consumer, reader, batch)
        share = (self._clock() - started) / len(batch)
        for record in batch:  # service is time: a record that asked nothing costs its key next to nothing
            reader.served[fair_key(record)] += share
        reader.done.update(record["dynamodb"]["SequenceNumber"] for record in batch[:settled])
        self._settle(consumer, fair_key, reader)
        return result

    def _deliver_batch(
        self, consumer: Consumer, reader: _ShardReader, batch: list[dict[str, Any]]
    ) -> tuple[PassResult, int]:
        """Invoke ``consumer`` with ``batch`` and apply the delivery rules (module docstring): the result,
        and how many records from the front of ``batch`` are settled (delivered, or dead-lettered)."""
        result = PassResult(sent=len(batch))
        error = "reported in batchItemFailures"
        try:
            failed, whole_batch = _failure_report(consumer.deliver(stream_event(batch)), batch)
        except Exception as exc:
            log.warning(
                "%s raised on a batch of %d from %s", consumer.name, len(batch), consumer.table, exc_info=True
            )
            error, failed, whole_batch = f"{type(exc).__name__}: {exc}", 0, True
        if failed is None:
            reader.batch_limit = self.batch_size
            result.delivered = len(batch)
            return result, len(batch)
        result.failures = 1
        result.delivered = failed
        if whole_batch and len(batch) > 1:
            reader.batch_limit = max(1, len(batch) // 2)
            return result, failed
        record = batch[failed]
        sequence = record["dynamodb"]["SequenceNumber"]
        reader.attempts[sequence] = reader.attempts.get(sequence, 0) + 1
        if reader.attempts[sequence] <= self.max_retries:
            return result, failed
        self._dead_letter(consumer, record, reader.attempts.pop(sequence), error)
        reader.batch_limit = self.batch_size
        result.dead_letters = 1
        return result, failed + 1

    def _settle(self, consumer: Consumer, fair_key: FairKey, reader: _ShardReader) -> None:
        """Acknowledge the records done at the front; forget the service of keys with nothing pending."""
        count = 0
        for record in reader.pending:
            if record["dynamodb"]["SequenceNumber"] not in reader.done:
                break
            count += 1
        for record in reader.pending[:count]:
            reader.done.discard(record["dynamodb"]["SequenceNumber"])
        self._acknowledge(consumer, reader, count)
        waiting = {
            fair_key(record)
            for record in reader.pending
            if record["dynamodb"]["SequenceNumber"] not in reader.done
        }
        reader.served = {key: served for key, served in reader.served.items() if key in waiting}

    def _acknowledge(self, consumer: Consumer, reader: _ShardReader, count: int) -> None:
        if count <= 0:
            return
        for record in reader.pending[:count]:
            reader.attempts.pop(record["dynamodb"]["SequenceNumber"], None)
        reader.acknowledged = reader.pending[count - 1]["dynamodb"]["SequenceNumber"]
        del reader.pending[:count]
        with self._positions_lock:
            self._positions[self.key_of(consumer)] = reader.acknowledged

    def _dead_letter(self, consumer: Consumer, record: dict[str, Any], attempts: int, error: str) -> None:
        letter = DeadLetter(
            consumer=consumer.name,
            table=consumer.table,
            sequence_number=record["dynamodb"]["SequenceNumber"],
            event_id=record["eventID"],
            event_name=record["eventName"],
            keys=record["dynamodb"].get("Keys", {}),
            attempts=attempts,
            error=error,
            at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        )
        log.error(
            "dead letter: %s gave up on %s record %s after %d attempts: %s",
            consumer.name,
            consumer.table,
            letter.sequence_number,
            attempts,
            error,
        )
        self._dead_letters.append(letter)
