"""position_update: orders stream -> recompute the order's group, place TPs, move its state.

Each record only names a group (through its order's ``group_id``): the service re-reads the group and
all its orders and decides from current state, so stale images, out-of-order records and replays are
harmless. A group is refreshed once per batch (``OrderChanges``: the batch's changes are all in the
table by then); every fill is still recorded. A failed record is reported as a batch item failure for
Lambda to retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import EngineContext, engine_context
from engine.app.positions import OrderChanges
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced
from engine.store import order_from_image

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(ctx: EngineContext, changes: OrderChanges, record: DynamoDBRecord) -> None:
    """One order change: its fill (when ``filled`` grew) and its group (new image, else the old one)."""
    data = record.raw_event["dynamodb"]
    new, old = data.get("NewImage"), data.get("OldImage")
    changes.apply(order_from_image(old) if old else None, order_from_image(new) if new else None, ctx.now())


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Partial batch response: failed records are retried by Lambda."""
    ctx = engine_context()
    changes = OrderChanges(ctx)
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(ctx, changes, record),
        processor=processor,
        context=context,
    )
