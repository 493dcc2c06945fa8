"""notifier: events table stream -> one short message per configured event (SNS, Telegram; DESIGN §3.11).

Only new events (INSERT records) are told; the ``notify`` document is read once per invocation. A
record whose delivery failed is reported as a batch item failure for Lambda to retry (sent-records keep
the channels that succeeded from sending twice); after the retries it goes to the on-failure queue.
Notification failures never reach trading: this function only reads events and writes its own records.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import EngineContext, engine_context
from engine.app.notify import Channel, channels_for, notify_event
from engine.config import load_notify
from engine.config.settings import metrics_namespace
from engine.domain.config import NotifyConfig
from engine.store import event_from_image

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(
    ctx: EngineContext, settings: NotifyConfig, channels: list[Channel], record: DynamoDBRecord
) -> None:
    """Tell of the new event in one stream record (other record kinds are ignored)."""
    data = record.raw_event["dynamodb"]
    if record.raw_event.get("eventName") != "INSERT" or not data.get("NewImage"):
        return
    notify_event(ctx, event_from_image(data["NewImage"]), settings, channels)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Partial batch response: failed records are retried by Lambda."""
    ctx = engine_context()
    settings = load_notify().config
    channels = channels_for(settings)
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(ctx, settings, channels, record),
        processor=processor,
        context=context,
    )
