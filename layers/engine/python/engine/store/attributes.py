"""pynamodb attribute types that keep the domain's values exact.

- :class:`DecimalAttribute`: ``Decimal`` stored as a DynamoDB string (pynamodb's ``NumberAttribute``
  returns floats, which would corrupt money and quantities).
- :class:`UTCDateTimeAttribute`: timezone-aware UTC ``datetime`` stored as ISO 8601 with a ``Z`` suffix
  and always six fractional digits, so string order is time order (conditions and GSI ranges rely on it).
- :class:`EnumAttribute`: a ``StrEnum`` stored as its value.
- :class:`DocumentAttribute` / :class:`DocumentListAttribute`: a JSON-like ``dict`` / ``list`` stored as a
  native DynamoDB map / list (readable in the console). Numbers come back as ``int`` when integral and
  ``Decimal`` otherwise; floats are converted through ``repr`` (exact for the float's shortest form) and
  datetimes are stored as UTC ISO strings (they come back as strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pynamodb.attributes import Attribute
from pynamodb.constants import LIST, MAP, NUMBER, STRING

E = TypeVar("E", bound=StrEnum)

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def format_utc(value: datetime) -> str:
    """Render an aware datetime as fixed-width UTC ISO 8601 (``2026-01-02T03:04:05.000000Z``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: the store only accepts timezone-aware times")
    return value.astimezone(UTC).strftime(ISO_FORMAT)


def parse_utc(value: str) -> datetime:
    """Parse a stored UTC timestamp (tolerates any ISO 8601 form with an offset or ``Z``)."""
    try:
        return datetime.strptime(value, ISO_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


class DecimalAttribute(Attribute[Decimal]):
    """An exact ``Decimal`` stored as a string (``str(Decimal)`` round-trips exactly)."""

    attr_type = STRING

    def serialize(self, value: Decimal) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class DecimalNumberAttribute(Attribute[Decimal]):
    """An exact ``Decimal`` stored as a DynamoDB number (so update expressions can ``ADD`` to it)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(f"expected Decimal, got {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class UTCDateTimeAttribute(Attribute[datetime]):
    """A timezone-aware UTC datetime stored as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

    attr_type = STRING

    def serialize(self, value: datetime) -> str:
        return format_utc(value)

    def deserialize(self, value: str) -> datetime:
        return parse_utc(value)


class EnumAttribute(Attribute[E], Generic[E]):
    """A ``StrEnum`` member stored as its string value."""

    attr_type = STRING

    def __init__(self, enum_cls: type[E], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.enum_cls = enum_cls

    def serialize(self, value: E | str) -> str:
        return self.enum_cls(value).value

    def deserialize(self, value: str) -> E:
        return self.enum_cls(value)


def to_dynamo_value(value: object) -> Any:
    """Prepare a JSON-like value for boto3's ``TypeSerializer``.

    Floats become Decimal (via ``repr``), tuples lists, aware datetimes UTC ISO strings.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, Mapping):
        return {str(k): to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo_value(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in a document attribute")


def from_dynamo_value(value: Any) -> Any:
    """Undo :func:`to_dynamo_value`: integral numbers become ``int``, others stay ``Decimal``."""
    if isinstance(value, Decimal):
        if value.is_finite() and value.as_tuple().exponent == 0:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo_value(v) for v in value]
    return value


class DocumentAttribute(Attribute[dict[str, Any]]):
    """A JSON-like ``dict`` stored as a native DynamoDB map."""

    attr_type = MAP

    def serialize(self, value: Mapping[str, Any]) -> dict[str, Any]:
        serialized: dict[str, Any] = _serializer.serialize(to_dynamo_value(value))[MAP]
        return serialized

    def deserialize(self, value: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = from_dynamo_value(_deserializer.deserialize({MAP: value}))
        return result


class DocumentListAttribute(Attribute[list[Any]]):
    """A JSON-like ``list`` stored as a native DynamoDB list."""

    attr_type = LIST

    def serialize(self, value: list[Any]) -> list[Any]:
        serialized: list[Any] = _serializer.serialize(to_dynamo_value(value))[LIST]
        return serialized

    def deserialize(self, value: list[Any]) -> list[Any]:
        result: list[Any] = from_dynamo_value(_deserializer.deserialize({LIST: value}))
        return result
