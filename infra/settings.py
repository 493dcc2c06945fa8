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
DEFAULT_ENGINE_LAYER_PATH = "build/layers/engine"
# Binance answers HTTP 451 to US addresses and Bybit blocks the US, so a us-* region cannot trade live.
# Tokyo reaches binance, bybit and okx and is close to their matching engines (README "Deploy").
DEFAULT_REGION = "ap-northeast-1"
# The stage whose webhook is open to any address by default (local testing with curl); every other
# stage admits only TradingView's addresses unless `-c tradingview_allowlist=false` says otherwise.
OPEN_WEBHOOK_STAGE = "dev"

EXCHANGES = ("binance", "bybit", "okx")

# CloudWatch namespace of the engine's metrics: the functions' POWERTOOLS_METRICS_NAMESPACE, and where
# the dashboard and alarms read them.
METRICS_NAMESPACE = "ExecutionEngine"

# TradingView sends webhooks only from these addresses (DESIGN §8).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

# The functions by name (infra/functions.py defines one spec per name) and those on a schedule.
FUNCTION_NAMES = (
    "webhook",
    "order_executor",
    "position_update",
    "slot_release",
    "order_sync",
    "risk_engine",
    "operator_api",
    "notifier",
)
SCHEDULED_FUNCTIONS = ("order_sync", "risk_engine")
STREAM_CONSUMER_FUNCTIONS = ("order_executor", "position_update", "slot_release", "notifier")

# AWS's limits on the physical names this stack sets from `<app>-<stage>` (the tightest first matters
# only for the message): EventBridge rule 64, Lambda function 64, SQS queue 80, CloudFormation stack
# 128, WAF web ACL 128, Lambda layer 140, DynamoDB table 255, CloudWatch alarm and dashboard 255.
NAME_LIMITS = {
    "EventBridge rule": 64,
    "Lambda function": 64,
    "SQS queue": 80,
    "CloudFormation stack": 128,
    "WAF web ACL": 128,
    "Lambda layer": 140,
    "DynamoDB table": 255,
    "CloudWatch alarm": 255,
    "CloudWatch dashboard": 255,
}


class NameTooLong(ValueError):
    """`app` and `stage` make a physical name longer than AWS allows."""


