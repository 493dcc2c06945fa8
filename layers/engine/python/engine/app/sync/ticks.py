"""The loop's tick sender in AWS: an SQS message with ``DelaySeconds`` (env ``SYNC_LOOP_QUEUE_URL``).

Without the variable (the local runtime, tests) there is no queue and no loop: the local scheduler
asks order_sync for a pass every second instead. boto3 is imported on first use only.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from engine.app.sync.loop import LoopTick, TickSender

__all__ = ["QUEUE_URL_VARIABLE", "SqsTickSender", "queue_sender"]

QUEUE_URL_VARIABLE = "SYNC_LOOP_QUEUE_URL"


class SqsTickSender:
    """Sends ticks to one SQS queue, delayed (0-900 s, whole seconds)."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        """The SQS client (created on first use)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    def send(self, tick: LoopTick, delay_seconds: int) -> None:
        """See :class:`engine.app.sync.loop.TickSender`."""
        self.client.send_message(
            QueueUrl=self.queue_url, MessageBody=tick.to_body(), DelaySeconds=max(0, min(delay_seconds, 900))
        )


@cache
def _sender_for(queue_url: str) -> SqsTickSender:
    return SqsTickSender(queue_url)


def queue_sender() -> TickSender | None:
    """The process's tick sender (one client per queue URL), or None without ``SYNC_LOOP_QUEUE_URL``."""
    url = (os.getenv(QUEUE_URL_VARIABLE) or "").strip()
    return _sender_for(url) if url else None
