"""Benchmark: one ``TransactWriteItems`` under moto's own implementation and under the undo log.

A table of 1,000 / 5,000 / 20,000 items (stream on, as the engine's tables are); a 5-item transaction
that succeeds and one that is cancelled by its last condition. moto 5.2 copies the table once per
item of the transaction, so its cost grows with the table; the undo log copies only the touched
items. Prints median milliseconds and writes ``bench-results/transactions.json``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from engine.local.aws import transactions
from tests.bench.common import median, ms, print_report, write_results

SIZES: tuple[tuple[int, int], ...] = ((1_000, 5), (5_000, 3), (20_000, 2))
TABLE = "bench-tx"


def _table(ddb: Any, size: int) -> None:
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for n in range(size):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"g{n}"}, "version": {"N": "1"}})


def _bump(pk: str, expected: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "SET version = version + :one",
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": expected}},
        }
    }


def _time(size: int, runs: int) -> tuple[float, float]:
    """(median seconds of a committed 5-item transaction, of a cancelled one)."""
    committed: list[float] = []
    cancelled: list[float] = []
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _table(ddb, size)
        for run in range(runs):
            items = [_bump(f"g{run * 5 + n}", "1") for n in range(5)]
            start = time.perf_counter()
            ddb.transact_write_items(TransactItems=items)
            committed.append(time.perf_counter() - start)
            failing = [_bump(f"g{size - 1 - run * 5 - n}", "1") for n in range(4)] + [_bump("g0", "99")]
            start = time.perf_counter()
            try:
                ddb.transact_write_items(TransactItems=failing)
            except ClientError:
                cancelled.append(time.perf_counter() - start)
    return median(committed), median(cancelled)


def run() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    rows: list[list[object]] = []
    figures: list[dict[str, Any]] = []
    for size, runs in SIZES:
        transactions.uninstall()
        moto_ok, moto_cancel = _time(size, runs)
        transactions.install()
        undo_ok, undo_cancel = _time(size, runs)
        rows.append([f"{size:,}", ms(moto_ok), ms(moto_cancel), ms(undo_ok), ms(undo_cancel)])
        figures.append(
            {
                "table_items": size,
                "moto_committed_ms": round(moto_ok * 1000, 3),
                "moto_cancelled_ms": round(moto_cancel * 1000, 3),
                "undo_log_committed_ms": round(undo_ok * 1000, 3),
                "undo_log_cancelled_ms": round(undo_cancel * 1000, 3),
            }
        )
    print_report(
        "moto TransactWriteItems, 5 items (median ms)",
        ["table items", "moto committed", "moto cancelled", "undo log committed", "undo log cancelled"],
        rows,
        ["engine.local.aws.transactions: used by the mock_aws fixtures, the benchmarks and make run"],
    )
    write_results("transactions", {"five_item_transaction": figures})


if __name__ == "__main__":
    run()
