"""moto's DynamoDB read answers at the cost of a ``json.dumps``.

moto 5.2 turns every answer into JSON with a serializer driven by the botocore service model: it walks
the shape of each attribute value of each item. A ``Query`` returning a few dozen engine items spends
~70 ms there (a ``GetItem`` ~16 ms, a streams ``GetRecords`` ~40 ms): most of the wall time of the
integration tests and of ``make run`` under load went to formatting answers, not to DynamoDB's rules.

The results of the read operations below are already plain dictionaries in DynamoDB's JSON form (moto
builds them from its items); the only values JSON cannot carry are bytes (binary attributes, sent
base64-encoded) and datetimes (streams' ``ApproximateCreationDateTime``, sent as epoch seconds).
:func:`install` answers those operations with ``json.dumps`` and leaves every other operation, and
every error, to moto's serializer. ``tests/integration/test_moto_reads.py`` checks that both produce
the same answer.
"""

from __future__ import annotations

import base64
import calendar
import json
from collections.abc import Callable
from datetime import datetime
from email.utils import formatdate
from typing import Any

from moto.core.responses import ActionResult, BaseResponse

_MOTO_SERIALIZED: Callable[[BaseResponse, ActionResult], Any] = BaseResponse.serialized
#: (service, operation) answered directly: reads whose results are plain DynamoDB JSON.
FAST_READS = frozenset(
    {
        ("dynamodb", "GetItem"),
        ("dynamodb", "Query"),
        ("dynamodb", "Scan"),
        ("dynamodb", "BatchGetItem"),
        ("dynamodbstreams", "GetRecords"),
    }
)


def _json_value(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):  # epoch seconds truncated to the millisecond, as moto sends them
        seconds = calendar.timegm(value.utctimetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialized(self: BaseResponse, action_result: ActionResult) -> Any:
    """moto's ``BaseResponse.serialized`` with a ``json.dumps`` path for :data:`FAST_READS`."""
    result = action_result.result
    if (self.boto3_service_name, self._get_action()) not in FAST_READS or not isinstance(result, dict):
        return _MOTO_SERIALIZED(self, action_result)
    body = json.dumps(result, default=_json_value)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "server": "amazon.com",
        "date": formatdate(usegmt=True),
    }
    headers.update(self.response_headers)
    return 200, headers, body


def install() -> None:
    """Answer :data:`FAST_READS` with ``json.dumps`` (idempotent)."""
    BaseResponse.serialized = serialized  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Put moto's own serializer back (for tests that compare the two)."""
    BaseResponse.serialized = _MOTO_SERIALIZED  # type: ignore[method-assign,assignment]
