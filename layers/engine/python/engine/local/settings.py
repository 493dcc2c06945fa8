"""Settings of the local runtime and the process environment it gives every AWS client.

The handlers, ``engine.store`` (pynamodb), ``engine.config`` (Powertools parameters) and any boto3
client find moto through ``AWS_ENDPOINT_URL``; table names, the parameter prefix and the secret name
come from the same variables the CDK stack sets on the Lambda functions. Values already present in
the environment win (``setdefault``), except the endpoint and credentials, which must point at the
local moto server.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

ACCOUNT_ID = "123456789012"
APP = "execution-engine"
STAGE = "local"

#: Environment variable -> table suffix (``execution-engine-local-<suffix>``), DESIGN storage layout.
TABLE_VARIABLES: dict[str, str] = {
    "GROUPS_TABLE": "groups",
    "ORDERS_TABLE": "orders",
    "QUEUE_TABLE": "queue",
    "POOL_TABLE": "pool",
    "EVENTS_TABLE": "events",
    "RISK_ACTIONS_TABLE": "risk-actions",
    "EQUITY_TABLE": "equity",
    "MARKETS_TABLE": "markets",
    "PRICES_TABLE": "prices",
    "PAPER_ORDERS_TABLE": "paper-orders",
    "IDEMPOTENCY_TABLE": "idempotency",
    "STATE_TABLE": "state",
}


#: How often the local scheduler asks order_sync for a pass: every second, so the handler's own
#: intervals (the fast pass every ``engine.sync_interval_seconds``, the minute pass once a minute) decide,
#: to within a second, as the minute schedule and the fast loop do in AWS.
LOCAL_SYNC_SECONDS = 1.0


def _positive_float(env: MutableMapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def default_functions_root() -> Path:
    """``<repo>/functions``: this file is ``<repo>/layers/engine/python/engine/local/settings.py``."""
    return Path(__file__).resolve().parents[5] / "functions"


def default_state_dir() -> Path:
    """``<repo>/.local`` (git-ignored): where `make run` keeps its state between runs."""
    return Path(__file__).resolve().parents[5] / ".local"


def _flag(env: MutableMapping[str, str], *names: str) -> bool:
    return any((env.get(name) or "").strip().lower() in ("1", "true", "yes", "on") for name in names)


def _port(env: MutableMapping[str, str]) -> int:
    raw = (env.get("PORT") or "").strip()
    if not raw:
        return 8080
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"PORT must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"PORT must be between 0 and 65535, got {port}")
    return port


@dataclass(frozen=True)
class LocalSettings:
    """What the local runtime listens on and how often it runs the scheduled functions."""

    host: str
    port: int
    region: str
    functions_root: Path
    sync_seconds: float
    risk_seconds: float
    stream_poll_seconds: float = 0.2
    #: Where the state is kept between runs; None keeps nothing (an in-process runtime, e.g. the demo).
    state_dir: Path | None = None
    #: Forget the saved state before starting (``FRESH=1``).
    fresh: bool = False
    #: How often the state is journalled (a ``kill -9`` loses at most this much acknowledged work).
    save_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: MutableMapping[str, str] | None = None) -> LocalSettings:
        """Read ``HOST``/``PORT`` (127.0.0.1:8080), ``ENGINE_FUNCTIONS_ROOT``, ``LOCAL_SYNC_SECONDS`` (1),
        ``LOCAL_RISK_SECONDS`` (30), ``AWS_DEFAULT_REGION`` (us-east-1), ``LOCAL_STATE_DIR``
        (``<repo>/.local``), ``FRESH`` (or ``LOCAL_FRESH``; 1 starts clean) and ``LOCAL_SAVE_SECONDS``
        (1, at most 5)."""
        env = os.environ if env is None else env
        root = env.get("ENGINE_FUNCTIONS_ROOT")
        state_dir = (env.get("LOCAL_STATE_DIR") or "").strip()
        save_seconds = _positive_float(env, "LOCAL_SAVE_SECONDS", 1.0)
        if save_seconds > 5:
            raise ValueError(
                f"LOCAL_SAVE_SECONDS must be at most 5 (a kill loses that much), got {save_seconds}"
            )
        return cls(
            host=env.get("HOST") or "127.0.0.1",
            port=_port(env),
            region=env.get("AWS_DEFAULT_REGION") or "us-east-1",
            functions_root=Path(root).resolve() if root else default_functions_root(),
            sync_seconds=_positive_float(env, "LOCAL_SYNC_SECONDS", LOCAL_SYNC_SECONDS),
            risk_seconds=_positive_float(env, "LOCAL_RISK_SECONDS", 30.0),
            state_dir=Path(state_dir).resolve() if state_dir else default_state_dir(),
            fresh=_flag(env, "FRESH", "LOCAL_FRESH"),
            save_seconds=save_seconds,
        )


def configure_process_environment(
    endpoint_url: str, region: str, env: MutableMapping[str, str] | None = None
) -> None:
    """Point every AWS client of this process at the local moto server and name its resources."""
    env = os.environ if env is None else env
    env["AWS_ENDPOINT_URL"] = endpoint_url
    for variable in [name for name in env if name.startswith("AWS_ENDPOINT_URL_")]:
        del env[variable]  # a per-service override (AWS_ENDPOINT_URL_DYNAMODB, ...) would bypass moto
    env["AWS_ACCESS_KEY_ID"] = "testing"
    env["AWS_SECRET_ACCESS_KEY"] = "testing"
    env["AWS_SESSION_TOKEN"] = "testing"
    env.pop("AWS_PROFILE", None)
    env["AWS_DEFAULT_REGION"] = region
    env["AWS_REGION"] = region
    env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    for variable, suffix in TABLE_VARIABLES.items():
        env.setdefault(variable, f"{APP}-{STAGE}-{suffix}")
    env.setdefault("CONFIG_PREFIX", f"/{APP}/{STAGE}/")
    env.setdefault("CONFIG_MAX_AGE_SECONDS", "5")
    env.setdefault("WEBHOOK_SECRET_NAME", f"{APP}/{STAGE}/webhook")
    env.setdefault("TELEGRAM_SECRET_NAME", f"{APP}/{STAGE}/telegram")
    env.setdefault("APP_NAME", APP)
    env.setdefault("STAGE", STAGE)
    env.setdefault("POWERTOOLS_SERVICE_NAME", APP)
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ExecutionEngine")
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    # Metrics would print one EMF JSON document per invocation on stdout; nothing collects them here.
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    env.setdefault("LOG_LEVEL", "WARNING")
