"""Tables exactly as the brief's storage layout: names, keys, indexes, streams, TTL, PITR."""

from __future__ import annotations

from typing import Any

import pytest

# name -> (hash, range, {gsi: (hash, range)}, stream, ttl attribute)
EXPECTED_TABLES: dict[str, tuple[str, str | None, dict[str, tuple[str, str | None]], bool, str | None]] = {
    "groups": (
        "id",
        None,
        {"by_status": ("status", None), "by_closed_day": ("closed_day", None)},
        True,
        None,
    ),
    "orders": (
        "id",
        None,
        {"by_group": ("group_id", "created_at"), "by_status": ("status", None)},
        True,
        None,
    ),
    "queue": ("id", None, {"by_key": ("key", None)}, False, None),
    "pool": ("pk", None, {}, False, None),
    "events": ("id", None, {"by_group": ("group_id", "at"), "by_day": ("day", "at")}, True, None),
    "risk_actions": ("id", None, {}, False, None),
    "equity": ("series", "at", {}, False, None),
    "markets": ("exchange", "symbol", {}, False, None),
    "prices": ("exchange", "symbol", {}, False, None),
    "paper_orders": ("exchange", "client_order_id", {}, False, None),
    "idempotency": ("id", None, {}, False, "expiration"),
    "state": ("pk", None, {}, False, "expires_at"),
}


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


@pytest.fixture(scope="module")
def tables_by_name(synthesized: Any) -> dict[str, dict[str, Any]]:
    tables = synthesized.of_type("AWS::DynamoDB::Table")
    return {value["Properties"]["TableName"]: value for value in tables.values()}


def _aws_name(name: str) -> str:
    """engine.store's short names use '-' (its local default is `execution-engine-local-risk-actions`)."""
    return "execution-engine-dev-" + name.replace("_", "-")


def test_given_the_stack_then_it_has_exactly_the_twelve_tables(tables_by_name: dict[str, Any]) -> None:
    assert sorted(tables_by_name) == sorted(_aws_name(name) for name in EXPECTED_TABLES)
    assert "execution-engine-dev-risk-actions" in tables_by_name


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLES))
def test_table_layout(name: str, tables_by_name: dict[str, Any]) -> None:
    hash_key, range_key, indexes, stream, ttl = EXPECTED_TABLES[name]
    table = tables_by_name[_aws_name(name)]
    properties = table["Properties"]

    assert properties["KeySchema"] == _key_schema(hash_key, range_key)
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # Retained on delete/replace, not when the create rolls back: a failed first deploy leaves no
    # fixed-name table to block the next one with "already exists".
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert all(attribute["AttributeType"] == "S" for attribute in properties["AttributeDefinitions"])

    found_indexes = {
        index["IndexName"]: index["KeySchema"] for index in properties.get("GlobalSecondaryIndexes", [])
    }
    assert found_indexes == {index: _key_schema(*keys) for index, keys in indexes.items()}

    if stream:
        assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    else:
        assert "StreamSpecification" not in properties

    if ttl:
        assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in properties
