"""The fast sync loop's tick queue: SQS delay messages that run order_sync's fast pass between minutes.

EventBridge fires once a minute at most; while anything is live, order_sync keeps a chain of ticks
going itself (``engine.app.sync.loop``: one loop per deployment through a lease item in the state
table). Each tick is a message sent with ``DelaySeconds`` = ``engine.sync_interval_seconds`` and
consumed by order_sync (batch 1). Only order_sync may send to it and read it.

- Visibility timeout 6 x order_sync's timeout (AWS's advice for Lambda consumers).
- Retention: a tick older than a few minutes belongs to a lease step long gone (it would stop at once),
  so messages expire after :data:`TICK_RETENTION`.
- A message that keeps failing (a handler crash or timeout; the handler itself never reports an item
  failure) goes to the dead-letter queue after :data:`MAX_RECEIVES` receives; monitoring alarms on it.
  The loop is then restarted by the next minute schedule once the lease expires.
- Maximum concurrency 2 (the smallest SQS event sources allow): one chain runs, a stray duplicate at most
  beside it (and it stops at its lease check).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import StackSettings

QUEUE_URL_VARIABLE = "SYNC_LOOP_QUEUE_URL"  # engine.app.sync.ticks.QUEUE_URL_VARIABLE
VISIBILITY_TIMEOUT_FACTOR = 6
TICK_RETENTION = Duration.minutes(10)
MAX_RECEIVES = 3
DEAD_LETTER_RETENTION = Duration.days(14)
MAX_CONCURRENCY = 2


class SyncLoop(Construct):
    """The tick queue, its dead-letter queue, order_sync's SQS event source and send permission."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, order_sync: lambda_.Function
    ) -> None:
        super().__init__(scope, construct_id)
        timeout = order_sync.timeout.to_seconds() if order_sync.timeout is not None else 3
        self.dead_letter_queue = sqs.Queue(
            self,
            "ticks-dlq",
            queue_name=settings.sync_loop_queue_name(dead_letter=True),
            retention_period=DEAD_LETTER_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.dead_letter_queue,
            "SQS3",
            "This queue is itself the dead-letter queue of the sync loop's tick queue; it is alarmed, "
            "not consumed, so it needs no DLQ of its own.",
        )
        self.queue = sqs.Queue(
            self,
            "ticks",
            queue_name=settings.sync_loop_queue_name(),
            visibility_timeout=Duration.seconds(timeout * VISIBILITY_TIMEOUT_FACTOR),
            retention_period=TICK_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVES, queue=self.dead_letter_queue
            ),
        )
        order_sync.add_event_source(
            sources.SqsEventSource(
                self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=MAX_CONCURRENCY
            )
        )
        self.queue.grant_send_messages(order_sync)
        order_sync.add_environment(QUEUE_URL_VARIABLE, self.queue.queue_url)
