"""The events AWS hands to our Lambda functions, built locally with the same shapes.

- :func:`api_gateway_event`: an API Gateway REST API proxy event (payload format 1.0).
- :func:`stream_event_record`: a Lambda DynamoDB stream event record from a ``GetRecords`` record.
- :func:`scheduled_event`: an EventBridge scheduled event.

Local convention: a scheduled event may carry ``"detail": {"force": true}`` (``POST /_local/tick``);
``order_sync`` and ``risk_engine`` then run at once, ignoring their configured intervals and
last-run items. EventBridge schedules always send ``"detail": {}``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from engine.local.settings import ACCOUNT_ID

#: The stage name of the local REST API (``requestContext.stage``).
STAGE = "local"
LOCAL_API_ID = "localapi00"


def api_gateway_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    resource: str,
    source_ip: str,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (v1) for one HTTP request.

    ``headers`` keep their order and repeats (``multiValueHeaders``); ``headers`` holds the last value
    of each, as API Gateway does. A body that is not UTF-8 is sent base64-encoded. An empty query
    string gives ``None`` for both query fields and an empty body gives ``body: None``, like AWS.
    """
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    single_query = {name: values[-1] for name, values in multi_query.items()}
    encoded_body, is_base64 = _encode_body(body)
    now = datetime.now(UTC)
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "accountId": ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "protocol": "HTTP/1.1",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": "localhost",
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        },
        "body": encoded_body,
        "isBase64Encoded": is_base64,
    }


def _encode_body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def stream_event_record(record: Mapping[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A Lambda DynamoDB stream event record from one ``dynamodbstreams.get_records`` record.

    Adds ``eventSourceARN`` (moto's records lack it), turns the creation time into epoch seconds and
    binary attribute values into base64 text, as Lambda delivers them.
    """
    data = record["dynamodb"]
    dynamodb: dict[str, Any] = {
        "Keys": _lambda_attributes(data.get("Keys", {})),
        "SequenceNumber": data["SequenceNumber"],
        "SizeBytes": data.get("SizeBytes", 0),
        "StreamViewType": data.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is not None:
        dynamodb["ApproximateCreationDateTime"] = created
    for image in ("NewImage", "OldImage"):
        if image in data:
            dynamodb[image] = _lambda_attributes(data[image])
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def _lambda_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _lambda_value(value) for name, value in attributes.items()}


def _lambda_value(value: Mapping[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(item) for item in inner]}
    if kind == "M":
        return {"M": _lambda_attributes(inner)}
    if kind == "L":
        return {"L": [_lambda_value(item) for item in inner]}
    return {kind: inner}


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The Lambda event for one batch of stream records."""
    return {"Records": records}


def order_group_of(record: Mapping[str, Any]) -> str:
    """The group an orders-stream record belongs to (its image's ``group_id``); the record's keys when the
    image has none. The order executor's fair key in the local stream pump."""
    change = record["dynamodb"]
    image = change.get("NewImage") or change.get("OldImage") or {}
    group = image.get("group_id", {}).get("S")
    return str(group) if group else repr(sorted(change.get("Keys", {}).items()))


def order_is_closing(record: Mapping[str, Any]) -> bool:
    """True for an orders-stream record of an order asked to cancel or of a close order
    (``<group>-close-<n>``, ``<group>-p<n>-close-<m>``): the local stream pump delivers these first."""
    image = record["dynamodb"].get("NewImage") or {}
    if image.get("cancel_requested", {}).get("BOOL"):
        return True
    return "-close-" in str(image.get("id", {}).get("S", ""))


def scheduled_event(rule_name: str, region: str, *, force: bool = False) -> dict[str, Any]:
    """An EventBridge scheduled event; ``force`` sets ``detail.force`` (local tick only)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {"force": True} if force else {},
    }
