"""order_executor: orders stream -> send pending orders and cancels through the exchange gateway.

Each record only names the order: the service re-reads it and decides from its current state, so
stale images and replays are harmless. A record whose image asks nothing of the executor (a fill, a
resting order, a final state; ``asks_for_action``) is skipped without a read. A record whose send was
deferred (rate limit, network) is reported as a batch item failure and retried by Lambda.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import EngineContext, engine_context
from engine.app.execution import asks_for_action, process_order
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced
from engine.domain.models import OrderStatus
from engine.store import order_from_image

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(ctx: EngineContext, record: DynamoDBRecord) -> None:
    """Process the order named by one stream record (REMOVE records are ignored)."""
    if record.event_name is DynamoDBRecordEventName.REMOVE:
        return
    image = record.raw_event["dynamodb"]["NewImage"]
    order = order_from_image(image)
    metrics.add_metric(name="OrderRecordsProcessed", unit=MetricUnit.Count, value=1)
    if not asks_for_action(order):
        return
    after = process_order(ctx, order.id, ctx.now())
    if after is not None and after.status is not order.status:
        if after.status is OrderStatus.REJECTED:
            metrics.add_metric(name="OrdersRejected", unit=MetricUnit.Count, value=1)
        elif after.status is OrderStatus.UNKNOWN:
            metrics.add_metric(name="OrdersUnknown", unit=MetricUnit.Count, value=1)


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