def dashed(name: str) -> str:
    return name.replace("_", "-")


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
    engine_layer_path: Path = PROJECT_ROOT / DEFAULT_ENGINE_LAYER_PATH
    tradingview_allowlist: bool = False
    alarm_email: str | None = None
    region: str = DEFAULT_REGION
    #: Cognito hosted-UI domain prefix of the console's sign-in (context `console_domain_prefix`; unique
    #: per region across AWS; default `<app>-<stage>-console`).
    console_domain_prefix_override: str | None = None
    #: E-mail address subscribed to the notifications topic (context `notify_email`; none = no subscription).
    notify_email: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("app", self.app), ("stage", self.stage)):
            if not _NAME_PATTERN.match(value):
                raise ValueError(
                    f"context {label!r}={value!r}: use lowercase letters, digits and '-' "
                    "(it becomes part of table, parameter and secret names)"
                )
        self.check_name_limits()

    def physical_names(self) -> list[tuple[str, str]]:
        """(kind, name) of every name-limited resource the stack names after `<app>-<stage>`."""
        names = [(kind, name) for kind, name in self._function_related_names()]
        names += [
            ("CloudFormation stack", f"ExecutionEngine-{self.stage}"),
            ("WAF web ACL", f"{self.resource_prefix}-api"),
            ("Lambda layer", f"{self.resource_prefix}-engine"),
            ("CloudWatch dashboard", self.resource_prefix),
            ("CloudWatch alarm", f"{self.resource_prefix}-position-update-stream-failures"),
            ("DynamoDB table", self.table_name("paper-orders")),
        ]
        return names

    def _function_related_names(self) -> list[tuple[str, str]]:
        names = [("Lambda function", self.function_name(name)) for name in FUNCTION_NAMES]
        names += [("EventBridge rule", self.schedule_rule_name(name)) for name in SCHEDULED_FUNCTIONS]
        names += [("SQS queue", self.failure_queue_name(name)) for name in STREAM_CONSUMER_FUNCTIONS]
        names += [("SQS queue", self.sync_loop_queue_name(dead_letter=flag)) for flag in (False, True)]
        return names

    def check_name_limits(self) -> None:
        """Fail synth, naming the resource and the limit, when `app`/`stage` make a name too long."""
        too_long = [
            f"{kind} name {name!r} is {len(name)} characters (limit {NAME_LIMITS[kind]})"
            for kind, name in self.physical_names()
            if len(name) > NAME_LIMITS[kind]
        ]
        if too_long:
            raise NameTooLong(
                f"app={self.app!r} stage={self.stage!r} give names longer than AWS allows: "
                + "; ".join(too_long)
                + f". Shorten the stage or the app (together at most {self.max_prefix_length()} "
                "characters including the '-' between them)."
            )

    def max_prefix_length(self) -> int:
        """The longest `<app>-<stage>` every name limit allows."""
        slack = min(
            NAME_LIMITS[kind] - len(name)
            for kind, name in self.physical_names()
            if self.resource_prefix in name
        )
        return len(self.resource_prefix) + slack

    def function_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{dashed(name)}"

    def schedule_rule_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{dashed(name)}-every-minute"

    def failure_queue_name(self, name: str) -> str:
        return f"{self.resource_prefix}-{dashed(name)}-stream-failures"

    def sync_loop_queue_name(self, *, dead_letter: bool = False) -> str:
        """The fast sync loop's tick queue (``infra/sync_loop.py``), or its dead-letter queue."""
        return f"{self.resource_prefix}-sync-ticks" + ("-dlq" if dead_letter else "")

    @classmethod
    def from_context(cls, get: Any) -> StackSettings:
        """Build from a context getter (`node.try_get_context`): missing keys take the defaults."""
        email = get("alarm_email")
        notify_email = get("notify_email")
        stage = str(get("stage") or DEFAULT_STAGE)
        allowlist = get("tradingview_allowlist")
        return cls(
            app=str(get("app") or DEFAULT_APP),
            stage=stage,
            deps_layer_path=_project_path(get("deps_layer_path") or DEFAULT_DEPS_LAYER_PATH),
            engine_layer_path=_project_path(get("engine_layer_path") or DEFAULT_ENGINE_LAYER_PATH),
            # Unset (or "") -> the stage's default; an explicit true/false always wins.
            tradingview_allowlist=(
                stage != OPEN_WEBHOOK_STAGE if allowlist is None or allowlist == "" else _flag(allowlist)
            ),
            alarm_email=str(email) if email else None,
            region=str(get("region") or DEFAULT_REGION),
            console_domain_prefix_override=str(get("console_domain_prefix") or "") or None,
            notify_email=str(notify_email) if notify_email else None,
        )

    @property
    def console_domain_prefix(self) -> str:
        """The hosted UI's domain prefix: lowercase letters, digits and '-', without the words Cognito
        reserves (`aws`, `amazon`, `cognito`)."""
        prefix = self.console_domain_prefix_override or f"{self.resource_prefix}-console"
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", prefix) or any(
            word in prefix for word in ("aws", "amazon", "cognito")
        ):
            raise ValueError(
                f"context console_domain_prefix={prefix!r}: use 1-63 lowercase letters, digits and '-', "
                "without aws, amazon or cognito"
            )
        return prefix

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
    def telegram_secret_name(self) -> str:
        """The Telegram bot token (DESIGN §3.11)."""
        return f"{self.secret_prefix}telegram"

    @property
    def notify_topic_name(self) -> str:
        """The SNS topic of the trader's notifications."""
        return f"{self.resource_prefix}-notifications"

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


def _project_path(value: Any) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() else PROJECT_ROOT / path


def load_cdk_json_context(path: Path = PROJECT_ROOT / "cdk.json") -> dict[str, Any]:
    """The `context` block of cdk.json (the CDK CLI passes it itself; a direct run of app.py does not)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    context = data.get("context", {})
    if not isinstance(context, Mapping):
        raise ValueError(f"{path}: 'context' must be an object")
    return dict(context)
