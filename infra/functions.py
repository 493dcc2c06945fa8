"""The seven Lambda functions, each with its own role holding only what it uses.

Reserved concurrency is deliberately not set: every consumer is idempotent (streams and schedules
deliver at least once, the handlers keep last-run items and processing markers in the state table),
the stream mappings already bound parallelism to one batch per shard, and reserving capacity would
take it from the account's shared pool (a new account has 10 in total, so a reservation can fail the
deploy). API Gateway throttling bounds the webhook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.access import grant_tables
from infra.configuration import Configuration
from infra.layers import CODE_EXCLUDES, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, Layers
from infra.nag import acknowledge
from infra.settings import LAMBDA_PYTHON_VERSION, METRICS_NAMESPACE, PROJECT_ROOT, StackSettings
from infra.storage import TABLE_SPECS, Storage

FUNCTIONS_ROOT = PROJECT_ROOT / "functions"
HANDLER = "handler.lambda_handler"
CONFIG_MAX_AGE_SECONDS = 30
LOG_LEVEL = "INFO"


@dataclass(frozen=True)
class FunctionSpec:
    """What one function may touch. Tables not listed get neither permission nor env var."""

    name: str
    read_write: frozenset[str]
    read_only: frozenset[str] = field(default_factory=frozenset)
    memory_mb: int = 1024
    timeout_seconds: int = 60
    webhook_secret: bool = False
    exchange_secrets: bool = False
    extra_environment: tuple[tuple[str, str], ...] = ()

    @property
    def tables(self) -> frozenset[str]:
        return self.read_write | self.read_only


def _names(*names: str) -> frozenset[str]:
    return frozenset(names)


FUNCTION_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "webhook",
        read_write=_names("groups", "orders", "queue", "pool", "signals", "idempotency", "state"),
        read_only=_names("markets", "prices"),
        memory_mb=512,
        timeout_seconds=10,
        webhook_secret=True,
    ),
    FunctionSpec(
        "order_executor",
        read_write=_names("orders", "groups", "paper_orders", "markets", "state"),
        read_only=_names("prices"),
        exchange_secrets=True,
    ),
    FunctionSpec(
        "position_update",
        read_write=_names("orders", "groups", "state"),
        read_only=_names("markets", "prices"),
    ),
    FunctionSpec(
        "slot_release",
        read_write=_names("groups", "pool", "queue", "orders", "signals", "state", "idempotency"),
        read_only=_names("markets", "prices"),
    ),
    FunctionSpec(
        "order_sync",
        read_write=_names(
            "groups",
            "orders",
            "queue",
            "pool",
            "signals",
            "markets",
            "prices",
            "paper_orders",
            "state",
            "equity",
        ),
        timeout_seconds=120,
        exchange_secrets=True,
        # Paper accounts in AWS price from public exchange tickers (DESIGN §5 "dry-run in AWS"); there is
        # no local price feed to fill the prices table.
        extra_environment=(("PAPER_PRICE_SOURCE", "tickers"),),
    ),
    FunctionSpec(
        "risk_engine",
        read_write=_names("groups", "orders", "risk_actions", "state", "equity", "pool"),
        read_only=_names("prices", "markets", "queue"),
        timeout_seconds=120,
    ),
    FunctionSpec(
        "operator_api",
        read_write=frozenset(TABLE_SPECS) - {"idempotency"},
    ),
)


def function_environment(spec: FunctionSpec, settings: StackSettings) -> dict[str, str]:
    """Environment of one function: its tables' names and the shared configuration variables."""
    environment = {
        TABLE_SPECS[name].env_var: settings.table_name(TABLE_SPECS[name].short_name)
        for name in sorted(spec.tables)
    }
    environment.update(
        {
            "APP_NAME": settings.app,
            "STAGE": settings.stage,
            "CONFIG_PREFIX": settings.parameter_prefix,
            "CONFIG_MAX_AGE_SECONDS": str(CONFIG_MAX_AGE_SECONDS),
            "WEBHOOK_SECRET_NAME": settings.webhook_secret_name,
            "EXCHANGE_SECRET_PREFIX": settings.exchange_secret_prefix,
            "POWERTOOLS_SERVICE_NAME": settings.metrics_service,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            # X-Ray is not enabled on the functions (it would need xray:* on "*"); keep Tracer quiet.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LOG_LEVEL": LOG_LEVEL,
        }
    )
    environment.update(dict(spec.extra_environment))
    return environment


class Functions(Construct):
    """One `lambda_.Function` per spec, code from `functions/<name>/`, both layers, arm64."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        storage: Storage,
        layers: Layers,
        configuration: Configuration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTION_SPECS:
            function_name = f"{settings.resource_prefix}-{spec.name.replace('_', '-')}"
            log_group = logs.LogGroup(
                self,
                f"{spec.name}-logs",
                log_group_name=f"/aws/lambda/{function_name}",
                retention=logs.RetentionDays.THREE_MONTHS,
                removal_policy=RemovalPolicy.DESTROY,
            )
            role = iam.Role(
                self,
                f"{spec.name}-role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{function_name}: only the tables, parameters and secrets it uses",
            )
            log_group.grant_write(role)
            grant_tables(role, storage, read_write=spec.read_write, read_only=spec.read_only)
            configuration.grant_read_parameters(role)
            if spec.webhook_secret:
                configuration.webhook_secret.grant_read(role)
            if spec.exchange_secrets:
                for secret in configuration.exchange_secrets.values():
                    secret.grant_read(role)

            self.functions[spec.name] = lambda_.Function(
                self,
                spec.name,
                function_name=function_name,
                description=f"Execution Engine {spec.name}",
                runtime=LAMBDA_RUNTIME,
                architecture=LAMBDA_ARCHITECTURE,
                handler=HANDLER,
                code=lambda_.Code.from_asset(str(FUNCTIONS_ROOT / spec.name), exclude=list(CODE_EXCLUDES)),
                layers=layers.all,
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_seconds),
                environment=function_environment(spec, settings),
                role=role,
                log_group=log_group,
            )
            self.roles[spec.name] = role
            acknowledge(
                role,
                "IAM5",
                "Read-only SSM access limited to this stage's configuration prefix: the operator adds "
                "per-symbol DCA documents (dca/<exchange>/<SYMBOL>/<tf>) at run time, names unknown "
                "at deploy.",
                applies_to=[f"Resource::{configuration.parameter_arn_pattern_for_nag}"],
                children=True,
            )
            acknowledge(
                self.functions[spec.name],
                "L1",
                f"Python {LAMBDA_PYTHON_VERSION} is pinned on purpose: the dependency layer's wheels and "
                "bytecode are built for it (infra/build_layers.py); both move together via settings.py.",
            )
