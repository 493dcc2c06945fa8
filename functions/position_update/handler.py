"""position_update: orders stream -> recompute the order's group, place TPs, move its state.

Each record only names a group (through its order's ``group_id``): the service re-reads the group and
all its orders and decides from current state, so stale images, out-of-order records and replays are
harmless. Records are not de-duplicated within a batch: each one succeeds or fails on its own, and a
failed one is reported as a batch item failure for Lambda to retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import EngineContext, engine_context
from engine.app.positions import record_fill, refresh_group
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced
from engine.store import order_from_image

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(ctx: EngineContext, record: DynamoDBRecord) -> None:
    """Record a fill in the event log (when ``filled`` grew), then refresh the group of the order in one
    stream record (new image, else the old one)."""
    data = record.raw_event["dynamodb"]
    image = data.get("NewImage") or data.get("OldImage")
    if not image:
        return
    order = order_from_image(image)
    if data.get("NewImage"):
        old = order_from_image(data["OldImage"]) if data.get("OldImage") else None
        record_fill(ctx, old, order, ctx.now())
    refresh_group(ctx, order.group_id, ctx.now())


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Partial batch response: failed records are retried by Lambda."""
    ctx = engine_context()
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(ctx, record),
        processor=processor,
        context=context,
    )
