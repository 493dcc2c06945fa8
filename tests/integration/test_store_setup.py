"""Table creation and call-time table names."""

from __future__ import annotations

import pytest

from engine.store import OrderStore, create_all_tables, table_name
from engine.store.tables import OrderModel
from tests.support.builders import make_order


def test_create_all_tables_is_idempotent_and_complete(dynamodb):
    # Given the fixture already created every table, creating again creates nothing
    assert create_all_tables() == []
    orders = dynamodb.describe_table(TableName=table_name(OrderModel))["Table"]
    assert orders["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert {index["IndexName"] for index in orders["GlobalSecondaryIndexes"]} == {"by_group", "by_status"}
    ttl = dynamodb.describe_time_to_live(TableName="execution-engine-local-state")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    idempotency = dynamodb.describe_time_to_live(TableName="execution-engine-local-idempotency")
    assert idempotency["TimeToLiveDescription"]["AttributeName"] == "expiration"


def test_table_names_are_read_from_the_environment_at_call_time(dynamodb, monkeypatch: pytest.MonkeyPatch):
    # Given ORDERS_TABLE points at another table created after the store was first used
    store = OrderStore()
    first = make_order()
    store.put_new(first)
    monkeypatch.setenv("ORDERS_TABLE", "elsewhere-orders")
    assert create_all_tables() == ["elsewhere-orders"]
    # When an order is written, it lands in the new table only
    second = make_order()
    store.put_new(second)
    assert store.get(second.id) is not None and store.get(first.id) is None
    assert dynamodb.scan(TableName="elsewhere-orders")["Count"] == 1
    monkeypatch.delenv("ORDERS_TABLE")
    assert store.get(first.id) is not None and store.get(second.id) is None
