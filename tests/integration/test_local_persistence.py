"""The local runtime's state on disk (``engine.local.aws.persistence``): cuts, restore, trimming.

A serialised moto server in this process stands for the runtime's; a second moto "process" is
simulated by resetting moto's backends before a restore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.base_backend import BackendDict
from moto.dynamodb.models import dynamodb_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from engine.local.aws import changes, streams
from engine.local.aws.persistence import Persister, StateDirectory, StateDirectoryInUse, restore
from engine.local.aws.server import SerialisedMotoServer
from engine.local.settings import ACCOUNT_ID

REGION = "us-east-1"
TABLE = "persist-orders"


def _reset_moto() -> None:
    for backends in (dynamodb_backends, ssm_backends, secretsmanager_backends):
        assert isinstance(backends, BackendDict)
        backends[ACCOUNT_ID].reset()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SerialisedMotoServer]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    _reset_moto()
    moto = SerialisedMotoServer()
    moto.start()
    try:
        yield moto
    finally:
        moto.stop()
        _reset_moto()


def _client(moto: SerialisedMotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION)  # type: ignore[call-overload]


def _create(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _persister(directory: Path, moto: SerialisedMotoServer, state: Any = None) -> Persister:
    folder = StateDirectory(directory)
    folder.lock()
    return Persister(folder, REGION, moto.lock, state, interval=3600)


def test_a_restart_restores_items_unacknowledged_records_positions_parameters_and_secrets(
    server: SerialisedMotoServer, tmp_path: Path
) -> None:
    # Given items of every kind written, two of three stream records acknowledged, config and a secret
    ddb = _client(server, "dynamodb")
    persister = _persister(tmp_path, server)
    persister.start()
    _create(ddb)
    blob = b"\x00\xff"
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "a"}, "status": {"S": "open"}, "n": {"N": "1.50"}})
    ddb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": "b"},
            "status": {"S": "closed"},
            "blob": {"B": blob},
            "m": {"M": {"l": {"L": [{"N": "2"}]}}},
        },
    )
    ddb.update_item(
        TableName=TABLE,
        Key={"id": {"S": "a"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "closed"}},
    )
    first_sequence = streams.last_sequence(TABLE, REGION)
    assert first_sequence is not None
    acknowledged = first_sequence - 1
    persister.sources.positions = lambda: {f"fn|{TABLE}": str(acknowledged)}
    persister.sources.acknowledged = lambda: {TABLE: acknowledged}
    persister.sources.scheduler = lambda: {"order_sync": 1234.5}
    ssm = _client(server, "ssm")
    ssm.put_parameter(Name="/p/pool", Value="1", Type="String")
    ssm.put_parameter(Name="/p/pool", Value="2", Type="String", Overwrite=True)
    _client(server, "secretsmanager").create_secret(Name="app/webhook", SecretString="s3cret")
    ddb.delete_item(TableName=TABLE, Key={"id": {"S": "gone"}})
    persister.flush()

    # When the process "dies" (only the journal is left) and a fresh moto restores the state
    persister.directory.unlock()
    changes.remove_listener(persister._changed)  # nothing more is written
    sequence_before = streams.last_sequence(TABLE, REGION)
    _reset_moto()
    state = StateDirectory(tmp_path).load()
    assert state is not None
    restore(state, REGION)

    # Then the items are back (binary and nested values included), the index answers from them
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": "b"}})["Item"]
    assert item["blob"]["B"] == blob and item["m"]["M"]["l"]["L"] == [{"N": "2"}]
    closed = ddb.query(
        TableName=TABLE,
        IndexName="by-status",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "closed"}},
    )
    assert sorted(i["id"]["S"] for i in closed["Items"]) == ["a", "b"]

    # And the stream holds the unacknowledged records under their sequence numbers, numbering goes on
    assert streams.last_sequence(TABLE, REGION) == sequence_before
    shard = streams.shard_of(TABLE, REGION)
    assert shard is not None and shard.starting_sequence_number == acknowledged + 1
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "c"}})
    assert streams.last_sequence(TABLE, REGION) == (sequence_before or 0) + 1

    # And positions, scheduler runs, every parameter version and the secret are back
    assert state.positions == {f"fn|{TABLE}": str(acknowledged)} and state.scheduler == {"order_sync": 1234.5}
    history = ssm.get_parameter_history(Name="/p/pool")["Parameters"]
    assert [(p["Version"], p["Value"]) for p in history] == [(1, "1"), (2, "2")]
    secret = _client(server, "secretsmanager").get_secret_value(SecretId="app/webhook")
    assert secret["SecretString"] == "s3cret"


def test_a_graceful_stop_compacts_the_journal_into_the_snapshot(
    server: SerialisedMotoServer, tmp_path: Path
) -> None:
    # Given a persister that journalled some cuts
    ddb = _client(server, "dynamodb")
    persister = _persister(tmp_path, server)
    persister.start()
    _create(ddb)
    for index in range(5):
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"i{index}"}, "status": {"S": "open"}})
        persister.flush()
    assert (tmp_path / "journal.jsonl").stat().st_size > 0

    # When it stops
    persister.stop()

    # Then the snapshot holds everything and the journal is empty
    assert (tmp_path / "journal.jsonl").stat().st_size == 0
    snapshot = json.loads((tmp_path / "snapshot.json").read_text())
    assert len(snapshot["tables"][TABLE]["items"]) == 5


def test_a_line_cut_short_by_a_kill_is_ignored(server: SerialisedMotoServer, tmp_path: Path) -> None:
    # Given a journal whose last line was cut short
    ddb = _client(server, "dynamodb")
    persister = _persister(tmp_path, server)
    persister.start()
    _create(ddb)
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "kept"}, "status": {"S": "open"}})
    persister.flush()
    persister.directory.unlock()
    changes.remove_listener(persister._changed)
    with (tmp_path / "journal.jsonl").open("a") as journal:
        journal.write('{"items": {"persist-orders": [["x", {"id": {"S"')

    # When it is loaded, then the complete cuts are there
    state = StateDirectory(tmp_path).load()
    assert state is not None and len(state.tables[TABLE].items) == 1


def test_a_state_directory_is_held_by_one_runtime_at_a_time(tmp_path: Path) -> None:
    # Given a directory held by one runtime
    first = StateDirectory(tmp_path)
    first.lock()
    try:
        # When a second one tries, then it is refused with the reason
        with pytest.raises(StateDirectoryInUse, match="in use by another local runtime"):
            StateDirectory(tmp_path).lock()
    finally:
        first.unlock()


def test_trimming_drops_acknowledged_records_and_keeps_sequence_numbers(server: SerialisedMotoServer) -> None:
    # Given a stream with four records
    ddb = _client(server, "dynamodb")
    _create(ddb)
    for index in range(4):
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"t{index}"}})
    last = streams.last_sequence(TABLE, REGION)
    assert last is not None

    # When the first three are trimmed
    with server.lock:
        assert streams.trim(TABLE, REGION, last - 1) == 3

    # Then the fourth is still read after the third's number and new records continue the numbering
    assert not streams.has_records_after(TABLE, REGION, str(last))
    assert streams.has_records_after(TABLE, REGION, str(last - 1))
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    dynamodbstreams = _client(server, "dynamodbstreams")
    shard = dynamodbstreams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = dynamodbstreams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=str(last - 1)
    )["ShardIterator"]
    records = dynamodbstreams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in records] == ["t3"]
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "t4"}})
    assert streams.last_sequence(TABLE, REGION) == last + 1
