"""moto's DynamoDB streams without a record kept forever: trimming, and a cheap look at a shard's end.

moto keeps every stream record of a table in one list (``StreamShard.items``) for the life of the
process, each with the item's old and new image: the local runtime's memory grew with every write. Real
DynamoDB drops records after 24 hours. :func:`trim` drops the records every consumer has acknowledged
(the local runtime knows its consumers' positions: the stream pump's), keeping sequence numbers as they
are: moto numbers a record ``starting_sequence_number + len(items)``, so the start moves up by the number
of records dropped.

:func:`last_sequence` reads where a shard ends without a request: the pump asks it before fetching, so
an idle stream costs no ``GetShardIterator``/``GetRecords`` round trips.

Both read moto's backend in this process (the local runtime's own server); :func:`trim` must run under
the serialised server's lock.
"""

from __future__ import annotations

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import StreamShard, Table

from engine.local.settings import ACCOUNT_ID


def table_of(name: str, region: str) -> Table | None:
    """moto's table ``name`` in ``region`` (this process's backend), or None."""
    backend = dynamodb_backends[ACCOUNT_ID][region]
    return backend.tables.get(name)


def shard_of(name: str, region: str) -> StreamShard | None:
    """The stream shard of table ``name``, or None (no such table, no stream)."""
    table = table_of(name, region)
    return table.stream_shard if table is not None else None


def last_sequence(name: str, region: str) -> int | None:
    """Sequence number of the newest record of the table's stream, or None when it holds none."""
    shard = shard_of(name, region)
    if shard is None:
        return None
    count = len(shard.items)
    return shard.starting_sequence_number + count - 1 if count else None


def has_records_after(name: str, region: str, sequence: str | None) -> bool:
    """True when the table's stream may hold a record after ``sequence`` (any record when None).

    Unknown tables answer True: the caller then asks the API and gets its error.
    """
    shard = shard_of(name, region)
    if shard is None:
        return True
    last = last_sequence(name, region)
    if last is None:
        return False
    return sequence is None or int(sequence) < last


def trim(name: str, region: str, through: int) -> int:
    """Drop the records of the table's stream up to sequence ``through`` (inclusive); how many went."""
    shard = shard_of(name, region)
    if shard is None:
        return 0
    count = min(len(shard.items), through - shard.starting_sequence_number + 1)
    if count <= 0:
        return 0
    del shard.items[:count]
    shard.starting_sequence_number += count
    return count
