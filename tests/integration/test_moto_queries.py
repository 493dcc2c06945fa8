"""Partition-sized queries (``engine.local.aws.queries``) answer exactly what moto's whole-table walk answers.

Every ``Table.query`` of the runs below is made both ways — moto's own (every item of the table) and the
patched one (the candidates of the partition or of the global index) — and the results, scanned counts
and last evaluated keys compared. The runs write through every path that changes an item (put, update
in place, delete, batch write, committed and cancelled transactions) and move items between index
partitions, then query the table and each index with paging, reverse order, range conditions, filters
and projections.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from engine.local.aws import queries

TABLE = "queries-test"
STATUSES = ("open", "closed", "failed")


@pytest.fixture
def compared(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each query runs both ways and must agree; yields the index names queried (``""`` = the table)."""
    seen: list[str] = []

    def both(self: Table, *args: Any, **kwargs: Any) -> Any:
        ours = queries.query(self, *args, **kwargs)
        theirs = queries._MOTO_QUERY(self, *args, **kwargs)
        bound = queries._QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
        seen.append(bound.get("index_name") or "")
        assert [item.to_json() for item in ours[0]] == [item.to_json() for item in theirs[0]]
        assert ours[1:] == theirs[1:]
        return theirs

    monkeypatch.setattr(Table, "query", both)
    with mock_aws():
        yield seen


def _create(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in (
                ("pk", "S"),
                ("sk", "S"),
                ("status", "S"),
                ("key", "S"),
                ("at", "N"),
                ("n", "N"),
            )
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-key",
                "KeySchema": [
                    {"AttributeName": "key", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by-number",
                "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
            },
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-at",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _item(rng: random.Random, pk: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}, "at": {"N": str(rng.randint(0, 50))}}
    if rng.random() < 0.8:
        item["status"] = {"S": rng.choice(STATUSES)}
    if rng.random() < 0.7:
        item["key"] = {"S": f"k{rng.randint(0, 4)}"}
    if rng.random() < 0.5:
        item["n"] = {"N": rng.choice(["1", "1.0", "2", "3.50"])}
    return item


def _write(ddb: Any, rng: random.Random) -> None:
    pk, sk = f"p{rng.randint(0, 5)}", f"s{rng.randint(0, 12):02d}"
    choice = rng.random()
    if choice < 0.35:
        ddb.put_item(TableName=TABLE, Item=_item(rng, pk, sk))
    elif choice < 0.6:
        ddb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression="SET #s = :s, #k = :k REMOVE #n",
            ExpressionAttributeNames={"#s": "status", "#k": "key", "#n": "n"},
            ExpressionAttributeValues={
                ":s": {"S": rng.choice(STATUSES)},
                ":k": {"S": f"k{rng.randint(0, 4)}"},
            },
        )
    elif choice < 0.7:
        ddb.delete_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    elif choice < 0.8:
        ddb.batch_write_item(
            RequestItems={
                TABLE: [{"PutRequest": {"Item": _item(rng, pk, f"b{index}")}} for index in range(3)]
                + [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": "b9"}}}}]
            }
        )
    else:
        _transaction(ddb, rng, pk, cancelled=choice > 0.9)


def _transaction(ddb: Any, rng: random.Random, pk: str, *, cancelled: bool) -> None:
    items: list[dict[str, Any]] = [
        {"Put": {"TableName": TABLE, "Item": _item(rng, pk, "t1")}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": pk}, "sk": {"S": "t2"}},
                "UpdateExpression": "SET #s = :s",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": {"S": "open"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "s00"}}}},
    ]
    if cancelled:
        items.append(
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"pk": {"S": "nowhere"}, "sk": {"S": "x"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        )
    try:
        ddb.transact_write_items(TransactItems=items)
    except ddb.exceptions.TransactionCanceledException:
        assert cancelled


def _pages(ddb: Any, **query: Any) -> list[dict[str, Any]]:
    found, start = [], None
    while True:
        page = ddb.query(TableName=TABLE, **query, **({"ExclusiveStartKey": start} if start else {}))
        found.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def _queries(ddb: Any, rng: random.Random) -> None:
    pk = f"p{rng.randint(0, 6)}"
    _pages(ddb, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}}, Limit=3)
    _pages(
        ddb,
        KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
        ExpressionAttributeValues={":p": {"S": pk}, ":b": {"S": "s0"}},
        ScanIndexForward=False,
    )
    _pages(
        ddb,
        IndexName="by-at",
        KeyConditionExpression="pk = :p AND #a BETWEEN :lo AND :hi",
        ExpressionAttributeNames={"#a": "at"},
        ExpressionAttributeValues={":p": {"S": pk}, ":lo": {"N": "5"}, ":hi": {"N": "40"}},
    )
    _pages(
        ddb,
        IndexName="by-status",
        KeyConditionExpression="#s = :s",
        FilterExpression="attribute_exists(#k)",
        ExpressionAttributeNames={"#s": "status", "#k": "key"},
        ExpressionAttributeValues={":s": {"S": rng.choice(STATUSES)}},
        Limit=4,
    )
    _pages(
        ddb,
        IndexName="by-key",
        KeyConditionExpression="#k = :k AND #a > :a",
        ExpressionAttributeNames={"#k": "key", "#a": "at"},
        ExpressionAttributeValues={":k": {"S": f"k{rng.randint(0, 5)}"}, ":a": {"N": "10"}},
        ScanIndexForward=False,
        Limit=2,
    )
    _pages(
        ddb,
        IndexName="by-number",
        KeyConditionExpression="n = :n",
        ProjectionExpression="pk, sk, #s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":n": {"N": rng.choice(["1", "2", "3.5", "4"])}},
    )


def test_queries_answer_as_moto_over_every_kind_of_write(compared: list[str]) -> None:
    # Given a table with a local index and three global indexes (string, keys-only with a range, number)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    _create(ddb)
    rng = random.Random(15)

    # When items are written every way and moved between partitions, with queries in between
    for step in range(400):
        _write(ddb, rng)
        if step % 4 == 0:
            _queries(ddb, rng)

    # Then every query answered as moto does (checked in the fixture), on the table and on every index
    assert {"", "by-at", "by-status", "by-key", "by-number"} <= set(compared)
    assert len(compared) > 600


def test_a_query_looks_only_at_its_partition(aws_credentials: None) -> None:
    # Given a table holding many partitions
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _create(ddb)
        rng = random.Random(1)
        for index in range(300):
            ddb.put_item(TableName=TABLE, Item={**_item(rng, f"p{index}", "s"), "status": {"S": "closed"}})
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": "p-open"}, "sk": {"S": "s"}, "status": {"S": "open"}})
        walked: list[int] = []
        original = queries._MOTO_ALL_ITEMS

        def counting(self: Table) -> Any:
            items = original(self)
            walked.append(len(items))
            return items

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(queries, "_MOTO_ALL_ITEMS", counting)
            # When the table and an index are queried
            table_hit = ddb.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p7"}},
            )
            index_hit = ddb.query(
                TableName=TABLE,
                IndexName="by-status",
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "open"}},
            )

    # Then the answers are right and no query walked the whole table (the index was built once)
    assert [item["pk"]["S"] for item in table_hit["Items"]] == ["p7"]
    assert [item["pk"]["S"] for item in index_hit["Items"]] == ["p-open"]
    assert walked == [301]
