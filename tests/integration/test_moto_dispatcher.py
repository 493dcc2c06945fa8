"""The local server's dispatcher answers DynamoDB without Flask, as moto's Flask view would
(``engine.local.aws.dispatcher``), and leaves every other service to Flask."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from flask import Flask

from engine.local.aws.server import SerialisedMotoServer

REGION = "eu-west-1"


@pytest.fixture
def server(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """A serialised moto server; yields its endpoint and the services Flask was asked to serve."""
    flask_served: list[str] = []
    flask_app = Flask.wsgi_app

    def recorded(self: Flask, environ: dict[str, Any], start_response: Any) -> Any:
        flask_served.append(getattr(self, "service", "?"))
        return flask_app(self, environ, start_response)

    monkeypatch.setattr(Flask, "wsgi_app", recorded)
    moto = SerialisedMotoServer()
    endpoint = moto.start(in_process=False)
    try:
        yield endpoint, flask_served
    finally:
        moto.stop()


def test_dynamodb_answers_and_errors_come_without_flask(server: tuple[str, list[str]]) -> None:
    endpoint, flask_served = server
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    # Given a table with one item
    client.create_table(
        TableName="direct",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.put_item(TableName="direct", Item={"pk": {"S": "a"}, "n": {"N": "1"}})

    # When it is read, written under a failing condition, and read from its stream
    item = client.get_item(TableName="direct", Key={"pk": {"S": "a"}})["Item"]
    with pytest.raises(ClientError) as failed:
        client.put_item(
            TableName="direct",
            Item={"pk": {"S": "a"}, "n": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    with pytest.raises(ClientError) as invalid:
        client.get_item(TableName="missing", Key={"pk": {"S": "a"}})
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=REGION)
    arn = client.describe_table(TableName="direct")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]

    # Then the answers are DynamoDB's: the item, the errors with their codes and the old item, the record
    assert item == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert failed.value.response["Item"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert invalid.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert [record["eventName"] for record in records] == ["INSERT"]
    # And Flask served none of it
    assert flask_served == []


def test_other_services_still_go_through_flask(server: tuple[str, list[str]]) -> None:
    endpoint, flask_served = server
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=REGION)
    ssm.put_parameter(Name="/direct/test", Value="1", Type="String")
    assert ssm.get_parameter(Name="/direct/test")["Parameter"]["Value"] == "1"
    assert flask_served == ["ssm", "ssm"]


def test_only_requests_to_an_in_process_server_go_unsigned(aws_credentials: None) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    moto = SerialisedMotoServer()
    endpoint = moto.start(in_process=True)
    try:
        signer = SigV4Auth(Credentials("AKIDLOCAL", "secret"), "dynamodb", REGION)
        local = AWSRequest(method="POST", url=f"{endpoint}/", data=b"{}")
        remote = AWSRequest(method="POST", url=f"https://dynamodb.{REGION}.amazonaws.com/", data=b"{}")
        signer.add_auth(local)
        signer.add_auth(remote)
    finally:
        moto.stop()
    # The credential scope moto reads is there in both; only the remote request carries a real signature
    for request in (local, remote):
        assert f"Credential=AKIDLOCAL/{request.context['timestamp'][:8]}/{REGION}/dynamodb/" in str(
            request.headers["Authorization"]
        )
    assert str(local.headers["Authorization"]).endswith("Signature=" + "0" * 64)
    assert not str(remote.headers["Authorization"]).endswith("0" * 64)
