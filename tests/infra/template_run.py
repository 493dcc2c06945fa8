"""Run the functions as the synthesized template deploys them: moto resources and environments from it.

Support for ``test_template_faithful.py`` (not a test module):

- :func:`function_environments`: function name -> the ``Environment.Variables`` the template gives it,
  resolved to plain strings (a ``Ref`` to a table or secret becomes the physical name the stack gives it).
- :func:`create_resources`: inside ``mock_aws``, every table (keys, indexes, streams), every seeded
  configuration document (the seeding custom resources' ``putParameter`` calls) and every secret of
  the template, under the template's names.
- :func:`lambda_environment`: the process environment one invocation sees: ONLY the function's
  template variables plus what Lambda itself sets (region, credentials, ``AWS_LAMBDA_FUNCTION_NAME``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3

from tests.infra.conftest import flatten, logical_id_of

#: What Lambda's runtime sets besides the function's own variables (credentials are fake).
LAMBDA_RUNTIME_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    # moto's DynamoDB streams with botocore >= 1.40 (DESIGN §8); not a resource name.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
#: Process variables kept so the interpreter keeps working (none of them names an AWS resource).
KEPT_PROCESS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
WEBHOOK_SECRET_VALUE = "template-faithful-webhook-secret"
EXCHANGE_SECRET_VALUE = json.dumps({"apiKey": "key", "secret": "secret"})
_NAME_PROPERTIES = ("TableName", "Name", "TopicName", "QueueName")
_GENERATED_ID_TYPES = ("AWS::Cognito::UserPoolClient",)


#: moto's default account: the ARN a ``Ref`` to a topic resolves to.
MOTO_ACCOUNT = "123456789012"


def _resolve(value: Any, resources: Mapping[str, dict[str, Any]], region: str) -> str:
    """A template value as the deployed string: literals as is, ``Ref`` to a named resource -> its name
    (an SNS topic's ``Ref`` is its ARN)."""
    if isinstance(value, str):
        return value
    logical_id = logical_id_of(value)
    if isinstance(value, dict) and "Ref" in value and logical_id in resources:
        properties = resources[logical_id].get("Properties", {})
        if resources[logical_id]["Type"] == "AWS::SNS::Topic":
            return f"arn:aws:sns:{region}:{MOTO_ACCOUNT}:{properties['TopicName']}"
        for key in _NAME_PROPERTIES:
            if isinstance(properties.get(key), str):
                return str(properties[key])
        # A generated id that names no AWS resource the code reaches (the console's public client id).
        if resources[logical_id]["Type"] in _GENERATED_ID_TYPES:
            return f"{logical_id}-id"
    raise AssertionError(f"cannot resolve the environment value {flatten(value)} to a physical name")


def function_environments(template: Mapping[str, Any], region: str) -> dict[str, dict[str, str]]:
    """Project function name (``position_update``) -> its resolved environment variables."""
    resources = template["Resources"]
    found: dict[str, dict[str, str]] = {}
    for resource in resources.values():
        properties = resource.get("Properties", {})
        if (
            resource["Type"] != "AWS::Lambda::Function"
            or properties.get("Handler") != "handler.lambda_handler"
        ):
            continue
        variables = properties.get("Environment", {}).get("Variables", {})
        environment = {key: _resolve(value, resources, region) for key, value in variables.items()}
        prefix = f"{environment['APP_NAME']}-{environment['STAGE']}-"
        found[properties["FunctionName"].removeprefix(prefix).replace("-", "_")] = environment
    return found


def _create_table(client: Any, properties: Mapping[str, Any]) -> None:
    request: dict[str, Any] = {
        "TableName": properties["TableName"],
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in properties["GlobalSecondaryIndexes"]
        ]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    client.create_table(**request)


def create_resources(template: Mapping[str, Any], region: str) -> None:
    """Tables, seeded documents and secrets of ``template`` in the current moto account."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    ssm = boto3.client("ssm", region_name=region)
    secrets = boto3.client("secretsmanager", region_name=region)
    topics = boto3.client("sns", region_name=region)
    for resource in template["Resources"].values():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            _create_table(dynamodb, properties)
        elif kind == "Custom::SeedConfigDocument":
            call = json.loads(flatten(properties["Create"]))
            assert (call["service"], call["action"]) == ("SSM", "putParameter"), call
            parameters = call["parameters"]
            ssm.put_parameter(Name=parameters["Name"], Value=parameters["Value"], Type=parameters["Type"])
        elif kind == "AWS::SNS::Topic":
            topics.create_topic(Name=properties["TopicName"])
        elif kind == "AWS::SecretsManager::Secret":
            name = properties["Name"]
            value = WEBHOOK_SECRET_VALUE if name.endswith("/webhook") else EXCHANGE_SECRET_VALUE
            secrets.create_secret(Name=name, SecretString=value)


@contextmanager
def lambda_environment(function_name: str, variables: Mapping[str, str], region: str) -> Iterator[None]:
    """``os.environ`` = the kept process variables + Lambda's own + ``variables``, nothing else."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({key: saved[key] for key in KEPT_PROCESS_ENV if key in saved})
    os.environ.update(LAMBDA_RUNTIME_ENV)
    os.environ.update(
        {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_LAMBDA_FUNCTION_NAME": function_name}
    )
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
