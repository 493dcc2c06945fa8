"""moto's ``TransactWriteItems`` at the cost of real DynamoDB: an undo log instead of table copies.

moto 5.2's ``transact_write_items`` deep-copies every touched table once per item of the transaction
(stream records included) so it can restore the copy on cancellation: with 20k items in the groups
table one 5-item transaction takes seconds, and a cancelled one swaps the table object. Real
DynamoDB's cost depends on the items written, not on the table.

:func:`install` replaces the method with one that keeps the same rules (at most 100 items, one
operation per item, conditions checked against the state before the operation, cancellation reasons
in item order, nothing written unless everything succeeds) but remembers only the items it touches:
before each operation it copies that one item (or notes its absence) and the length of the table's
stream; on cancellation it puts the copies back, removes items the transaction created and drops the
stream records it added. Used by the ``mock_aws`` test fixtures, the benchmarks and the local runtime.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from engine.local.aws import changes

_MOTO_TRANSACT = DynamoDBBackend.transact_write_items
_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


class _ConditionFailed(ConditionalCheckFailed):
    """The transaction's own condition failed; ``old`` is the item when ALL_OLD was asked for."""

    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__(item=old)
        self.old = old


@dataclass
class _UndoLog:
    """The touched items as they were, and each touched table's stream length, before the transaction."""

    items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = field(default_factory=list)
    streams: dict[int, tuple[Table, int]] = field(default_factory=dict)

    def remember(self, table: Table, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        if id(table) not in self.streams:
            shard = table.stream_shard
            self.streams[id(table)] = (table, len(shard.items) if shard is not None else 0)
        before = table.get_item(hash_value, range_value)
        self.items.append((table, hash_value, range_value, copy.deepcopy(before)))

    def roll_back(self) -> None:
        for table, hash_value, range_value, before in reversed(self.items):
            _restore(table, hash_value, range_value, before)
        for table, length in self.streams.values():
            if table.stream_shard is not None:
                del table.stream_shard.items[length:]


def _restore(table: Table, hash_value: DynamoType, range_value: DynamoType | None, item: Item | None) -> None:
    if range_value is not None:
        if item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
            if hash_value in table.items and not table.items[hash_value]:
                del table.items[hash_value]
        else:
            table.items[hash_value][range_value] = item
    elif item is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = item  # type: ignore[assignment]  # moto's own annotation is too narrow
    changes.notify(table, hash_value, range_value)


def _key(table: Table, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    """Check the operation's condition against the current item, then write it (moto's own calls)."""
    table_name = op["TableName"]
    condition = op.get("ConditionExpression")
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    current = backend.get_item(table_name, key)
    if condition is not None and not get_filter_expression(condition, names, values).expr(current):
        old = None
        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
            old = current.to_json()["Attributes"]
        raise _ConditionFailed(old)
    common: dict[str, Any] = {
        "condition_expression": condition,
        "expression_attribute_names": names,
        "expression_attribute_values": values,
    }
    if op_type == "Put":
        backend.put_item(table_name, op["Item"], **common)
    elif op_type == "Delete":
        backend.delete_item(table_name, key, **common)
    elif op_type == "Update":
        backend.update_item(table_name, key, update_expression=op["UpdateExpression"], **common)


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``transact_write_items`` with an undo log of the touched items (see the module doc)."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _UndoLog()
    targets: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) > 1:
            undo.roll_back()
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        try:
            if op_type not in _OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            key = _key(table, op_type, op)
            target = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if target in targets:
                raise MultipleTransactionsException()
            targets.add(target)
            undo.remember(table, *self.get_keys_value(table, key))
            _apply(self, op_type, op, key)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.roll_back()
            raise
        except ConditionalCheckFailed as failed:
            errors.append(("ConditionalCheckFailed", str(failed.message), getattr(failed, "old", None)))
        except Exception as error:  # moto reports any other failure as that item's cancellation reason
            errors.append((type(error).__name__, str(error), None))
    if any(code is not None for code, _, _ in errors):
        undo.roll_back()
        raise TransactionCanceledException(errors)


def install() -> None:
    """Replace moto's ``transact_write_items`` with the undo-log version (idempotent)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def uninstall() -> None:
    """Put moto's own ``transact_write_items`` back (for tests that compare the two)."""
    DynamoDBBackend.transact_write_items = _MOTO_TRANSACT  # type: ignore[method-assign]
