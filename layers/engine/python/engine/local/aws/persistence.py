"""The local runtime's state on disk: a snapshot and a journal of consistent cuts.

What is saved (DESIGN §6): every DynamoDB table of the runtime's region (definition and items — the
engine's tables, paper balances and orders included), the stream records no consumer has acknowledged
yet, each stream consumer's position, the pump's dead letters, the scheduler's last runs, the SSM
parameters (every version) and the Secrets Manager secrets.

How: every ``interval`` seconds (1 by default) :meth:`Persister.flush` takes one cut under the serialised
moto server's lock — the items changed since the last cut (told by :mod:`engine.local.aws.changes`),
the stream records written since, the parameters and secrets when they changed — and appends it to
``journal.jsonl`` as one line, flushed and fsynced outside the lock. The consumers' positions are read
*before* the cut: every record at or before a saved position had all its effects in the tables by then,
so a restart may deliver a record again (as Lambda may) but never skips one. A graceful stop writes a
last cut and then a compact ``snapshot.json`` (written aside, fsynced, renamed) and empties the journal;
so does a journal grown past ``compact_bytes``. A ``kill -9`` loses at most the work of the last
``interval``; a line cut short by the kill is ignored.

:func:`restore` loads the snapshot and the journal into a fresh moto (before the tables are created and
the defaults seeded, which then keep what they find): tables from their saved definitions, items put in
place without stream records, each stream shard rebuilt with its unacknowledged records and sequence
numbers, parameters and secrets as they were.

Items are kept as moto's attribute values (``{"S": ...}``), bytes and datetimes tagged (``{"$b": ...}``,
``{"$dt": ...}``); parameters and secrets are moto's own objects, pickled.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, Table
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from engine.local.aws import changes, queries
from engine.local.settings import ACCOUNT_ID

log = logging.getLogger("engine.local.persistence")

FORMAT = 1
SNAPSHOT = "snapshot.json"
JOURNAL = "journal.jsonl"
LOCK = "runtime.lock"

Key = tuple[DynamoType, DynamoType | None]


class StateError(RuntimeError):
    """The state directory cannot be used (the message says why, in one line)."""


class StateDirectoryInUse(StateError):
    """Another local runtime holds the state directory."""


class StateUnreadable(StateError):
    """The snapshot cannot be read (not a journal line cut short: those are skipped)."""


# ---------------------------------------------------------------------- encoding


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, DynamoType):
        return encode_value(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _hook(value: dict[str, Any]) -> Any:
    if len(value) == 1:
        if isinstance(value.get("$b"), str):
            return base64.b64decode(value["$b"])
        if isinstance(value.get("$dt"), str):
            return datetime.fromisoformat(value["$dt"])
    return value


def dumps(value: Any) -> str:
    """JSON with bytes and datetimes tagged."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def loads(text: str) -> Any:
    """The inverse of :func:`dumps`."""
    return json.loads(text, object_hook=_hook)


def encode_value(value: DynamoType) -> dict[str, Any]:
    """A moto attribute value as ``{type: value}``, nested lists and maps included, bytes as bytes."""
    if value.is_list():
        return {value.type: [encode_value(element) for element in value.value]}
    if value.is_map():
        return {value.type: {name: encode_value(element) for name, element in value.value.items()}}
    return {value.type: value.value}


def encode_item(item: Item) -> dict[str, Any]:
    """An item's attributes, each :func:`encode_value`."""
    return {name: encode_value(value) for name, value in item.attrs.items()}


def item_key(hash_value: DynamoType, range_value: DynamoType | None) -> str:
    """A stable text key of an item (its key attribute values)."""
    parts = [encode_value(hash_value), encode_value(range_value) if range_value is not None else None]
    return dumps(parts)


def table_definition(table: Table) -> dict[str, Any]:
    """What :func:`_create_table` needs to create ``table`` again."""

    def index(definition: Any) -> dict[str, Any]:
        return {
            "IndexName": definition.name,
            "KeySchema": definition.schema,
            "Projection": definition.projection,
        }

    return {
        "schema": table.schema,
        "attr": table.attr,
        "billing_mode": table.billing_mode,
        "global_indexes": [index(gsi) for gsi in table.global_indexes or []],
        "indexes": [index(lsi) for lsi in table.indexes or []],
        "streams": table.stream_specification,
        "ttl": table.ttl,
    }


