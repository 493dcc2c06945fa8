"""Refused alerts over HTTP on the local runtime (issue 12, findings 3 and 9; DESIGN §3.1, §3.5): a
non-USD quote and an entry price Decimal cannot hold are 400s with their codes, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.stack import LocalStack, entry_signal

pytestmark = pytest.mark.e2e


def _written(stack: LocalStack) -> dict[str, Any]:
    """What a wrongly accepted alert would change: open groups, the queue, the signal events of the event
    log and the idempotency records."""
    dynamodb = stack.aws_client("dynamodb")
    counts = {}
    for table in dynamodb.list_tables()["TableNames"]:
        if table.endswith("idempotency"):
            counts[table] = dynamodb.scan(TableName=table, Select="COUNT")["Count"]
        if table.endswith("events"):
            counts[table] = dynamodb.scan(
                TableName=table,
                Select="COUNT",
                FilterExpression="kind = :signal",
                ExpressionAttributeValues={":signal": {"S": "signal"}},
            )["Count"]
    return {
        "groups": stack.get("/groups?status=all")["groups"],
        "queue": stack.get("/queue")["queue"],
        "tables": counts,
    }


def test_a_non_usd_quote_and_a_huge_price_are_400_and_write_nothing(stack: LocalStack) -> None:
    # Given the running engine and what it holds now
    before = _written(stack)
    assert len(before["tables"]) == 2, before

    # When an ETHBTC alert arrives, then it is 400 unsupported_quote (checked before the market lookup)
    status, reply = stack.signal(entry_signal(stack.secret, "ETHBTC", 0.05))
    assert (status, reply["outcome"], reply["error"]) == (400, "rejected", "unsupported_quote"), reply
    assert "BTC" in reply["reason"]

    # When an alert's entry price is 1e26, then it is 400 out_of_range naming the field (not a 500)
    huge = entry_signal(stack.secret, "BTCUSDT", 60000)
    huge["tv"]["entry_price"] = "1e26"
    status, reply = stack.signal(huge)
    assert (status, reply["outcome"], reply["error"]) == (400, "rejected", "out_of_range"), reply
    assert "tv.entry_price" in reply["reason"]

    # Then neither wrote anything: no group, no queue entry, no signal recorded, no idempotency record
    assert _written(stack) == before
