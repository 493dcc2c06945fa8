"""Where messages go (DESIGN §3.11): an SNS topic and Telegram's Bot API ``sendMessage``.

- :class:`SnsChannel` publishes to the topic named by env ``NOTIFY_TOPIC_ARN`` (the stack's topic; its
  e-mail subscription is optional). No topic configured -> no SNS channel.
- :class:`TelegramChannel` POSTs ``{"chat_id", "text"}`` to ``<TELEGRAM_API_URL>/bot<token>/sendMessage``
  (default ``https://api.telegram.org``) with the standard library and a short timeout
  (:data:`TELEGRAM_TIMEOUT_SECONDS`). A 429 answer's ``parameters.retry_after`` (or ``Retry-After``) is
  waited out, at most :data:`MAX_RETRY_AFTER_SECONDS`; a timeout, a network error or a 5xx is retried
  after a short pause; :data:`TELEGRAM_ATTEMPTS` tries in all, then :class:`DeliveryFailed` (the stream
  retries the record; the sent-records keep channels that already succeeded from sending again).
  Another 4xx (bad token, unknown chat) is :class:`DeliveryRefused`: final, never retried.

Decision: a request that timed out is treated as not delivered and is sent again (at least once); a
message Telegram received but whose answer was lost can then arrive twice, which the Bot API gives no
way to prevent.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "TELEGRAM_TIMEOUT_SECONDS",
    "Channel",
    "DeliveryFailed",
    "DeliveryRefused",
    "SnsChannel",
    "TelegramChannel",
]

TELEGRAM_API_URL = "https://api.telegram.org"
TELEGRAM_TIMEOUT_SECONDS = 5.0
TELEGRAM_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0
RETRY_PAUSE_SECONDS = 1.0
SNS_SUBJECT = "Execution engine"


class DeliveryFailed(Exception):
    """The channel could not deliver now (worth a retry later)."""


class DeliveryRefused(Exception):
    """The channel refused the message for good (bad token, unknown chat): retrying cannot help."""


class Channel(Protocol):
    """One destination of messages."""

    name: str

    def send(self, text: str) -> None:
        """Deliver ``text``; :class:`DeliveryFailed` (retry later) or :class:`DeliveryRefused` (final)."""
        ...


@dataclass
class SnsChannel:
    """Publish to an SNS topic (``client``: a boto3 SNS client)."""

    topic_arn: str
    client: Any
    name: str = "sns"

    def send(self, text: str) -> None:
        """One ``Publish``; any AWS error is :class:`DeliveryFailed`."""
        try:
            self.client.publish(TopicArn=self.topic_arn, Subject=SNS_SUBJECT, Message=text)
        except Exception as exc:
            raise DeliveryFailed(f"sns publish failed: {type(exc).__name__}: {exc}") from exc


def telegram_api_url() -> str:
    """Base URL of the Bot API (env ``TELEGRAM_API_URL``; tests point it at a fake server)."""
    return (os.getenv("TELEGRAM_API_URL") or TELEGRAM_API_URL).rstrip("/")


def _retry_after(body: bytes, headers: Any) -> float:
    try:
        answer = json.loads(body or b"{}")
        value = answer.get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        value = None
    if value is None and headers is not None:
        value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else RETRY_PAUSE_SECONDS
    except (TypeError, ValueError):
        return RETRY_PAUSE_SECONDS


@dataclass
class TelegramChannel:
    """Telegram Bot API ``sendMessage`` over HTTPS (module doc for the retry rules)."""

    token: str
    chat_id: str
    base_url: str = field(default_factory=telegram_api_url)
    timeout: float = TELEGRAM_TIMEOUT_SECONDS
    attempts: int = TELEGRAM_ATTEMPTS
    sleep: Callable[[float], None] = time.sleep
    name: str = "telegram"

    def _request(self, text: str) -> urllib.request.Request:
        body = json.dumps({"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True})
        return urllib.request.Request(
            f"{self.base_url}/bot{self.token}/sendMessage",
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )

    def send(self, text: str) -> None:
        """Send ``text`` to the chat, honouring 429 ``retry_after``; see the module doc."""
        problem = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            pause = RETRY_PAUSE_SECONDS
            try:
                with urllib.request.urlopen(self._request(text), timeout=self.timeout) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as error:
                body = error.read() or b""
                if error.code == 429:
                    pause = min(_retry_after(body, error.headers), MAX_RETRY_AFTER_SECONDS)
                    problem = f"429 too many requests (retry after {pause:g} s)"
                elif error.code >= 500:
                    problem = f"HTTP {error.code}"
                else:
                    raise DeliveryRefused(f"telegram refused the message: HTTP {error.code}") from error
            except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt < self.attempts:
                self.sleep(pause)
        raise DeliveryFailed(f"telegram: {problem} after {self.attempts} attempts")
