"""moto does not keep every DynamoDB item version alive, and full garbage collections stay short
(``engine.local.aws.housekeeping``).

moto's ``BaseModel`` appends each model object it creates to a class list for its dashboard, so every
overwritten item stayed in memory for the life of the process: the local runtime grew ~0.9 MB a signal.
The cost fixes (installed for every test tier by ``tests/conftest.py``) stop that for DynamoDB and
DynamoDB Streams.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import StreamRecord

from engine.local.aws.housekeeping import freeze_heap

TABLE = "memory-test"


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


@pytest.fixture
def dynamodb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


def test_overwritten_item_versions_are_let_go(dynamodb: Any) -> None:
    # Given one item in a streamed table
    client = dynamodb
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": "0"}})
    items_before = _live(Item)

    # When it is overwritten 150 times and updated in place 150 times
    for n in range(1, 151):
        client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "n": {"N": str(n)}})
    for n in range(150):
        client.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": str(n)}},
        )

    # Then no old version is kept alive (moto's tracking kept all 450), nor any stream record beyond the
    # shard's own list
    assert _live(Item) - items_before <= 2
    assert Item.instances_tracked == [] and StreamRecord.instances_tracked == []  # type: ignore[attr-defined]


class _Node:
    me: _Node | None = None


def test_freezing_the_heap_collects_first_and_sets_the_survivors_aside() -> None:
    # Given an object kept alive and garbage held only by its own reference cycle
    kept = _Node()
    cycle = _Node()
    cycle.me = cycle
    dead = weakref.ref(cycle)
    del cycle

    # When the heap is frozen
    count = freeze_heap()
    try:
        # Then the cycle was collected, not set aside for ever
        assert dead() is None
        # And what survived is out of the collector's walks
        assert count == gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is kept for obj in gc.get_objects())
