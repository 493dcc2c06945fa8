"""DynamoDB tables: keys, indexes, streams, TTL and point-in-time recovery (BRIEF "Storage layout").

The schema has one definition, the engine's pynamodb models (``engine.store.tables``): every table here
is read from its model, key and index attributes with their types, GSIs and LSIs with their projection,
stream view type and TTL attribute, exactly as pynamodb's ``create_table`` builds the tables the tests
and the local runtime use. What only AWS needs (on-demand billing, PITR, retention) is added here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from pynamodb.models import Model

from engine.store import tables as store_tables
from infra.settings import StackSettings

ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str = "S"  # DynamoDB's letter: S, N or B

    def attribute(self) -> dynamodb.Attribute:
        return dynamodb.Attribute(name=self.name, type=ATTRIBUTE_TYPES[self.type])


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: KeySpec
    range_key: KeySpec | None = None
    local: bool = False
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """One table as the engine's store package defines it."""

    name: str  # construct id and the key the other constructs use (`risk_actions`)
    short_name: str  # name in AWS after `<app>-<stage>-`, as engine.store names its local tables
    env_var: str
    hash_key: KeySpec
    range_key: KeySpec | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    stream_view_type: str | None = None
    ttl_attribute: str | None = None

    @property
    def stream(self) -> bool:
        return self.stream_view_type is not None


def _keys(key_schema: Sequence[Mapping[str, Any]], types: dict[str, str]) -> tuple[KeySpec, KeySpec | None]:
    by_role = {key["KeyType"]: key["AttributeName"] for key in key_schema}
    range_key = by_role.get("RANGE")
    return (
        KeySpec(by_role["HASH"], types[by_role["HASH"]]),
        KeySpec(range_key, types[range_key]) if range_key else None,
    )


def _index(index: Mapping[str, Any], types: dict[str, str], *, local: bool) -> IndexSpec:
    hash_key, range_key = _keys(index["key_schema"], types)
    projection = index["projection"]
    return IndexSpec(
        name=index["index_name"],
        hash_key=hash_key,
        range_key=range_key,
        local=local,
        projection=projection["ProjectionType"],
        non_key_attributes=tuple(projection.get("NonKeyAttributes", ())),
    )


def table_spec(env_var: str, short_name: str, model: type[Model]) -> TableSpec:
    """The table of one pynamodb model (its ``_get_schema()``: what its ``create_table`` sends)."""
    schema = model._get_schema()
    types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    hash_key, range_key = _keys(schema["key_schema"], types)
    ttl = model._ttl_attribute()
    return TableSpec(
        name=short_name.replace("-", "_"),
        short_name=short_name,
        env_var=env_var,
        hash_key=hash_key,
        range_key=range_key,
        indexes=tuple(
            [_index(index, types, local=False) for index in schema["global_secondary_indexes"]]
            + [_index(index, types, local=True) for index in schema["local_secondary_indexes"]]
        ),
        stream_view_type=getattr(model.Meta, "stream_view_type", None),
        ttl_attribute=ttl.attr_name if ttl is not None else None,
    )


# Retained on stack deletion and on replacement, but deleted when the create itself fails and rolls
# back: a failed first deploy then leaves no fixed-name table behind to block the next one with
# "already exists". After `cdk destroy` the retained tables do block a new stack of the same stage:
# bring them back with `cdk import` (README "Deploy").
STATEFUL_REMOVAL_POLICY = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE

TABLES: tuple[TableSpec, ...] = tuple(
    table_spec(env_var, short_name, model) for env_var, short_name, model in store_tables.TABLES
)

TABLE_SPECS: dict[str, TableSpec] = {spec.name: spec for spec in TABLES}


class Storage(Construct):
    """All tables, on-demand, PITR on, retained when the stack is deleted (they hold trading history),
    not when their own creation rolls back (STATEFUL_REMOVAL_POLICY)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in TABLES:
            self.tables[spec.name] = self._build_table(settings, spec)

    def _build_table(self, settings: StackSettings, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.name,
            table_name=settings.table_name(spec.short_name),
            partition_key=spec.hash_key.attribute(),
            sort_key=spec.range_key.attribute() if spec.range_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType[spec.stream_view_type] if spec.stream_view_type else None,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=STATEFUL_REMOVAL_POLICY,
        )
        for index in spec.indexes:
            projection = dynamodb.ProjectionType[index.projection]
            non_key_attributes = list(index.non_key_attributes) or None
            if index.local:
                assert index.range_key is not None  # an LSI always has a sort key
                table.add_local_secondary_index(
                    index_name=index.name,
                    sort_key=index.range_key.attribute(),
                    projection_type=projection,
                    non_key_attributes=non_key_attributes,
                )
            else:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=index.hash_key.attribute(),
                    sort_key=index.range_key.attribute() if index.range_key else None,
                    projection_type=projection,
                    non_key_attributes=non_key_attributes,
                )
        return table

    def index_arns(self, name: str) -> list[str]:
        """ARNs of a table's GSIs, one per index (grants name each index: no `/index/*` wildcard)."""
        table = self.tables[name]
        return [f"{table.table_arn}/index/{index.name}" for index in TABLE_SPECS[name].indexes]
