"""Live configuration and secrets: the only SSM Parameter Store / Secrets Manager code (DESIGN §4).

Documents are read through Powertools parameters (cache env CONFIG_MAX_AGE_SECONDS, default 30 s; prefix
env CONFIG_PREFIX, default ``/execution-engine/local/``), validated with ``engine.domain.config`` and
returned with the SSM version actually used. Bad configuration never raises: see ``documents``.
"""

from engine.config.documents import (
    DEFAULT_DCA_DOCUMENT,
    ConfigUnavailable,
    DcaSelection,
    NotifySelection,
    load_config,
    load_dca,
    load_notify,
)
from engine.config.providers import clear_cache
from engine.config.reporting import CONFIG_INVALID_METRIC
from engine.config.secrets import (
    SecretError,
    exchange_credentials,
    exchange_secret_name,
    get_json_secret,
    get_secret,
    secret_namespace_problem,
    telegram_token,
    webhook_secret,
)
from engine.config.seed import seed_defaults, seed_webhook_secret

__all__ = [
    "CONFIG_INVALID_METRIC",
    "DEFAULT_DCA_DOCUMENT",
    "ConfigUnavailable",
    "DcaSelection",
    "NotifySelection",
    "SecretError",
    "clear_cache",
    "exchange_credentials",
    "exchange_secret_name",
    "get_json_secret",
    "get_secret",
    "load_config",
    "load_dca",
    "load_notify",
    "secret_namespace_problem",
    "seed_defaults",
    "seed_webhook_secret",
    "telegram_token",
    "webhook_secret",
]
