"""The undo-log ``TransactWriteItems`` keeps moto's rules and does not copy tables.

Each scenario runs twice, under moto's own implementation and under the undo log, and the answers
and the resulting tables (items and stream records) must be the same.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from engine.local.aws import transactions

TABLE = "tx-test"


@pytest.fixture(params=["moto", "undo_log"])
def client(request: pytest.FixtureRequest, aws_credentials: None) -> Iterator[Any]:
    if request.param == "moto":
        transactions.uninstall()
    try:
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            _create_table(ddb, stream=True)
            for n in range(3):
                ddb.put_item(TableName=TABLE, Item=_item(f"g{n}", version=1))
            yield ddb
    finally:
        transactions.install()


def _create_table(ddb: Any, *, stream: bool) -> None:
    keys = [("pk", "HASH"), ("sk", "RANGE")]
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": stream, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        if stream
        else {"StreamEnabled": False},
    )


def _item(pk: str, version: int, sk: str = "a") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "version": {"N": str(version)}}


def _key(pk: str, sk: str = "a") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _table() -> Table:
    return dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)


def _state(ddb: Any) -> tuple[list[dict[str, Any]], int]:
    items = sorted(ddb.scan(TableName=TABLE)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    shard = _table().stream_shard
    return items, len(shard.items) if shard is not None else 0


def _put_new(pk: str) -> dict[str, Any]:
    condition = "attribute_not_exists(pk)"
    return {"Put": {"TableName": TABLE, "Item": _item(pk, 1), "ConditionExpression": condition}}


def _bump(pk: str, expected: int, old: bool = False) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": _key(pk),
        "UpdateExpression": "SET version = version + :one",
        "ConditionExpression": "version = :expected",
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": str(expected)}},
    }
    if old:
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Update": update}


def _delete(pk: str) -> dict[str, Any]:
    return {"Delete": {"TableName": TABLE, "Key": _key(pk)}}


def _reasons(error: ClientError) -> list[dict[str, Any]]:
    return error.response["CancellationReasons"]


def test_a_transaction_that_succeeds_writes_every_item(client: Any) -> None:
    # Given three stored items
    _, records_before = _state(client)

    # When one transaction creates one, updates one and deletes one
    client.transact_write_items(TransactItems=[_put_new("new"), _bump("g0", 1), _delete("g1")])

    # Then all three changes are there, each with its stream record
    items, records = _state(client)
    assert {(i["pk"]["S"], i["version"]["N"]) for i in items} == {("g0", "2"), ("g2", "1"), ("new", "1")}
    assert records == records_before + 3


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(_bump("g2", 7), id="update-condition"),
        pytest.param(_put_new("g2"), id="put-condition"),
        pytest.param(
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": _key("g2"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            id="condition-check",
        ),
    ],
)
def test_a_cancelled_transaction_writes_nothing_and_says_which_item_failed(
    client: Any, failing: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    # Given three stored items and their stream
    before = _state(client)
    table = _table()

    # When a transaction writes three items and the fourth's condition fails
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[_put_new("new"), _bump("g0", 1), _delete("g1"), failing])

    # Then it is cancelled with the reason on the fourth item only, and nothing was written
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in _reasons(raised.value)] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _state(client) == before
    # And under the undo log the table is the same object (moto's own swaps in its copy)
    if request.node.callspec.params["client"] == "undo_log":
        assert _table() is table


def test_a_failed_condition_returns_the_old_item_when_asked(client: Any) -> None:
    # When an update whose condition fails asks for ALL_OLD
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[_bump("g0", 1), _bump("g2", 9, old=True)])

    # Then the cancellation reason carries the stored item
    reasons = _reasons(raised.value)
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Item"]["version"] == {"N": "1"}
    assert client.get_item(TableName=TABLE, Key=_key("g0"))["Item"]["version"] == {"N": "1"}


def test_two_operations_on_one_item_are_refused_and_write_nothing(client: Any) -> None:
    before = _state(client)

    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=[_put_new("new"), _bump("g0", 1), _delete("g0")])

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _state(client) == before


def test_the_undo_log_copies_items_not_tables(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a table of 200 items, under the undo log
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(ddb, stream=False)
        for n in range(200):
            ddb.put_item(TableName=TABLE, Item=_item(f"g{n}", version=1))
        copied: list[type] = []
        real_deepcopy: Callable[..., Any] = copy.deepcopy

        def counting_deepcopy(value: Any, *args: Any) -> Any:
            copied.append(type(value))
            return real_deepcopy(value, *args)

        monkeypatch.setattr(copy, "deepcopy", counting_deepcopy)

        # When a transaction of three items succeeds and another is cancelled
        ddb.transact_write_items(TransactItems=[_put_new("new"), _bump("g0", 1), _delete("g1")])
        with pytest.raises(ClientError):
            ddb.transact_write_items(TransactItems=[_bump("g2", 1), _bump("g3", 5)])

    # Then no table was copied, only the touched items
    assert Table not in copied
    assert copied, "the undo log copies the items it touches"


def test_adding_a_tiny_amount_twice_is_exact(aws_credentials: None) -> None:
    # Given a counter that receives amounts below 1e-6 (str(Decimal) writes them as 1E-7)
    from engine.local.aws import numbers

    numbers.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(ddb, stream=False)
        key = _key("counter")

        # When it is added to three times (ADD, then SET a = a + :d)
        for delta in ("0.0000001", "0.0000001", "-0.00000005"):
            ddb.update_item(
                TableName=TABLE,
                Key=key,
                UpdateExpression="ADD realised :d",
                ExpressionAttributeValues={":d": {"N": delta}},
            )
        ddb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET realised = realised + :d",
            ExpressionAttributeValues={":d": {"N": "1E-8"}},
        )

        # Then the sum is exact, as DynamoDB's (moto's own arithmetic fails on the second ADD)
        stored = ddb.get_item(TableName=TABLE, Key=key)["Item"]["realised"]["N"]
    assert Decimal(stored) == Decimal("0.00000016")
