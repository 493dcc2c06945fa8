"""moto's DynamoDB ``Query`` at the cost of real DynamoDB: the items of one partition, not the table.

moto 5.2's ``Table.query`` walks every item of the table (``all_items()``) to find the ones whose hash
key matches, on the table and on an index alike, then sorts, pages and filters what it found. An engine
query such as "the orders of this group" or "the open groups" then costs more with every order or group
ever written: the local runtime slowed down with its history. Real DynamoDB reads one partition.

:func:`install` keeps moto's query (conditions, sort order, paging, projections, filters: all moto's
code) and hands it only the candidate items: for a table query the items under the hash key, for a
local index the same, for a global index the items whose index hash attributes equal the query's (an
index kept per table and global index, updated on every item change through :mod:`.changes`, built on
the first query). ``tests/integration/test_moto_queries.py`` checks that both answer the same.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from engine.local.aws import changes

_MOTO_QUERY = Table.query
_MOTO_ALL_ITEMS = Table.all_items
_QUERY_SIGNATURE = inspect.signature(_MOTO_QUERY)

Key = tuple[DynamoType, DynamoType | None]
Values = tuple[DynamoType, ...]


class _GlobalIndexes:
    """For each global index of one table: index hash values -> primary keys of the items holding them."""

    def __init__(self, table: Table) -> None:
        self.signature = _signature(table)
        self.hash_attrs = {name: attrs for name, attrs in self.signature}
        self.keys: dict[str, dict[Values, set[Key]]] = {name: {} for name in self.hash_attrs}
        self.values: dict[Key, dict[str, Values]] = {}
        for item in _MOTO_ALL_ITEMS(table):
            if isinstance(item, Item):
                self._add((item.hash_key, item.range_key), item)

    def _add(self, key: Key, item: Item) -> None:
        held: dict[str, Values] = {}
        for name, attrs in self.hash_attrs.items():
            values = tuple(item.attrs.get(attr) for attr in attrs)
            if all(value is not None for value in values):
                held[name] = values  # type: ignore[assignment]
                self.keys[name].setdefault(values, set()).add(key)  # type: ignore[arg-type]
        if held:
            self.values[key] = held

    def changed(self, table: Table, key: Key) -> None:
        for name, values in self.values.pop(key, {}).items():
            bucket = self.keys[name].get(values)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self.keys[name][values]
        item = _stored(table, key)
        if item is not None:
            self._add(key, item)

    def candidates(self, table: Table, name: str, values: Values) -> list[Item]:
        found = []
        for key in self.keys[name].get(values, ()):
            item = _stored(table, key)
            if item is not None:
                found.append(item)
        return found


_indexes: weakref.WeakKeyDictionary[Table, _GlobalIndexes] = weakref.WeakKeyDictionary()
_scope = threading.local()


def _signature(table: Table) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (index.name, tuple(key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"))
        for index in table.global_indexes or []
    )


def _stored(table: Table, key: Key) -> Item | None:
    hash_value, range_value = key
    if table.range_key_attr is None:
        return table.items.get(hash_value)  # type: ignore[return-value]
    partition = table.items.get(hash_value)
    return partition.get(range_value) if partition is not None else None  # type: ignore[arg-type]


def _global_indexes(table: Table) -> _GlobalIndexes:
    indexes = _indexes.get(table)
    if indexes is None or indexes.signature != _signature(table):
        indexes = _indexes[table] = _GlobalIndexes(table)
    return indexes


def _on_change(table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
    indexes = _indexes.get(table)
    if indexes is not None:
        indexes.changed(table, (hash_value, range_value))


def forget(table: Table) -> None:
    """Drop the index of ``table`` (its items were replaced without :mod:`.changes` seeing it)."""
    _indexes.pop(table, None)


def _partition(table: Table, hash_value: DynamoType | None) -> list[Item] | None:
    if hash_value is None:
        return None
    stored = table.items.get(hash_value)
    if stored is None:
        return []
    if table.range_key_attr is None:
        return [stored]  # type: ignore[list-item]
    return list(stored.values())  # type: ignore[union-attr]


def _candidates(table: Table, arguments: dict[str, Any]) -> list[Item] | None:
    """The items moto's query may return, or None when moto should look at every item."""
    index_name = arguments.get("index_name")
    if not index_name:
        return _partition(table, arguments.get("hash_key"))
    if index_name in {index.name for index in table.indexes or []}:
        return _partition(table, arguments.get("hash_key"))
    indexes = _global_indexes(table)
    attrs = indexes.hash_attrs.get(index_name)
    conditions = dict(arguments.get("hash_key_conditions") or [])
    if attrs is None or not attrs or any(attr not in conditions for attr in attrs):
        return None
    return indexes.candidates(table, index_name, tuple(conditions[attr] for attr in attrs))


def all_items(self: Table) -> list[Item]:
    """moto's ``Table.all_items``, or the query's candidates while :func:`query` runs on this thread."""
    scoped: dict[int, list[Item]] | None = getattr(_scope, "items", None)
    if scoped is not None and id(self) in scoped:
        return list(scoped[id(self)])
    return _MOTO_ALL_ITEMS(self)


def query(self: Table, *args: Any, **kwargs: Any) -> Any:
    """moto's ``Table.query`` over the candidate items only."""
    bound = _QUERY_SIGNATURE.bind(self, *args, **kwargs)
    candidates = _candidates(self, bound.arguments)
    if candidates is None:
        return _MOTO_QUERY(self, *args, **kwargs)
    previous: dict[int, list[Item]] | None = getattr(_scope, "items", None)
    _scope.items = {**(previous or {}), id(self): candidates}
    try:
        return _MOTO_QUERY(self, *args, **kwargs)
    finally:
        _scope.items = previous


def index_sizes(tables: Iterable[Table]) -> dict[str, int]:
    """Primary keys held by the global-index map of each table (tests, diagnostics)."""
    return {table.name: len(_indexes[table].values) for table in tables if table in _indexes}


def install() -> None:
    """Partition-sized queries (idempotent)."""
    changes.install()
    changes.add_listener(_on_change)
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def uninstall() -> None:
    """moto's own query back (the change notifications stay)."""
    changes.remove_listener(_on_change)
    Table.query = _MOTO_QUERY  # type: ignore[method-assign]
    Table.all_items = _MOTO_ALL_ITEMS  # type: ignore[method-assign]
    _indexes.clear()
