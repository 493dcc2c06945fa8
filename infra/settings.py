"""Deployment settings read from CDK context, and the names derived from them.

Every physical name in the stack (tables, parameters, secrets, functions) comes from here, so the
Lambda code's environment variables and the resources they point at cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The Lambda runtime's Python. The dependency layer is built for it (wheels and bytecode):
# change both together through this constant (infra/build_layers.py reads it too).
LAMBDA_PYTHON_VERSION = "3.12"

DEFAULT_APP = "execution-engine"
DEFAULT_STAGE = "dev"
DEFAULT_DEPS_LAYER_PATH = "build/layers/deps"

EXCHANGES = ("binance", "bybit", "okx")

# CloudWatch namespace of the engine's metrics: the functions' POWERTOOLS_METRICS_NAMESPACE, and where
# the dashboard and alarms read them.
METRICS_NAMESPACE = "ExecutionEngine"

# TradingView sends webhooks only from these addresses (DESIGN §8).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def _flag(value: Any) -> bool:
    """Context values arrive as JSON booleans from cdk.json and as strings from `-c key=value`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class StackSettings:
    """What one deployment is called and how it is wired; built from CDK context."""

    app: str = DEFAULT_APP
    stage: str = DEFAULT_STAGE
    deps_layer_path: Path = PROJECT_ROOT / DEFAULT_DEPS_LAYER_PATH
    tradingview_allowlist: bool = False
    alarm_email: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("app", self.app), ("stage", self.stage)):
            if not _NAME_PATTERN.match(value):
                raise ValueError(
                    f"context {label!r}={value!r}: use lowercase letters, digits and '-' "
                    "(it becomes part of table, parameter and secret names)"
                )

    @classmethod
    def from_context(cls, get: Any) -> StackSettings:
        """Build from a context getter (`node.try_get_context`): missing keys take the defaults."""
        deps = get("deps_layer_path") or DEFAULT_DEPS_LAYER_PATH
        deps_path = Path(str(deps))
        if not deps_path.is_absolute():
            deps_path = PROJECT_ROOT / deps_path
        email = get("alarm_email")
        return cls(
            app=str(get("app") or DEFAULT_APP),
            stage=str(get("stage") or DEFAULT_STAGE),
            deps_layer_path=deps_path,
            tradingview_allowlist=_flag(get("tradingview_allowlist") or False),
            alarm_email=str(email) if email else None,
        )

    @property
    def resource_prefix(self) -> str:
        """`<app>-<stage>`: the start of every physical resource name."""
        return f"{self.app}-{self.stage}"

    @property
    def parameter_prefix(self) -> str:
        """SSM prefix of the live configuration documents, `/<app>/<stage>/`."""
        return f"/{self.app}/{self.stage}/"

    @property
    def secret_prefix(self) -> str:
        return f"{self.app}/{self.stage}/"

    @property
    def webhook_secret_name(self) -> str:
        return f"{self.secret_prefix}webhook"

    @property
    def exchange_secret_prefix(self) -> str:
        return f"{self.secret_prefix}exchange/"

    @property
    def metrics_service(self) -> str:
        """POWERTOOLS_SERVICE_NAME of every function: the `service` dimension of custom metrics."""
        return self.resource_prefix

    def table_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{name}"

    def exchange_secret_name(self, exchange: str) -> str:
        return f"{self.exchange_secret_prefix}{exchange}"


def load_cdk_json_context(path: Path = PROJECT_ROOT / "cdk.json") -> dict[str, Any]:
    """The `context` block of cdk.json (the CDK CLI passes it itself; a direct run of app.py does not)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    context = data.get("context", {})
    if not isinstance(context, Mapping):
        raise ValueError(f"{path}: 'context' must be an object")
    return dict(context)
