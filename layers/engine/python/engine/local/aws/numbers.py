"""moto's number arithmetic in update expressions, as exact as DynamoDB's.

moto 5.2 adds and subtracts numbers (``ADD``, ``SET a = a + :d``) by reading each operand with
``int()`` unless its text holds a ``.``, and writes the result with ``str(Decimal)``. A number in
exponent form — which ``str(Decimal)`` itself produces below 1e-6, e.g. ``1E-7`` — therefore fails the
next addition with a ``ValueError`` (a cancelled transaction), where DynamoDB adds it exactly (38
digits). :func:`install` reads both operands as ``Decimal`` and writes the result in plain notation.
"""

from __future__ import annotations

from decimal import Decimal

from moto.dynamodb.exceptions import IncorrectDataType
from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

_MOTO_ADD = DynamoType.__add__
_MOTO_SUB = DynamoType.__sub__


def _plain(value: Decimal) -> str:
    return format(value, "f")


def add(self: DynamoType, other: DynamoType) -> DynamoType:
    """``self + other`` for numbers, exactly (moto's type checks kept)."""
    if self.type != other.type:
        raise TypeError("Different types of operandi is not allowed.")
    if not self.is_number():
        raise IncorrectDataType()
    return DynamoType({DDBType.NUMBER: _plain(Decimal(self.value) + Decimal(other.value))})


def sub(self: DynamoType, other: DynamoType) -> DynamoType:
    """``self - other`` for numbers, exactly (moto's type checks kept)."""
    if self.type != other.type:
        raise TypeError("Different types of operandi is not allowed.")
    if self.type != DDBType.NUMBER:
        raise TypeError("Sum only supported for Numbers.")
    return DynamoType({DDBType.NUMBER: _plain(Decimal(self.value) - Decimal(other.value))})


def install() -> None:
    """Exact number arithmetic in moto's update expressions (idempotent)."""
    DynamoType.__add__ = add  # type: ignore[method-assign,assignment]
    DynamoType.__sub__ = sub  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """moto's own arithmetic back (for tests that show the difference)."""
    DynamoType.__add__ = _MOTO_ADD  # type: ignore[method-assign]
    DynamoType.__sub__ = _MOTO_SUB  # type: ignore[method-assign]