def _pickled(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode("ascii")


def _unpickled(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))  # our own file, written by this module


# ---------------------------------------------------------------------- the saved state


@dataclass
class SavedTable:
    """One table in the saved state."""

    definition: dict[str, Any]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Stream records by sequence number (text), and the next sequence number the shard hands out.
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_sequence: int | None = None

    def apply_items(self, changed: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Put or remove items (``None``: removed) by key."""
        for key, attrs in changed:
            if attrs is None:
                self.items.pop(key, None)
            else:
                self.items[key] = attrs

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Add stream records (by sequence number)."""
        for record in records:
            self.records[int(record["dynamodb"]["SequenceNumber"])] = record


@dataclass
class State:
    """Everything :func:`restore` puts back."""

    tables: dict[str, SavedTable] = field(default_factory=dict)
    positions: dict[str, str] = field(default_factory=dict)
    acknowledged: dict[str, int | None] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    scheduler: dict[str, float] = field(default_factory=dict)
    ssm: str | None = None
    secrets: str | None = None
    saved_at: str | None = None

    def apply(self, entry: Mapping[str, Any]) -> None:
        """Fold one journal entry (a cut) into the state."""
        for name in entry.get("dropped", []):
            self.tables.pop(name, None)
        for name, definition in entry.get("created", {}).items():
            self.tables[name] = SavedTable(definition=definition)
        for name, changed in entry.get("items", {}).items():
            if name in self.tables:
                self.tables[name].apply_items(changed)
        for name, records in entry.get("records", {}).items():
            if name in self.tables:
                self.tables[name].add_records(records)
        for name, next_sequence in entry.get("next", {}).items():
            if name in self.tables:
                self.tables[name].next_sequence = next_sequence
        for name in ("positions", "acknowledged", "dead_letters", "scheduler", "ssm", "secrets", "saved_at"):
            if name in entry:
                setattr(self, name, entry[name])
        self.drop_acknowledged()

    def drop_acknowledged(self) -> None:
        """Forget stream records every consumer of their table has acknowledged."""
        for name, table in self.tables.items():
            through = self.acknowledged.get(name)
            if through is None:
                continue
            for sequence in [sequence for sequence in table.records if sequence <= through]:
                del table.records[sequence]

    def as_json(self) -> dict[str, Any]:
        """The snapshot document."""
        return {
            "format": FORMAT,
            "saved_at": self.saved_at,
            "tables": {
                name: {
                    "definition": table.definition,
                    "items": table.items,
                    "records": [table.records[sequence] for sequence in sorted(table.records)],
                    "next": table.next_sequence,
                }
                for name, table in self.tables.items()
            },
            "positions": self.positions,
            "acknowledged": self.acknowledged,
            "dead_letters": self.dead_letters,
            "scheduler": self.scheduler,
            "ssm": self.ssm,
            "secrets": self.secrets,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> State:
        """The state of a snapshot document."""
        if document.get("format") != FORMAT:
            raise StateUnreadable(f"unknown snapshot format {document.get('format')!r}")
        state = cls(
            positions=dict(document.get("positions") or {}),
            acknowledged=dict(document.get("acknowledged") or {}),
            dead_letters=list(document.get("dead_letters") or []),
            scheduler=dict(document.get("scheduler") or {}),
            ssm=document.get("ssm"),
            secrets=document.get("secrets"),
            saved_at=document.get("saved_at"),
        )
        for name, saved in (document.get("tables") or {}).items():
            state.tables[name] = SavedTable(
                definition=saved["definition"],
                items=dict(saved.get("items") or {}),
                records={
                    int(record["dynamodb"]["SequenceNumber"]): record for record in saved.get("records", [])
                },
                next_sequence=saved.get("next"),
            )
        return state


# ---------------------------------------------------------------------- the directory


class StateDirectory:
    """``snapshot.json``, ``journal.jsonl`` and the lock of one local runtime's state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: TextIO | None = None
        self._journal: TextIO | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.path / SNAPSHOT

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    def lock(self) -> None:
        """Hold the directory for this process; :class:`StateDirectoryInUse` when another one does."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / LOCK).open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise StateDirectoryInUse(
                f"the state directory {self.path} is in use by another local runtime ({owner})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        """Close the journal and let the directory go."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def wipe(self) -> None:
        """Forget the saved state (``FRESH=1``)."""
        for name in (SNAPSHOT, JOURNAL, SNAPSHOT + ".tmp"):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    def load(self) -> State | None:
        """The saved state (snapshot plus journal), or None when nothing was saved."""
        state: State | None = None
        if self.snapshot_path.exists():
            try:
                state = State.from_json(loads(self.snapshot_path.read_text()))
            except (ValueError, KeyError) as exc:
                raise StateUnreadable(f"{self.snapshot_path} cannot be read: {exc}") from exc
        if self.journal_path.exists():
            for number, line in enumerate(self._journal_lines(), start=1):
                try:
                    entry = loads(line)
                except ValueError:
                    log.warning(
                        "journal line %d of %s is incomplete: ignored (and what follows)", number, self.path
                    )
                    break
                state = state or State()
                state.apply(entry)
        return state

    def _journal_lines(self) -> Iterator[str]:
        with self.journal_path.open(encoding="utf-8") as journal:
            for line in journal:
                if line.endswith("\n"):
                    yield line
                elif line.strip():
                    log.warning("the last journal line of %s was cut short: ignored", self.path)

    def append(self, entry: Mapping[str, Any]) -> int:
        """Append one cut to the journal (flushed and fsynced); the journal's size after it."""
        if self._journal is None:
            self._journal = self.journal_path.open("a", encoding="utf-8")
        self._journal.write(dumps(entry) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        return self._journal.tell()

    def write_snapshot(self, state: State) -> None:
        """Replace the snapshot with ``state`` (atomically) and empty the journal."""
        temporary = self.path / (SNAPSHOT + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(dumps(state.as_json()))
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.snapshot_path)
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        with self.journal_path.open("w", encoding="utf-8") as journal:
            os.fsync(journal.fileno())
        _fsync_directory(self.path)


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# ---------------------------------------------------------------------- restore


def _dynamodb(region: str) -> DynamoDBBackend:
    return dynamodb_backends[ACCOUNT_ID][region]


def _decode_item(table: Table, attrs: Mapping[str, Any]) -> Item:
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return Item(hash_value, range_value, dict(attrs))


def _create_table(backend: DynamoDBBackend, name: str, definition: Mapping[str, Any]) -> Table:
    streams = definition.get("streams") or None
    table = backend.create_table(
        name,
        schema=definition["schema"],
        throughput=None,
        attr=definition["attr"],
        global_indexes=definition.get("global_indexes") or None,
        indexes=definition.get("indexes") or None,
        streams=streams if streams and streams.get("StreamEnabled") else None,
        billing_mode=definition.get("billing_mode") or "PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    if definition.get("ttl"):
        table.ttl = dict(definition["ttl"])
    return table


def _restore_stream(table: Table, saved: SavedTable) -> None:
    shard = table.stream_shard
    if shard is None:
        return
    sequences = sorted(saved.records)
    records = []
    for sequence in sequences:
        record = object.__new__(StreamRecord)
        record.record = saved.records[sequence]
        records.append(record)
    if sequences and sequences != list(range(sequences[0], sequences[0] + len(sequences))):
        log.warning(
            "stream of %s: saved records are not contiguous; renumbering from %d", table.name, sequences[0]
        )
    if sequences:
        shard.starting_sequence_number = sequences[0]
    elif saved.next_sequence is not None:
        shard.starting_sequence_number = saved.next_sequence
    shard.items = records


def restore(state: State, region: str) -> dict[str, int]:
    """Put ``state`` into this process's moto backends; items restored per table."""
    backend = _dynamodb(region)
    restored: dict[str, int] = {}
    for name, saved in state.tables.items():
        table = backend.tables.get(name) or _create_table(backend, name, saved.definition)
        table.items.clear()
        for attrs in saved.items.values():
            item = _decode_item(table, attrs)
            if table.range_key_attr:
                table.items[item.hash_key][item.range_key] = item
            else:
                table.items[item.hash_key] = item  # type: ignore[assignment]  # moto's annotation is too narrow
        queries.forget(table)
        _restore_stream(table, saved)
        restored[name] = len(saved.items)
    if state.ssm:
        parameters = ssm_backends[ACCOUNT_ID][region]._parameters
        for name, versions in _unpickled(state.ssm).items():
            parameters[name] = versions
    if state.secrets:
        store = secretsmanager_backends[ACCOUNT_ID][region].secrets
        for secret in _unpickled(state.secrets):
            dict.__setitem__(store, secret.name, secret)
    return restored


# ---------------------------------------------------------------------- the persister


@dataclass
class Sources:
    """What the persister reads besides moto: the pump's positions and dead letters, the scheduler's runs."""

    positions: Callable[[], dict[str, str]] = dict
    acknowledged: Callable[[], dict[str, int | None]] = dict
    dead_letters: Callable[[], list[dict[str, Any]]] = list
    scheduler: Callable[[], dict[str, float]] = dict


class Persister:
    """Journals consistent cuts of the local state every ``interval`` seconds (see the module doc)."""

    def __init__(
        self,
        directory: StateDirectory,
        region: str,
        lock: Any,
        state: State | None = None,
        *,
        interval: float = 1.0,
        compact_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.region = region
        self.interval = interval
        self.compact_bytes = compact_bytes
        self.sources = Sources()
        self._moto_lock = lock
        self._dirty: dict[str, set[Key]] = {}
        self._tables: dict[str, int] = {}
        self._flushed_sequence: dict[str, int] = {}
        self._fingerprints: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cuts = 0
        if state is not None:
            self._adopt(state)

    # -------------------------------------------------------------- lifecycle

    def _adopt(self, state: State) -> None:
        """After :func:`restore`: what is in moto now is what the state on disk holds."""
        backend = _dynamodb(self.region)
        for name in state.tables:
            table = backend.tables.get(name)
            if table is not None:
                self._tables[name] = id(table)
                self._flushed_sequence[name] = _shard_end(table)
        self._fingerprints = {"ssm": self._ssm_fingerprint(), "secrets": self._secrets_fingerprint()}
        self._last = {
            "positions": state.positions,
            "acknowledged": state.acknowledged,
            "dead_letters": state.dead_letters,
            "scheduler": state.scheduler,
        }

    def start(self) -> None:
        """Listen for item changes and journal a cut every ``interval`` seconds."""
        changes.add_listener(self._changed)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="persister", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A last cut, a compact snapshot, the directory let go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        try:
            self.flush()
            self.compact()
        finally:
            changes.remove_listener(self._changed)
            self.directory.unlock()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                size = self.flush()
                if size > self.compact_bytes:
                    self.compact()
            except Exception:
                log.exception("saving the local state failed")

    # -------------------------------------------------------------- the cut

    def _changed(self, table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        if table.region_name == self.region and table.account_id == ACCOUNT_ID:
            self._dirty.setdefault(table.name, set()).add((hash_value, range_value))

    def flushed_through(self, table: str) -> int | None:
        """The newest stream record of ``table`` already in the journal (trim no further)."""
        return self._flushed_sequence.get(table)

    def flush(self) -> int:
        """Journal one cut if anything changed; the journal's size in bytes (0 when nothing written)."""
        with self._flush_lock:
            # Positions first: everything at or before them had its effects in the tables by the cut.
            outside = {
                "positions": self.sources.positions(),
                "acknowledged": self.sources.acknowledged(),
                "dead_letters": self.sources.dead_letters(),
                "scheduler": self.sources.scheduler(),
            }
            with self._moto_lock:
                entry = self._cut()
            for name, value in outside.items():
                if value != self._last.get(name):
                    entry[name] = value
            if not entry:
                return 0
            entry["saved_at"] = datetime.now(UTC).isoformat()
            size = self.directory.append(entry)
            for name in outside:
                if name in entry:
                    self._last[name] = entry[name]
            self.cuts += 1
            return size

    def _cut(self) -> dict[str, Any]:
        """Under the moto lock: tables created or dropped, changed items, new stream records, config."""
        entry: dict[str, Any] = {}
        backend = _dynamodb(self.region)
        current = dict(backend.tables)
        dropped = [name for name in self._tables if name not in current]
        created: dict[str, Any] = {}
        items: dict[str, list[tuple[str, Any]]] = {}
        for name, table in current.items():
            if self._tables.get(name) != id(table):
                created[name] = table_definition(table)
                self._tables[name] = id(table)
                self._flushed_sequence.pop(name, None)
                items[name] = [
                    (item_key(i.hash_key, i.range_key), encode_item(i)) for i in _every_item(table)
                ]
                self._dirty.pop(name, None)
        for name in dropped:
            del self._tables[name]
            self._flushed_sequence.pop(name, None)
            self._dirty.pop(name, None)
        dirty, self._dirty = self._dirty, {}
        for name, keys in dirty.items():
            holder = current.get(name)
            if holder is None:
                continue
            changed = items.setdefault(name, [])
            for hash_value, range_value in keys:
                item = queries._stored(holder, (hash_value, range_value))
                changed.append((item_key(hash_value, range_value), encode_item(item) if item else None))
        records, next_sequences = self._new_records(current)
        for name, value in (
            ("dropped", dropped),
            ("created", created),
            ("items", {name: changed for name, changed in items.items() if changed}),
            ("records", records),
            ("next", next_sequences),
        ):
            if value:
                entry[name] = value
        for name, fingerprint, dump in (
            ("ssm", self._ssm_fingerprint(), self._ssm_dump),
            ("secrets", self._secrets_fingerprint(), self._secrets_dump),
        ):
            if fingerprint != self._fingerprints.get(name):
                entry[name] = dump()
                self._fingerprints[name] = fingerprint
        return entry

    def _new_records(self, tables: Mapping[str, Table]) -> tuple[dict[str, list[Any]], dict[str, int]]:
        records: dict[str, list[Any]] = {}
        next_sequences: dict[str, int] = {}
        for name, table in tables.items():
            shard = table.stream_shard
            if shard is None:
                continue
            end = _shard_end(table)
            flushed = self._flushed_sequence.get(name, shard.starting_sequence_number - 1)
            if end == flushed:
                continue
            first = max(flushed + 1, shard.starting_sequence_number) - shard.starting_sequence_number
            records[name] = [record.to_json() for record in shard.items[first:]]
            next_sequences[name] = end + 1
            self._flushed_sequence[name] = end
        return records, next_sequences

    def _ssm_fingerprint(self) -> Any:
        parameters = ssm_backends[ACCOUNT_ID][self.region]._parameters
        return tuple(
            (name, len(versions), versions[-1].version, versions[-1].last_modified_date, versions[-1].value)
            for name, versions in sorted(parameters.items())
            if versions and not name.startswith("/aws/")
        )

    def _ssm_dump(self) -> str:
        parameters = ssm_backends[ACCOUNT_ID][self.region]._parameters
        return _pickled(
            {
                name: list(versions)
                for name, versions in parameters.items()
                if versions and not name.startswith("/aws/")
            }
        )

    def _secrets_fingerprint(self) -> Any:
        store = secretsmanager_backends[ACCOUNT_ID][self.region].secrets
        return tuple(
            (
                secret.name,
                tuple(sorted(getattr(secret, "versions", {}))),
                str(getattr(secret, "last_changed_date", "")),
            )
            for secret in dict.values(store)
        )

    def _secrets_dump(self) -> str:
        return _pickled(list(dict.values(secretsmanager_backends[ACCOUNT_ID][self.region].secrets)))

    # -------------------------------------------------------------- compaction

    def compact(self) -> None:
        """Fold the journal into a new snapshot (the files only; moto is not touched)."""
        with self._flush_lock:
            started = time.monotonic()
            state = self.directory.load() or State()
            self.directory.write_snapshot(state)
            log.info("local state compacted in %.2f s", time.monotonic() - started)


def _every_item(table: Table) -> list[Item]:
    return queries._MOTO_ALL_ITEMS(table)


def _shard_end(table: Table) -> int:
    shard = table.stream_shard
    if shard is None:
        return -1
    return shard.starting_sequence_number + len(shard.items) - 1
