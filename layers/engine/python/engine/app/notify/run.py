"""The notifier (DESIGN §3.11): one message per configured event, at least once, never twice per channel.

For each new event of the log (the events table's stream, INSERT records only):

1. its ``notify`` name (``engine.app.notify.messages``) must be listed in the ``notify`` document;
2. for each configured channel without a sent-record (a marker ``notify/<event id>/<channel>`` in the
   state table), the message is sent and then the sent-record written — a crash in between sends it
   again on the retry (at least once), a replayed record finds the sent-record and sends nothing;
3. the message is kept as the state document ``notifications/<event id>`` (``at``, ``event``,
   ``group_id``, ``account``, ``text``, ``channels``): what ``GET /_local/notifications`` lists.

A channel that cannot deliver now raises :class:`DeliveryFailed` after the others were tried: the record
is retried by the stream (then the on-failure queue). A channel that refuses for good is logged and
counted as done. Nothing here touches trading: the notifier only reads events and writes its records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext, Stores
from engine.app.notify.channels import (
    TELEGRAM_TIMEOUT_SECONDS,
    Channel,
    DeliveryFailed,
    DeliveryRefused,
    SnsChannel,
    TelegramChannel,
)
from engine.app.notify.messages import message_text, notify_name
from engine.app.shared.views import iso
from engine.config import SecretError, telegram_token
from engine.domain.config import NotifyConfig
from engine.domain.events import Event

__all__ = [
    "NOTIFICATIONS_PREFIX",
    "Notification",
    "channels_for",
    "list_notifications",
    "notify_event",
]

logger = Logger(child=True)

#: Sent-records outlive the stream's 24 h retention with room to spare.
SENT_TTL = timedelta(days=3)
NOTIFICATIONS_PREFIX = "notifications/"
_sns_clients: dict[tuple[str | None, str | None], Any] = {}


@dataclass(frozen=True)
class Notification:
    """One message: what event it tells of and where it went."""

    at: str | None
    event: str
    text: str
    channels: list[str] = field(default_factory=list)
    group_id: str | None = None
    account: str | None = None
    event_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON shape of ``GET /_local/notifications`` (``group_id``/``account`` only when known)."""
        answer: dict[str, Any] = {"at": self.at, "event": self.event, "text": self.text}
        if self.group_id is not None:
            answer["group_id"] = self.group_id
        if self.account is not None:
            answer["account"] = self.account
        answer["channels"] = list(self.channels)
        answer["event_id"] = self.event_id
        return answer


def _sns_client() -> Any:
    import boto3

    key = (os.getenv("AWS_ENDPOINT_URL_SNS") or os.getenv("AWS_ENDPOINT_URL"), os.getenv("AWS_REGION"))
    client = _sns_clients.get(key)
    if client is None:
        client = _sns_clients[key] = boto3.client("sns")
    return client


def channels_for(settings: NotifyConfig) -> list[Channel]:
    """The channels the ``notify`` document turns on (SNS needs env ``NOTIFY_TOPIC_ARN``; Telegram its
    ``chat_id`` and the bot token secret: a missing one is logged and that channel left out). Env
    ``TELEGRAM_TIMEOUT_SECONDS`` overrides the request timeout (default 5 s)."""
    channels: list[Channel] = []
    topic = os.getenv("NOTIFY_TOPIC_ARN")
    if settings.sns and topic:
        channels.append(SnsChannel(topic, _sns_client()))
    telegram = settings.telegram
    if telegram.enabled:
        if not telegram.chat_id:
            logger.error("notify.telegram.enabled without a chat_id: telegram is skipped")
        else:
            try:
                timeout = float(os.getenv("TELEGRAM_TIMEOUT_SECONDS") or TELEGRAM_TIMEOUT_SECONDS)
                channels.append(
                    TelegramChannel(token=telegram_token(), chat_id=telegram.chat_id, timeout=timeout)
                )
            except SecretError as exc:
                logger.error("telegram bot token unavailable: telegram is skipped", error=str(exc))
    return channels


def _marker(event: Event, channel: Channel) -> str:
    return f"notify/{event.id}/{channel.name}"


def _deliver(stores: Stores, event: Event, text: str, channel: Channel, now: datetime) -> str | None:
    """Send through ``channel`` unless already sent; the channel's name when it is done, else None."""
    marker = _marker(event, channel)
    if stores.state.is_marked(marker, now):
        return channel.name
    try:
        channel.send(text)
    except DeliveryRefused as refused:
        logger.error(
            "notification refused for good", channel=channel.name, event_id=event.id, error=str(refused)
        )
        return None
    stores.state.mark_once(marker, SENT_TTL, now=now)
    return channel.name


def notify_event(
    ctx: EngineContext, event: Event, settings: NotifyConfig, channels: Sequence[Channel]
) -> Notification | None:
    """Tell of ``event`` on every channel (module doc); None when it is not a configured event."""
    name = notify_name(event)
    if name is None or name not in settings.events:
        return None
    now = ctx.now()
    text = message_text(event)
    sent: list[str] = []
    failures: list[str] = []
    for channel in channels:
        try:
            done = _deliver(ctx.stores, event, text, channel, now)
        except DeliveryFailed as failed:
            failures.append(f"{channel.name}: {failed}")
            continue
        if done is not None:
            sent.append(done)
    notification = Notification(
        at=iso(event.at),
        event=name,
        text=text,
        channels=sent,
        group_id=event.group_id,
        account=event.account,
        event_id=event.id,
    )
    ctx.stores.state.put(NOTIFICATIONS_PREFIX + event.id, notification.as_dict())
    if failures:
        raise DeliveryFailed("; ".join(failures))
    return notification


def list_notifications(stores: Stores, limit: int = 200) -> list[dict[str, Any]]:
    """The kept messages, oldest first (at most the newest ``limit``)."""
    documents = [data for _name, data in stores.state.list_documents(NOTIFICATIONS_PREFIX)]
    documents.sort(key=lambda data: (str(data.get("at") or ""), str(data.get("event_id") or "")))
    return documents[-limit:]
