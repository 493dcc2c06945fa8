"""Stream images (as moto's DynamoDB Streams delivers them) convert back to the stored domain objects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3

from engine.domain.models import GroupFigures, GroupStatus, OrderStatus, utcnow
from engine.store import (
    GroupStore,
    OrderStore,
    PoolStore,
    group_from_image,
    order_from_image,
    table_name,
)
from engine.store.tables import GroupModel, OrderModel
from tests.support.builders import make_group, make_order, make_pyramid


def _stream_records(client: Any, table: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records.extend(streams.get_records(ShardIterator=iterator)["Records"])
    return records


def test_order_stream_images_round_trip(dynamodb):
    # Given an order inserted and then modified
    store = OrderStore()
    order = make_order(trigger_price=Decimal("0.000000012345678901234567890123"), price=None)
    store.put_new(order)
    inserted = store.get(order.id)
    order.status = OrderStatus.OPEN
    order.exchange_order_id = "x-1"
    store.save(order, now=utcnow())
    # When the stream records are read
    records = _stream_records(dynamodb, table_name(OrderModel))
    # Then the images convert to the domain objects as stored
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    assert order_from_image(records[0]["dynamodb"]["NewImage"]) == inserted
    assert order_from_image(records[1]["dynamodb"]["OldImage"]) == inserted
    assert order_from_image(records[1]["dynamodb"]["NewImage"]) == order


def test_group_stream_images_round_trip(dynamodb):
    group = make_group(
        pyramids=[make_pyramid(), make_pyramid(index=1, entry_price=Decimal("97.125"))],
        figures=GroupFigures(quantity=Decimal("0.5"), realized_by_day={"2026-01-02": Decimal("-0.01")}),
    )
    PoolStore().open_group(group, [], max_open=5)
    group.status = GroupStatus.CLOSED
    GroupStore().save(group, now=utcnow())
    records = _stream_records(dynamodb, table_name(GroupModel))
    images = [r["dynamodb"] for r in records]
    assert group_from_image(images[-1]["NewImage"]) == group
    assert group_from_image(images[-1]["OldImage"]).status == GroupStatus.LIVE
