"""DynamoDB stream -> Lambda mappings: partial batch responses, finite retries, bounded record age,
bisect on error, and an SQS on-failure destination per consumer (alarmed in monitoring).

A record that exhausts its retries or its age is not lost: its stream coordinates go to the consumer's
failure queue (kept 14 days) and the DLQ alarm fires. `order_sync` reconciles orders and groups with
the exchange every minute, so a skipped record delays, never corrupts, the engine's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.functions import ORDER_EXECUTOR_BATCH_SIZE, Functions
from infra.nag import acknowledge
from infra.settings import StackSettings
from infra.storage import Storage

RETRY_ATTEMPTS = 10
MAX_RECORD_AGE = Duration.hours(1)
FAILURE_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class StreamConsumer:
    table: str
    function: str
    batch_size: int


# order_executor talks to the exchange: its batch size is sized against its timeout in
# infra/functions.py (ORDER_EXECUTOR_BATCH_SIZE, with the arithmetic).
STREAM_CONSUMERS: tuple[StreamConsumer, ...] = (
    StreamConsumer("orders", "order_executor", batch_size=ORDER_EXECUTOR_BATCH_SIZE),
    StreamConsumer("orders", "position_update", batch_size=10),
    StreamConsumer("groups", "slot_release", batch_size=10),
    # The notifier tells the trader what happened; a slow Telegram delays only its own records.
    StreamConsumer("events", "notifier", batch_size=10),
)


class StreamEventSources(Construct):
    """The stream mappings and their failure queues."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        storage: Storage,
        functions: Functions,
    ) -> None:
        super().__init__(scope, construct_id)
        self.failure_queues: dict[str, sqs.Queue] = {}
        for consumer in STREAM_CONSUMERS:
            queue = sqs.Queue(
                self,
                f"{consumer.function}-failures",
                queue_name=settings.failure_queue_name(consumer.function),
                retention_period=FAILURE_RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            acknowledge(
                queue,
                "SQS3",
                "This queue is itself the dead-letter destination of a stream mapping; it is alarmed, "
                "not consumed, so it needs no DLQ of its own.",
            )
            function: lambda_.Function = functions.functions[consumer.function]
            function.add_event_source(
                sources.DynamoEventSource(
                    storage.tables[consumer.table],
                    starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                    batch_size=consumer.batch_size,
                    bisect_batch_on_error=True,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_record_age=MAX_RECORD_AGE,
                    parallelization_factor=1,
                    report_batch_item_failures=True,
                    on_failure=sources.SqsDlq(queue),
                )
            )
            self.failure_queues[consumer.function] = queue
            acknowledge(
                functions.roles[consumer.function],
                "IAM5",
                "dynamodb:ListStreams has no resource-level permissions and returns only stream ARNs; "
                "the stream data actions are scoped to this table's stream ARN.",
                applies_to=["Resource::*"],
                children=True,
            )
