"""Which items each moto DynamoDB request wrote: one notification per changed item.

moto changes an item in four places: ``Table.put_item`` (new ``Item`` object), ``Table.delete_item``,
``DynamoDBBackend.update_item`` (the stored ``Item`` is changed in place, or created through
``put_item``) and the rollback of a cancelled transaction (:mod:`.transactions` puts the remembered items
back). :func:`install` wraps the first three; the rollback calls :func:`notify` itself. Listeners get
``(table, hash value, range value)`` after the change, under the same request (so under the serialised
server's lock): the query index (:mod:`.queries`) and the local runtime's journal
(``engine.local.aws.persistence``) use them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

log = logging.getLogger("engine.local.aws")

Listener = Callable[[Table, DynamoType, DynamoType | None], None]

_MOTO_PUT = Table.put_item
_MOTO_DELETE = Table.delete_item
_MOTO_UPDATE = DynamoDBBackend.update_item
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call ``listener`` after every item change (once even if added twice)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener``."""
    if listener in _listeners:
        _listeners.remove(listener)


def notify(table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
    """Tell every listener that the item at this key changed (it may be gone now)."""
    for listener in list(_listeners):
        listener(table, hash_value, range_value)


def put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    """moto's ``Table.put_item``, then :func:`notify`."""
    item = _MOTO_PUT(self, *args, **kwargs)
    notify(self, item.hash_key, item.range_key)
    return item


def delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    """moto's ``Table.delete_item``, then :func:`notify` when an item was removed."""
    item = _MOTO_DELETE(self, hash_key, range_key)
    if item is not None:
        notify(self, hash_key, range_key)
    return item


def update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    """moto's ``DynamoDBBackend.update_item``, then :func:`notify` (also when it failed half-way: moto
    changes the stored item in place)."""
    try:
        return _MOTO_UPDATE(self, table_name, key, *args, **kwargs)
    finally:
        try:
            table = self.get_table(table_name)
            hash_value, range_value = self.get_keys_value(table, key)
        except Exception:  # an invalid request: moto raised before touching anything
            log.debug("update_item on %s with an unusable key", table_name)
        else:
            notify(table, hash_value, range_value)


def install() -> None:
    """Wrap moto's item writes (idempotent)."""
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """moto's own writes back."""
    Table.put_item = _MOTO_PUT  # type: ignore[method-assign]
    Table.delete_item = _MOTO_DELETE  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _MOTO_UPDATE  # type: ignore[method-assign]
