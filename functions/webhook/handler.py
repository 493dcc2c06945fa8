"""webhook Lambda: TradingView alerts via API Gateway (REST proxy) -> ``engine.api.webhook``.

Thin on purpose: the raw body (base64 decoded when API Gateway encoded it) and the headers go to
``handle_webhook``; its reply becomes the HTTP answer. Never imports ccxt (TradingView waits 3 s).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.api.webhook import WebhookReply, handle_webhook
from engine.app.context import engine_context
from engine.config.reporting import emit_dimensioned_metric
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced
from engine.metric_names import RESULT_DIMENSION, WEBHOOK_SIGNALS

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())
app = APIGatewayRestResolver()


def _raw_body(body: str | None, is_base64: bool) -> str | bytes:
    """The request body as sent: base64-decoded when API Gateway encoded it (bytes if not UTF-8)."""
    if not body:
        return ""
    if not is_base64:
        return body
    try:
        decoded = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return body  # not valid base64: parsed as is (and refused as malformed)
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        return decoded


def _count(reply: WebhookReply) -> None:
    """One ``WebhookSignals`` metric per request, dimension ``Result`` = outcome (202) or error code.

    ``single_metric`` prints its own EMF line: safe when the local runtime calls handlers concurrently.
    """
    result = str(reply.body.get("outcome") if reply.status == 202 else reply.body.get("error", reply.status))
    emit_dimensioned_metric(WEBHOOK_SIGNALS, 1, RESULT_DIMENSION, result)


@app.post("/webhook")
def webhook() -> Response[str]:
    event = app.current_event
    body = _raw_body(event.body, bool(event.is_base64_encoded))
    reply = handle_webhook(engine_context(), body, event.headers, lambda_context=app.lambda_context)
    _count(reply)
    return Response(
        status_code=reply.status, content_type=content_types.APPLICATION_JSON, body=json.dumps(reply.body)
    )


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
