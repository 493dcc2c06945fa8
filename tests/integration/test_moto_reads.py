"""The ``json.dumps`` answers of ``engine.local.aws.reads`` equal moto's own serializer's, byte for meaning.

Every answer of the run below is produced both ways and compared (parsed JSON and content type); the
run covers each fast operation with every attribute type, projections, pagination, missing items,
batch reads and a stream read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.responses import ActionResult, BaseResponse

from engine.local.aws import reads

TABLE = "reads-test"
ITEM = {
    "pk": {"S": "g1"},
    "sk": {"S": "a"},
    "price": {"N": "61747.20"},
    "blob": {"B": b"\x00\x01\xff"},
    "legs": {"L": [{"NULL": True}, {"BOOL": False}, {"M": {"qty": {"N": "0.001"}}}]},
    "tags": {"SS": ["x", "y"]},
    "sizes": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"zz"]},
}


@pytest.fixture
def compared(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every fast-read answer is made both ways and compared; yields the operations compared."""
    seen: list[str] = []

    def both(self: BaseResponse, action_result: ActionResult) -> Any:
        theirs = reads._MOTO_SERIALIZED(self, action_result)
        ours = reads.serialized(self, action_result)
        operation = (self.boto3_service_name, self._get_action())
        if operation in reads.FAST_READS:
            seen.append(operation[1])
            assert ours[0] == theirs[0], operation
            assert ours[1]["Content-Type"] == theirs[1]["Content-Type"], operation
            assert json.loads(ours[2]) == json.loads(theirs[2]), operation
        return theirs

    monkeypatch.setattr(BaseResponse, "serialized", both)
    with mock_aws():
        yield seen


def test_every_fast_read_answers_what_moto_answers(compared: list[str]) -> None:
    # Given a streamed table with items of every attribute type
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    keys = [("pk", "HASH"), ("sk", "RANGE")]
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for sk in "abcde":
        ddb.put_item(TableName=TABLE, Item={**ITEM, "sk": {"S": sk}})

    # When each fast operation is called in its usual shapes
    key = {"pk": {"S": "g1"}, "sk": {"S": "a"}}
    ddb.get_item(TableName=TABLE, Key=key, ReturnConsumedCapacity="TOTAL")
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": "none"}, "sk": {"S": "a"}})
    ddb.get_item(TableName=TABLE, Key=key, ProjectionExpression="price, legs[2].qty")
    page = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "g1"}},
        Limit=2,
        ReturnConsumedCapacity="TOTAL",
    )
    ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "g1"}},
        ExclusiveStartKey=page["LastEvaluatedKey"],
        Select="COUNT",
    )
    ddb.scan(TableName=TABLE, Limit=3)
    ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key, {"pk": {"S": "g1"}, "sk": {"S": "z"}}]}})
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]

    # Then every answer was the same both ways, and each operation was compared
    assert len(records) == 5
    assert sorted(set(compared)) == ["BatchGetItem", "GetItem", "GetRecords", "Query", "Scan"]


def test_installed_reads_decode_binary_and_times_as_boto3_expects(aws_credentials: None) -> None:
    # Given the fast reads installed (as in every test tier and make run)
    reads.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {key: value for key, value in ITEM.items() if key != "sk"}
        ddb.put_item(TableName=TABLE, Item=item)

        # When it is read back
        read = ddb.get_item(TableName=TABLE, Key={"pk": {"S": "g1"}})["Item"]

    # Then boto3 decodes it to exactly what was written (bytes included)
    assert read == item
