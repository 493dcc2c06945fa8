"""The eight Lambda functions, each with its own role holding only what it uses.

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
from infra.notifications import Notifications
from infra.settings import (
    FUNCTION_NAMES,
    LAMBDA_PYTHON_VERSION,
    METRICS_NAMESPACE,
    PROJECT_ROOT,
    StackSettings,
)
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
    #: Reads the Telegram bot token and publishes to the notifications topic (the notifier).
    notifications: bool = False
    extra_environment: tuple[tuple[str, str], ...] = ()

    @property
    def tables(self) -> frozenset[str]:
        return self.read_write | self.read_only


def _names(*names: str) -> frozenset[str]:
    return frozenset(names)


# ---------------------------------------------------------------- sizing
#
# webhook: TradingView gives up after 3 s and resends on 5xx. A cold start is CPU-bound (unzipping is
# done by Lambda; importing powertools, pydantic, pynamodb and boto3 from bytecode is ours), and below
# 1769 MB a function gets only a fraction of one vCPU, so init time scales inversely with memory up to
# there. 1769 MB is one full vCPU: the fastest cold start a single-threaded init can get; more memory
# adds a second vCPU that the import chain cannot use. Alerts are rare, so the cost is negligible.
WEBHOOK_MEMORY_MB = 1769

# Scheduled functions fire every minute and claim their run by start time only, so a run must end
# before the next tick can start another one: timeout below the 60 s interval (schedules.py checks).
SCHEDULED_TIMEOUT_SECONDS = 50

# ccxt's per-request timeout (ccxt default 10 s), read by engine.exchange.factory (EXCHANGE_TIMEOUT_MS).
EXCHANGE_TIMEOUT_MS = 5_000
# Worst case of one order in order_executor, every request timing out (engine.exchange.ccxt_gateway):
#   cold client: ccxt loads markets before the first order (binance: spot, linear, inverse, option
#   and currencies)                                                   5 requests
#   create_order, sent once                                          1 request
#   ambiguous create -> fetch_order by client id, 3 tries (retries=3) 3 requests
#   not found -> open-orders listing, 3 tries                         3 requests
#   fee from the order's trades, 3 tries                              3 requests
# = 15 requests x 5 s = 75 s, plus the backoff sleeps (0.5 s x 2**(n-1) x up to 1.5: 0.75 before the
# lookup, then 0.75 + 1.5 between the tries of each of the three reads) 7.5 s = 82.5 s.
EXCHANGE_REQUESTS_PER_ORDER_WORST = 15
EXCHANGE_BACKOFF_PER_ORDER_WORST_SECONDS = 7.5
ORDER_WORST_CASE_SECONDS = (
    EXCHANGE_REQUESTS_PER_ORDER_WORST * EXCHANGE_TIMEOUT_MS / 1000 + EXCHANGE_BACKOFF_PER_ORDER_WORST_SECONDS
)
# One order per invocation: a slow exchange can then only time out its own record (a timed-out batch
# has no partial response and every record in it is retried), and a batch is processed sequentially
# anyway, so throughput per shard is the same as with 5. Timeout: the worst order + a cold init.
ORDER_EXECUTOR_BATCH_SIZE = 1
COLD_INIT_ALLOWANCE_SECONDS = 5
ORDER_EXECUTOR_TIMEOUT_SECONDS = 90
assert (
    ORDER_EXECUTOR_BATCH_SIZE * ORDER_WORST_CASE_SECONDS + COLD_INIT_ALLOWANCE_SECONDS
    <= ORDER_EXECUTOR_TIMEOUT_SECONDS
)

# ---------------------------------------------------------------- table access
#
# Per function, the tables its code path writes and reads, as tests/infra/test_code_reach.py derives
# them from the handler's call graph and the store methods it calls (the test fails if they differ).
# A written table is readable too (conditions, version checks).

FUNCTION_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "webhook",
        # idempotency: Powertools' persistence layer in engine.app.intake.webhook. risk_actions: an exit's
        # refresh of the group evaluates its protections and records a trigger there.
        read_write=_names("groups", "orders", "queue", "pool", "events", "idempotency", "risk_actions"),
        read_only=_names("markets", "prices"),
        memory_mb=WEBHOOK_MEMORY_MB,
        timeout_seconds=10,
        webhook_secret=True,
    ),
    FunctionSpec(
        "order_executor",
        read_write=_names("orders", "paper_orders", "state"),
        # groups: the slippage guard reads the entry's group for the alert's entry_price (DESIGN §3.9).
        read_only=_names("prices", "groups"),
        timeout_seconds=ORDER_EXECUTOR_TIMEOUT_SECONDS,
        exchange_secrets=True,
        # A paper market order on a symbol order_sync has not priced yet reads the public ticker
        # (engine.app.gateways) instead of backing off into the DLQ.
        extra_environment=(("PAPER_PRICE_SOURCE", "tickers"),),
    ),
    FunctionSpec(
        "position_update",
        # pool: a group write moves the per-account counters (pool table items) in the same transaction.
        # risk_actions: a refresh evaluates the group's protections and records a trigger there.
        read_write=_names("orders", "groups", "pool", "events", "risk_actions"),
        # queue: closing a group looks up its key's queue entry (QueueStore.find_by_key).
        read_only=_names("markets", "prices", "queue"),
    ),
    FunctionSpec(
        "slot_release",
        read_write=_names("groups", "pool", "queue", "orders", "events"),
        read_only=_names("markets", "prices"),
    ),
    FunctionSpec(
        "order_sync",
        read_write=_names(
            "groups",
            "orders",
            "queue",
            "pool",
            "events",
            "risk_actions",  # the fast pass's protection triggers
            "markets",
            "prices",
            "paper_orders",
            "state",
            "equity",
        ),
        timeout_seconds=SCHEDULED_TIMEOUT_SECONDS,
        exchange_secrets=True,
        # Paper accounts in AWS price from public exchange tickers (DESIGN §5 "dry-run in AWS"); there is
        # no local price feed to fill the prices table.
        extra_environment=(("PAPER_PRICE_SOURCE", "tickers"),),
    ),
    FunctionSpec(
        "risk_engine",
        # pool: a group write moves the per-account counters (pool table items) in the same transaction.
        read_write=_names("groups", "orders", "risk_actions", "state", "pool", "events"),
        read_only=_names("prices", "markets", "queue"),
        timeout_seconds=SCHEDULED_TIMEOUT_SECONDS,
    ),
    FunctionSpec(
        "operator_api",
        read_write=_names("groups", "orders", "pool", "queue", "risk_actions", "events", "state"),
        read_only=_names("equity", "markets", "prices"),
    ),
    FunctionSpec(
        "notifier",
        # state: the sent-record per (event, channel) and the kept message; the events arrive on the
        # stream (the event source grants the stream, not the table).
        read_write=_names("state"),
        memory_mb=256,
        # Telegram: 4 tries x 5 s timeout + up to 3 pauses (429 retry_after capped at 30 s) per message
        # in the worst case; a batch of a few messages must still fit.
        timeout_seconds=300,
        notifications=True,
    ),
)
assert tuple(spec.name for spec in FUNCTION_SPECS) == FUNCTION_NAMES


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
            "EXCHANGE_TIMEOUT_MS": str(EXCHANGE_TIMEOUT_MS),
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
        notifications: Notifications | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTION_SPECS:
            function_name = settings.function_name(spec.name)
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
            environment = function_environment(spec, settings)
            if spec.notifications:
                configuration.telegram_secret.grant_read(role)
                environment["TELEGRAM_SECRET_NAME"] = settings.telegram_secret_name
                if notifications is not None:
                    notifications.grant_publish(role)
                    environment["NOTIFY_TOPIC_ARN"] = notifications.topic.topic_arn

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
                environment=environment,
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
