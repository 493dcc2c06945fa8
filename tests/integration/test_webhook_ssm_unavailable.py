"""Given SSM throttling the configuration reads (a candle-close burst of cold containers), when an alert
arrives, then the webhook answers 503 (TradingView resends) and stores no idempotent answer, so the resend
is acted on once SSM answers again; and a cold read of the shared documents is one GetParameters call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from engine.config import clear_cache, load_config
from engine.store.tables import IdempotencyModel, table_name
from tests.support.webhook import alert, prepare_webhook, table_counts

_real_api_call = BaseClient._make_api_call


@contextmanager
def ssm_calls(*, throttle: bool) -> Iterator[list[str]]:
    """Record every SSM operation; with ``throttle`` answer each with ThrottlingException, as SSM does."""
    calls: list[str] = []

    def api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "ssm":
            calls.append(operation)
            if throttle:
                error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
                raise ClientError(error, operation)  # type: ignore[arg-type]
        return _real_api_call(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", api_call):
        yield calls


def _idempotency_ids() -> list[str]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    return [item["id"]["S"] for item in client.scan(TableName=table_name(IdempotencyModel))["Items"]]


def test_an_unreadable_config_answers_503_and_the_resend_is_acted_on(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cold webhook (nothing cached) and SSM throttling every read
    client = prepare_webhook(monkeypatch)
    event = client.event(alert())
    before = table_counts()
    clear_cache()
    # When the alert arrives
    with ssm_calls(throttle=True):
        status, body = client.invoke(event)
    # Then the answer asks TradingView to resend, and nothing was stored (no idempotent answer either)
    assert (status, body["error"]) == (503, "config_unavailable")
    assert "resend" in body["reason"]
    assert _idempotency_ids() == []
    assert table_counts() == before
    # When SSM answers again and TradingView resends the same alert
    status, body = client.invoke(event)
    # Then the resend is acted on (a group is opened), not answered from a stored refusal
    assert (status, body["outcome"]) == (202, "opened")
    assert len(_idempotency_ids()) == 1


def test_an_unreadable_dca_document_during_routing_stores_no_answer(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given shared documents readable (batch read) but single reads (the market's DCA document) throttled
    client = prepare_webhook(monkeypatch)
    event = client.event(alert())

    def api_call(client_: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetParameter":
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, operation)  # type: ignore[arg-type]
        return _real_api_call(client_, operation, params)

    # When the alert is routed (inside the idempotent step)
    with mock.patch.object(BaseClient, "_make_api_call", api_call):
        status, body = client.invoke(event)
    # Then 503, and Powertools removed its in-progress record: the resend is processed afresh
    assert (status, body["error"]) == (503, "config_unavailable")
    assert _idempotency_ids() == []
    assert client.invoke(event)[1]["outcome"] == "opened"


def test_a_cold_read_of_the_shared_documents_is_one_get_parameters_call(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the seeded documents and a cache that keeps them (a warm container's 30 s)
    prepare_webhook(monkeypatch)
    monkeypatch.setenv("CONFIG_MAX_AGE_SECONDS", "30")
    clear_cache()
    # When the configuration is read twice
    with ssm_calls(throttle=False) as calls:
        first = load_config()
        second = load_config()
    # Then SSM saw one GetParameters (versions kept, no problems), the second read came from the cache
    assert calls == ["GetParameters"]
    assert first.problems == [] and first.versions == second.versions
    assert set(first.versions) == {"engine", "pool", "queue", "risk", "routes"}
    assert first.versions["engine"] >= 1
