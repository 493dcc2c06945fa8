"""The synthesized tables are the engine's pynamodb models, table for table.

infra/storage.py derives its tables from `engine.store.tables`; this checks the result in the template
against what pynamodb's `create_table` sends for each model (the tables the integration tests and the
local runtime use): key names and types, GSIs and LSIs with their projection, stream and TTL, and that
no deployed table lacks a model. test_storage.py pins the same layout by hand, independently of both.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from pynamodb.models import Model

from engine.store import tables as store_tables
from infra.event_sources import STREAM_CONSUMERS

MODELS: dict[str, type[Model]] = {short: model for _env, short, model in store_tables.TABLES}


def _aws_name(short_name: str) -> str:
    return f"execution-engine-dev-{short_name}"


@pytest.fixture(scope="module")
def tables_by_name(synthesized: Any) -> dict[str, dict[str, Any]]:
    tables = synthesized.of_type("AWS::DynamoDB::Table")
    return {value["Properties"]["TableName"]: value["Properties"] for value in tables.values()}


def _keys(key_schema: Any) -> dict[str, str]:
    """KeyType -> attribute name (pynamodb and CloudFormation list the keys in different orders)."""
    return {key["KeyType"]: key["AttributeName"] for key in key_schema}


def _index_layout(index: Any) -> tuple[dict[str, str], dict[str, Any]]:
    projection = dict(index.get("projection") or index["Projection"])
    if "NonKeyAttributes" in projection:
        projection["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return _keys(index.get("key_schema") or index["KeySchema"]), projection


def test_every_deployed_table_has_a_model_and_every_model_a_table(tables_by_name: dict[str, Any]) -> None:
    assert sorted(tables_by_name) == sorted(_aws_name(short) for short in MODELS)


@pytest.mark.parametrize("short_name", sorted(MODELS))
def test_table_is_its_model(short_name: str, tables_by_name: dict[str, Any]) -> None:
    model = MODELS[short_name]
    schema: dict[str, Any] = dict(model._get_schema())
    table = tables_by_name[_aws_name(short_name)]

    assert _keys(table["KeySchema"]) == _keys(schema["key_schema"])
    # Every key attribute of the table and its indexes, with its type (S/N/B).
    declared = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert declared == {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}

    for template_key, model_key in (
        ("GlobalSecondaryIndexes", "global_secondary_indexes"),
        ("LocalSecondaryIndexes", "local_secondary_indexes"),
    ):
        found = {index["IndexName"]: _index_layout(index) for index in table.get(template_key, [])}
        expected = {index["index_name"]: _index_layout(index) for index in schema[model_key]}
        assert found == expected, template_key

    stream_view_type = getattr(model.Meta, "stream_view_type", None)
    if stream_view_type:
        assert table["StreamSpecification"] == {"StreamViewType": stream_view_type}
    else:
        assert "StreamSpecification" not in table

    ttl = model._ttl_attribute()
    if ttl is not None:
        assert table["TimeToLiveSpecification"] == {"AttributeName": ttl.attr_name, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in table

    assert table["BillingMode"] == model.Meta.billing_mode


@pytest.mark.parametrize("table", sorted({consumer.table for consumer in STREAM_CONSUMERS}))
def test_a_consumed_stream_carries_old_and_new_images(table: str) -> None:
    """The stream consumers compare a record's old and new image (transitions, fills)."""
    model = MODELS[table.replace("_", "-")]
    assert getattr(model.Meta, "stream_view_type", None) == "NEW_AND_OLD_IMAGES"


def test_idempotency_table_has_powertools_layout() -> None:
    """Powertools owns the idempotency items; the engine builds its DynamoDBPersistenceLayer with the
    default attribute names, so the model (and the table) must match those defaults."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(DynamoDBPersistenceLayer.__init__).parameters.items()
    }
    model = store_tables.IdempotencyModel
    schema = model._get_schema()
    assert _keys(schema["key_schema"]) == {"HASH": defaults["key_attr"]}
    assert defaults["sort_key_attr"] is None
    ttl = model._ttl_attribute()
    assert ttl is not None
    assert ttl.attr_name == defaults["expiry_attr"]
