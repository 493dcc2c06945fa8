"""Secrets Manager reads (webhook secret, exchange API keys) through Powertools' secrets provider.

Cached like the documents (env CONFIG_MAX_AGE_SECONDS), so a rotated secret is picked up within that age.
Unlike configuration documents, a missing or malformed secret raises :class:`SecretError`: there is no
safe default for a key, and the caller (webhook: reject the request; exchange: fail the order) decides.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from engine.config.providers import secrets_provider
from engine.config.settings import (
    exchange_secret_prefix,
    max_age_seconds,
    telegram_secret_name,
    webhook_secret_name,
)


class SecretError(Exception):
    """A secret that cannot be read or has the wrong shape (the message never contains its value)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"secret {name}: {reason}")


def get_secret(name: str) -> str:
    """The string value of secret ``name`` (binary secrets decoded as UTF-8)."""
    try:
        value = secrets_provider().get(name, max_age=max_age_seconds())
    except GetParameterError as exc:
        raise SecretError(name, f"cannot be read ({exc})") from exc
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SecretError(name, "binary value is not UTF-8 text") from exc
    if not isinstance(value, str):
        raise SecretError(name, f"unexpected value type {type(value).__name__}")
    return value


def get_json_secret(name: str) -> dict[str, str]:
    """Secret ``name`` holding a JSON object of strings (e.g. ``{"apiKey": ..., "secret": ...}``)."""
    try:
        data = json.loads(get_secret(name))
    except ValueError as exc:
        raise SecretError(name, "is not valid JSON") from exc
    if not isinstance(data, dict):
        raise SecretError(name, f"must be a JSON object, got {type(data).__name__}")
    not_text = sorted(str(key) for key, value in data.items() if not isinstance(value, str))
    if not_text:
        raise SecretError(name, f"values must be strings (not: {', '.join(not_text)})")
    return {str(key): value for key, value in data.items()}


def webhook_secret() -> str:
    """The shared secret TradingView alerts must carry (secret named by env WEBHOOK_SECRET_NAME)."""
    return get_secret(webhook_secret_name())


def telegram_token() -> str:
    """The Telegram bot token (secret named by env TELEGRAM_SECRET_NAME): the plain token, or a JSON object
    with a ``token`` (or ``bot_token``) field."""
    name = telegram_secret_name()
    value = get_secret(name).strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise SecretError(name, "is not valid JSON") from exc
        token = data.get("token") or data.get("bot_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise SecretError(name, "JSON secret without a 'token' string")
        return token
    if not value:
        raise SecretError(name, "is empty")
    return value


def secret_namespace_problem(account_name: str, secret_name: str | None) -> str | None:
    """Why ``engine.accounts.<account_name>.secret_name`` cannot be used, or None.

    The functions may read only the stack's own exchange secrets (``<app>/<stage>/exchange/*``, env
    EXCHANGE_SECRET_PREFIX): a name elsewhere would be refused by IAM on every read, forever.
    """
    prefix = exchange_secret_prefix()
    if secret_name is None or secret_name.startswith(prefix):
        return None
    return (
        f"engine.accounts.{account_name}.secret_name {secret_name!r} is outside {prefix}*: "
        "the functions may only read the stack's exchange secrets; the account is not traded"
    )


def exchange_secret_name(account_name: str, secret_name: str | None = None) -> str:
    """The account's own ``secret_name`` if configured, else ``<EXCHANGE_SECRET_PREFIX><account_name>``."""
    return secret_name or f"{exchange_secret_prefix()}{account_name.strip().lower()}"


def exchange_credentials(account_name: str, secret_name: str | None = None) -> dict[str, str]:
    """API credentials of an exchange account (pass ``AccountConfig.secret_name`` as ``secret_name``)."""
    return get_json_secret(exchange_secret_name(account_name, secret_name))
