"""Notify: the event log's stream becomes short messages on SNS and Telegram (DESIGN §3.11)."""

from engine.app.notify.channels import (
    Channel,
    DeliveryFailed,
    DeliveryRefused,
    SnsChannel,
    TelegramChannel,
)
from engine.app.notify.messages import message_text, notify_name
from engine.app.notify.run import (
    NOTIFICATIONS_PREFIX,
    Notification,
    channels_for,
    list_notifications,
    notify_event,
)

__all__ = [
    "NOTIFICATIONS_PREFIX",
    "Channel",
    "DeliveryFailed",
    "DeliveryRefused",
    "Notification",
    "SnsChannel",
    "TelegramChannel",
    "channels_for",
    "list_notifications",
    "message_text",
    "notify_event",
    "notify_name",
]
