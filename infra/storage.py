"""DynamoDB tables: keys, indexes, streams, TTL and point-in-time recovery (BRIEF "Storage layout")."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.settings import StackSettings

S = dynamodb.AttributeType.STRING


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """One table as the engine's store package expects it."""

    name: str
    env_var: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    stream: bool = False
    ttl_attribute: str | None = None

    @property
    def short_name(self) -> str:
        """Name in AWS after `<app>-<stage>-`, as engine.store names its local tables (`risk-actions`)."""
        return self.name.replace("_", "-")


TABLES: tuple[TableSpec, ...] = (
    TableSpec("groups", "GROUPS_TABLE", "id", indexes=(IndexSpec("by_status", "status"),), stream=True),
    TableSpec(
        "orders",
        "ORDERS_TABLE",
        "id",
        indexes=(IndexSpec("by_group", "group_id", "created_at"), IndexSpec("by_status", "status")),
        stream=True,
    ),
    TableSpec("queue", "QUEUE_TABLE", "id", indexes=(IndexSpec("by_key", "key"),)),
    TableSpec("pool", "POOL_TABLE", "pk"),
    TableSpec("signals", "SIGNALS_TABLE", "id"),
    TableSpec("risk_actions", "RISK_ACTIONS_TABLE", "id"),
    TableSpec("equity", "EQUITY_TABLE", "series", "at"),
    TableSpec("markets", "MARKETS_TABLE", "exchange", "symbol"),
    TableSpec("prices", "PRICES_TABLE", "exchange", "symbol"),
    TableSpec("paper_orders", "PAPER_ORDERS_TABLE", "exchange", "client_order_id"),
    TableSpec("idempotency", "IDEMPOTENCY_TABLE", "id", ttl_attribute="expiration"),
    TableSpec("state", "STATE_TABLE", "pk", ttl_attribute="expires_at"),
)

TABLE_SPECS: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}


class Storage(Construct):
    """All tables, on-demand, PITR on, retained when the stack is deleted (they hold trading history)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in TABLES:
            table = dynamodb.Table(
                self,
                spec.name,
                table_name=settings.table_name(spec.short_name),
                partition_key=dynamodb.Attribute(name=spec.hash_key, type=S),
                sort_key=dynamodb.Attribute(name=spec.range_key, type=S) if spec.range_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if spec.stream else None,
                time_to_live_attribute=spec.ttl_attribute,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=dynamodb.Attribute(name=index.hash_key, type=S),
                    sort_key=dynamodb.Attribute(name=index.range_key, type=S) if index.range_key else None,
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            self.tables[spec.name] = table

    def index_arns(self, name: str) -> list[str]:
        """ARNs of a table's GSIs, one per index (grants name each index: no `/index/*` wildcard)."""
        table = self.tables[name]
        return [f"{table.table_arn}/index/{index.name}" for index in TABLE_SPECS[name].indexes]
