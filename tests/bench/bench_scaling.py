"""Benchmark: does an opened signal cost more when the book is large and the history long? (DESIGN §1)

The webhook handler runs in-process under moto (as in ``bench_webhook``) through two phases of the same
run:

1. **small book**: 10 open groups, no history; then :data:`SIGNALS` new entries on fresh keys are timed.
2. **large book**: the open book is grown through the webhook to 1,000 groups and 100,000 closed groups
   (with one signal audit item each) are added as history; then :data:`SIGNALS` more entries are timed.

The open groups are real (opened by the handler: legs, key locks, counters). The closed history is made
of copies of a real group item marked ``closed`` with a ``closed_at``/``closed_day`` spread over the past
year, written straight into moto's table (without stream records: the history predates the measurement)
because writing 100,000 items through the API would take the benchmark's whole budget. Each phase's
p50/p99 and AWS calls go to ``bench-results/webhook.json`` under ``scaling`` (merged into the file
``bench_webhook`` writes); the design's bar is p99 at 1,000 / 100,000 within 1.5x of p99 at 10 / 0.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.bench.bench_webhook import (
    ENV,
    EXCHANGES,
    ROOT,
    SECRET,
    SYMBOLS,
    CallCounter,
    Planned,
    body_of,
    quiet_stdout,
)
from tests.bench.common import ms, percentile, print_report, update_results

SIGNALS = 200
SMALL_BOOK, LARGE_BOOK, HISTORY = 10, 1_000, 100_000
ACCOUNT_ID = "123456789012"


def keys() -> list[tuple[str, str, int]]:
    """Distinct (exchange, symbol, timeframe) keys, enough for every group of the run."""
    return [
        (exchange, symbol, timeframe)
        for timeframe in range(1, 60)
        for symbol in SYMBOLS
        for exchange in EXCHANGES
    ]


def lift_limits() -> None:
    """A pool larger than the largest book, per-symbol and exposure caps out of the way (SSM)."""
    import boto3

    from engine.config import clear_cache
    from engine.config.settings import config_prefix

    ssm = boto3.client("ssm", region_name="us-east-1")
    prefix = config_prefix(None)
    engine = json.loads(ssm.get_parameter(Name=f"{prefix}engine")["Parameter"]["Value"])
    engine["max_open_per_symbol"] = 100_000
    engine["max_total_exposure_usd"] = 1_000_000_000_000
    ssm.put_parameter(Name=f"{prefix}engine", Value=json.dumps(engine), Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{prefix}pool",
        Value=json.dumps({"max_open_groups": LARGE_BOOK + 2 * SIGNALS + 10}),
        Type="String",
        Overwrite=True,
    )
    clear_cache()


def add_history(count: int) -> None:
    """``count`` closed groups (copies of an open group's item) and as many signal audit items."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from engine.store.tables import GroupModel, SignalModel

    backend = dynamodb_backends[ACCOUNT_ID]["us-east-1"]
    groups = backend.get_table(GroupModel.Meta.table_name)
    signals = backend.get_table(SignalModel.Meta.table_name)
    template = next(iter(groups.items.values())).to_json()["Attributes"]
    signal_template = next(iter(signals.items.values())).to_json()["Attributes"]
    start = datetime.now(UTC) - timedelta(days=365)
    for index in range(count):
        closed_at = start + timedelta(minutes=5 * index)
        group = dict(template)
        group_id = f"history-{index:06d}"
        group.update(
            id={"S": group_id},
            status={"S": "closed"},
            closed_at={"S": closed_at.isoformat()},
            closed_day={"S": closed_at.date().isoformat()},
        )
        groups.items[DynamoType({"S": group_id})] = Item(DynamoType({"S": group_id}), None, group)  # type: ignore[assignment]
        signal = dict(signal_template)
        signal["id"] = {"S": f"history-signal-{index:06d}"}
        signals.items[DynamoType(signal["id"])] = Item(DynamoType(signal["id"]), None, signal)  # type: ignore[assignment]


def run_phases() -> list[dict[str, Any]]:
    """Both phases in one moto; one figure set per phase."""
    from moto import mock_aws

    from engine.local.aws import install_cost_fixes

    install_cost_fixes()

    from engine.config import seed_defaults, seed_webhook_secret
    from engine.local.events import api_gateway_event
    from engine.local.functions import FunctionRegistry
    from engine.store import create_all_tables, reset_connections

    os.environ.update(ENV)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        os.environ.pop(name, None)
    phases: list[dict[str, Any]] = []
    with mock_aws():
        reset_connections()
        create_all_tables()
        seed_defaults()
        seed_webhook_secret(SECRET)
        lift_limits()
        registry = FunctionRegistry(ROOT / "functions", "us-east-1")
        handler = registry.handler("webhook")
        counter = CallCounter()
        free_keys = iter(keys())
        cpu_seconds: list[float] = []

        def open_one() -> tuple[float, str, int]:
            exchange, symbol, timeframe = next(free_keys)
            body = body_of(Planned("open", exchange, symbol, timeframe), datetime.now(UTC))
            event = api_gateway_event(
                method="POST",
                path="/webhook",
                query="",
                resource="/webhook",
                source_ip="52.89.214.238",
                headers=[("Content-Type", "text/plain; charset=utf-8")],
                body=body.encode(),
            )
            start, cpu_start = time.perf_counter(), time.process_time()
            response = handler(event, registry.context("webhook"))
            elapsed = time.perf_counter() - start
            cpu_seconds.append(time.process_time() - cpu_start)
            outcome = str(json.loads(response["body"]).get("outcome", response["statusCode"]))
            return elapsed, outcome, sum(counter.take().values())

        with counter.installed(), quiet_stdout():
            grow(open_one, SMALL_BOOK)
            settle_heap()
            cpu_seconds.clear()
            phases.append(measure(open_one, SMALL_BOOK, 0))
            phases[-1]["cpu_p99_ms"] = round(percentile(cpu_seconds, 99) * 1000, 3)
            grow(open_one, LARGE_BOOK - SMALL_BOOK - SIGNALS)
            add_history(HISTORY)
            settle_heap()
            cpu_seconds.clear()
            phases.append(measure(open_one, LARGE_BOOK, HISTORY))
            phases[-1]["cpu_p99_ms"] = round(percentile(cpu_seconds, 99) * 1000, 3)
        reset_connections()
    return phases


def settle_heap() -> None:
    """Collect, then move every object alive now out of the garbage collector's generations.

    The tables live in this process (moto), so 100,000 stored items are millions of Python objects that
    every full collection would walk during the measured signals: a cost of the in-process mock, not of
    the engine (DynamoDB keeps its items elsewhere). Both phases start from a frozen heap.
    """
    gc.collect()
    gc.freeze()


def grow(open_one: Callable[[], tuple[float, str, int]], count: int) -> None:
    """Open ``count`` groups (not timed)."""
    for _ in range(count):
        _, outcome, _ = open_one()
        if outcome != "opened":
            raise RuntimeError(f"growing the book: expected opened, got {outcome}")


def measure(open_one: Callable[[], tuple[float, str, int]], open_groups: int, closed: int) -> dict[str, Any]:
    """Time :data:`SIGNALS` new entries; the phase's figures."""
    seconds: list[float] = []
    calls: list[int] = []
    for _ in range(SIGNALS):
        elapsed, outcome, made = open_one()
        if outcome != "opened":
            raise RuntimeError(f"measuring: expected opened, got {outcome}")
        seconds.append(elapsed)
        calls.append(made)
    return {
        "open_groups": open_groups,
        "closed_groups": closed,
        "signals": SIGNALS,
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "aws_calls": round(sum(calls) / len(calls), 2),
    }


def run() -> None:
    """Run both phases, print the table and merge ``scaling`` into ``bench-results/webhook.json``."""
    phases = run_phases()
    small, large = phases
    ratio = large["p99_ms"] / small["p99_ms"]
    print_report(
        "Webhook scaling: opened signals with a small and a large book (one run)",
        ["open groups (at start)", "closed groups", "signals", "p50 ms", "p99 ms", "CPU p99 ms", "AWS calls"],
        [
            [
                f"{p['open_groups']:,}",
                f"{p['closed_groups']:,}",
                p["signals"],
                ms(p["p50_ms"] / 1000),
                ms(p["p99_ms"] / 1000),
                ms(p["cpu_p99_ms"] / 1000),
                p["aws_calls"],
            ]
            for p in phases
        ],
        notes=[
            f"p99 large / small = {ratio:.2f} (the design's bar: within 1.5); CPU p99 large / small = "
            f"{large['cpu_p99_ms'] / small['cpu_p99_ms']:.2f} (process time, less sensitive to machine load)",
            "each measured signal opens a group on a fresh key, so each phase's book grows by "
            f"{SIGNALS} while it is measured",
        ],
    )
    update_results("webhook", {"scaling": phases, "scaling_p99_ratio": round(ratio, 3)})
    sys.stdout.flush()


if __name__ == "__main__":
    run()
