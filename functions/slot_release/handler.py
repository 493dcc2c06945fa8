"""slot_release: groups stream -> on a transition to closed/failed free the slot or hand it over.

Each record's old and new images say which transition happened; the service re-reads current state
before acting (pool slot, queue), so replays free nothing twice. A failed record is reported as a
batch item failure for Lambda to retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import EngineContext, engine_context
from engine.app.pool import on_group_change
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced
from engine.store import group_from_image

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(ctx: EngineContext, record: DynamoDBRecord) -> None:
    """Act on the group transition in one stream record."""
    data = record.raw_event["dynamodb"]
    old = group_from_image(data["OldImage"]) if data.get("OldImage") else None
    new = group_from_image(data["NewImage"]) if data.get("NewImage") else None
    on_group_change(ctx, old, new, ctx.now())


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
