"""Table names: environment first; the local default only outside Lambda."""

from __future__ import annotations

import pytest

from engine.store import table_name
from engine.store.tables import MissingTableName, OrderModel, QueueModel


def test_the_environment_names_the_table(monkeypatch):
    monkeypatch.setenv("QUEUE_TABLE", "execution-engine-prod-queue")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "execution-engine-prod-position-update")
    assert table_name(QueueModel) == "execution-engine-prod-queue"


def test_outside_lambda_an_unset_variable_means_the_local_table(monkeypatch):
    monkeypatch.delenv("QUEUE_TABLE", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert table_name(QueueModel) == "execution-engine-local-queue"


@pytest.mark.parametrize("value", [None, ""])
def test_inside_lambda_an_unset_variable_raises_naming_the_variable_and_function(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("ORDERS_TABLE", raising=False)
    else:
        monkeypatch.setenv("ORDERS_TABLE", value)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "execution-engine-prod-risk-engine")
    with pytest.raises(
        MissingTableName,
        match=r"ORDERS_TABLE is not set in Lambda function "
        r"'execution-engine-prod-risk-engine'",
    ):
        table_name(OrderModel)
