"""Fixtures for moto-backed integration tests (reused by other integration test modules).

- ``aws_credentials``: fake credentials, region us-east-1, ``AWS_ACCOUNT_ID_ENDPOINT_MODE=disabled``,
  no endpoint override; pynamodb connections reset before and after.
- ``dynamodb``: in-process ``mock_aws`` with every table created; yields a boto3 DynamoDB client.
- ``client`` / ``st``: the webhook handler behind a signing client (config seeded), and the stores.
- ``moto_server``: a :class:`SerialisedMotoServer` on a free port with ``AWS_ENDPOINT_URL`` pointing at
  it and every table created (for threaded tests); yields the endpoint URL; moto state is reset after.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from engine.app.context import Stores, stores
from engine.local.aws.server import SerialisedMotoServer
from engine.store import create_all_tables, reset_connections
from tests.support.webhook import WebhookClient, prepare_webhook

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake AWS environment; no real endpoint can be reached with it."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    reset_connections()
    yield
    reset_connections()


@pytest.fixture
def dynamodb(aws_credentials: None) -> Iterator[Any]:
    """mock_aws with every engine table created; yields a boto3 DynamoDB client."""
    with mock_aws():
        reset_connections()
        create_all_tables()
        yield boto3.client("dynamodb", region_name="us-east-1")
        reset_connections()


@pytest.fixture
def moto_server(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A serialised moto server with every engine table; ``AWS_ENDPOINT_URL`` points at it."""
    server = SerialisedMotoServer(port=0)
    url = server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    reset_connections()
    try:
        create_all_tables()
        yield url
    finally:
        reset_connections()
        # moto's backends are process-global: wipe them so later tests start empty.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        server.stop()


@pytest.fixture(autouse=True)
def _release_engine_context() -> Iterator[None]:
    """Undo the engine contexts a test injected (``tests.support.scenario.inject``) when it ends."""
    yield
    from tests.support.scenario import release

    release()


@pytest.fixture
def client(dynamodb: object, monkeypatch: pytest.MonkeyPatch) -> WebhookClient:
    """The webhook handler behind a signing client, config seeded (``tests.support.webhook``)."""
    return prepare_webhook(monkeypatch)


@pytest.fixture
def st(client: WebhookClient) -> Stores:
    """The engine's stores, once the webhook is prepared."""
    return stores()
