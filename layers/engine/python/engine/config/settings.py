"""Environment settings of ``engine.config``: where the documents and secrets live, how long to cache.

Every setting is read at call time (not at import), so a test or the local runtime can change the
environment without re-importing anything.

Resource names (the parameter prefix, the secrets' names) fall back to the local defaults only outside
Lambda; inside Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) an unset variable raises :class:`MissingSetting`,
as ``engine.store.table_name`` does for tables: the local name does not exist in AWS, and a silent
fallback would hide a function the stack did not wire.
"""

from __future__ import annotations

import os

DEFAULT_CONFIG_PREFIX = "/execution-engine/local/"
DEFAULT_MAX_AGE_SECONDS = 30
DEFAULT_WEBHOOK_SECRET_NAME = "execution-engine/local/webhook"
DEFAULT_EXCHANGE_SECRET_PREFIX = "execution-engine/local/exchange/"
DEFAULT_TELEGRAM_SECRET_NAME = "execution-engine/local/telegram"
#: Used when POWERTOOLS_METRICS_NAMESPACE is not set, so a metric is never lost for want of a namespace.
DEFAULT_METRICS_NAMESPACE = "ExecutionEngine"


class MissingSetting(LookupError):
    """Inside Lambda, a resource name's environment variable is unset: the stack did not wire it."""


def resource_name(env: str, local_default: str) -> str:
    """The value of ``env``; unset -> ``local_default`` outside Lambda, :class:`MissingSetting` inside."""
    value = os.getenv(env)
    if value:
        return value
    function = os.getenv("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        raise MissingSetting(
            f"{env} is not set in Lambda function {function!r}: the stack does not give this function "
            "the resource it names (infra/functions.py function_environment)"
        )
    return local_default


def config_prefix(prefix: str | None = None) -> str:
    """SSM prefix of the documents (env CONFIG_PREFIX), normalised to ``/a/b/`` (leading and trailing /)."""
    raw = prefix if prefix is not None else resource_name("CONFIG_PREFIX", DEFAULT_CONFIG_PREFIX)
    return "/" + raw.strip().strip("/") + "/"


def max_age_seconds() -> int:
    """Cache age of documents and secrets (env CONFIG_MAX_AGE_SECONDS, default 30; 0 = no cache).

    A value that is not a non-negative integer falls back to the default rather than breaking every read.
    """
    raw = os.getenv("CONFIG_MAX_AGE_SECONDS", "")
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_MAX_AGE_SECONDS
    return value if value >= 0 else DEFAULT_MAX_AGE_SECONDS


def webhook_secret_name() -> str:
    """Secrets Manager name of the shared webhook secret (env WEBHOOK_SECRET_NAME)."""
    return resource_name("WEBHOOK_SECRET_NAME", DEFAULT_WEBHOOK_SECRET_NAME)


def telegram_secret_name() -> str:
    """Secrets Manager name of the Telegram bot token (env TELEGRAM_SECRET_NAME)."""
    return resource_name("TELEGRAM_SECRET_NAME", DEFAULT_TELEGRAM_SECRET_NAME)


def exchange_secret_prefix() -> str:
    """Prefix of the exchange API-key secrets (env EXCHANGE_SECRET_PREFIX), name appended as is."""
    return resource_name("EXCHANGE_SECRET_PREFIX", DEFAULT_EXCHANGE_SECRET_PREFIX)


def metrics_namespace() -> str:
    """CloudWatch namespace of the metrics emitted here (env POWERTOOLS_METRICS_NAMESPACE)."""
    return os.getenv("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE
