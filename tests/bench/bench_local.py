"""Benchmark: the local runtime end to end — signal received → order on the paper exchange.

Starts ``python -m engine.local`` as a subprocess (its own moto server, stream pump and scheduler),
widens the pool and limits through SSM at the runtime's AWS endpoint (as an operator would), then
sends entry signals one at a time for distinct (exchange, symbol, timeframe) keys. For each signal it
measures the webhook's answer, reads the legs' client order ids once (``GET /groups/{id}``), then polls
the paper exchange's order book (the paper orders table, at the runtime's AWS endpoint) until the first
entry leg is in it and until every entry leg is.

The scheduled functions (order_sync, risk_engine) are set to a one-hour period so their passes over a
growing book do not land inside the measured path; everything else runs as ``make run`` runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from engine.local.settings import APP, STAGE, TABLE_VARIABLES
from tests.bench.common import ms, percentile, print_report

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = int(os.environ.get("BENCH_LOCAL_SIGNALS", "200"))
#: Stop sending after this many seconds (keeps `make bench` bounded on a busy machine); the table says so.
BUDGET_SECONDS = float(os.environ.get("BENCH_LOCAL_BUDGET_SECONDS", "150"))
POLL_SECONDS = 0.025
ORDER_TIMEOUT_SECONDS = 30.0
#: The paper exchange's order book (engine.store PAPER_ORDERS_TABLE, local default name).
PAPER_TABLE = f"{APP}-{STAGE}-{TABLE_VARIABLES['PAPER_ORDERS_TABLE']}"
PRICES = {
    "BTC/USDT": "60000",
    "ETH/USDT": "3000",
    "SOL/USDT": "150",
    "BNB/USDT": "600",
    "XRP/USDT": "0.6",
    "DOGE/USDT": "0.15",
    "ADA/USDT": "0.45",
    "AVAX/USDT": "30",
    "LINK/USDT": "15",
    "LTC/USDT": "80",
}
EXCHANGES = ("binance", "bybit", "okx")
TIMEFRAMES = (1, 3, 5, 15, 30, 60, 120, 240)


@dataclass
class Runtime:
    """A running local runtime: its process, base URL, webhook secret and AWS endpoint."""

    process: subprocess.Popen[str]
    url: str
    secret: str
    endpoint: str
    output: list[str]


def _reader(process: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if "local runtime ready" in line or "failed to start" in line:
            ready.set()
    ready.set()


def _banner_value(lines: list[str], label: str) -> str:
    for line in lines:
        match = re.match(rf"\s*{re.escape(label)}:\s+(\S+)", line)
        if match:
            return match.group(1)
    raise RuntimeError(f"no {label!r} in the runtime banner:\n" + "\n".join(lines[-20:]))


@contextlib.contextmanager
def local_runtime() -> Iterator[Runtime]:
    """Start ``python -m engine.local`` on a free port; stop it (SIGTERM) afterwards."""
    env = dict(os.environ)
    env.update(
        PORT="0",
        PYTHONPATH=str(ROOT / "layers" / "engine" / "python"),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        LOCAL_SYNC_SECONDS="3600",
        LOCAL_RISK_SECONDS="3600",
        CONFIG_MAX_AGE_SECONDS="1",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.local"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_reader, args=(process, lines, ready), daemon=True).start()
    try:
        if not ready.wait(60) or process.poll() is not None:
            raise RuntimeError("local runtime did not start:\n" + "\n".join(lines[-30:]))
        webhook_url = _banner_value(lines, "Webhook URL")
        yield Runtime(
            process=process,
            url=webhook_url.rsplit("/webhook", 1)[0],
            secret=_banner_value(lines, "Webhook secret"),
            endpoint=_banner_value(lines, "AWS endpoint"),
            output=lines,
        )
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def resident_mb(pid: int) -> int | str:
    """Resident memory of process ``pid`` in MB (Linux), or "n/a"."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return "n/a"


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """A JSON request; (status, parsed body)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def widen_limits(runtime: Runtime) -> None:
    """Pool of 1,000 groups, no per-symbol or exposure limit in the way, a deep paper balance."""
    _, info = http("GET", f"{runtime.url}/_local/info")
    prefix = info["parameter_prefix"]
    ssm = boto3.client(
        "ssm",
        endpoint_url=runtime.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    engine = json.loads(ssm.get_parameter(Name=f"{prefix}engine")["Parameter"]["Value"])
    engine["max_open_per_symbol"] = 1000
    engine["max_total_exposure_usd"] = 1_000_000_000
    engine.setdefault("paper", {})["balance_usd"] = 1_000_000_000
    ssm.put_parameter(Name=f"{prefix}engine", Value=json.dumps(engine), Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{prefix}pool", Value=json.dumps({"max_open_groups": 1000}), Type="String", Overwrite=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, pool = http("GET", f"{runtime.url}/pool")
        accounts = pool.get("accounts", {}) if status == 200 else {}
        if accounts and all(account.get("max_open_groups") == 1000 for account in accounts.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the pool edit was not picked up: {pool}")


def signal(secret: str, exchange: str, symbol: str, timeframe: int) -> dict[str, Any]:
    """An entry alert as TradingView sends it."""
    return {
        "secret": secret,
        "source": "tradingview",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tv": {
            "exchange": exchange,
            "symbol": symbol.replace("/", ""),
            "timeframe": str(timeframe),
            "action": "buy",
            "market_position": "long",
            "entry_price": PRICES[symbol],
            "close_price": PRICES[symbol],
        },
        "execution_intent": {"type": "signal", "side": "buy", "position_size_type": "quote"},
    }


def keys() -> list[tuple[str, str, int]]:
    """Distinct (exchange, symbol, timeframe) keys, interleaved across exchanges and symbols."""
    return [
        (exchange, symbol, timeframe)
        for timeframe in TIMEFRAMES
        for symbol in PRICES
        for exchange in EXCHANGES
    ]


def entry_client_ids(runtime: Runtime, group_id: str) -> list[str]:
    """Client order ids of the group's entry legs (written with the group, before any is sent)."""
    status, answer = http("GET", f"{runtime.url}/groups/{group_id}")
    if status != 200:
        raise RuntimeError(f"GET /groups/{group_id} answered {status}: {answer}")
    return [o["client_order_id"] for o in answer.get("orders", []) if o.get("purpose") == "entry"]


def wait_for_orders(
    paper: Any, exchange: str, client_ids: list[str], start: float
) -> tuple[float | None, float | None]:
    """Seconds from ``start`` until the first, and every, entry order is in the paper exchange's book."""
    keys = [{"exchange": {"S": exchange}, "client_order_id": {"S": cid}} for cid in client_ids]
    first: float | None = None
    deadline = start + ORDER_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        answer = paper.batch_get_item(
            RequestItems={PAPER_TABLE: {"Keys": keys, "ProjectionExpression": "client_order_id"}}
        )
        found = len(answer["Responses"].get(PAPER_TABLE, []))
        now = time.perf_counter() - start
        if found and first is None:
            first = now
        if found == len(keys):
            return first, now
        time.sleep(POLL_SECONDS)
    return first, None


def run() -> None:
    """Start the runtime, send the signals, print the table."""
    acks: list[float] = []
    firsts: list[float] = []
    alls: list[float] = []
    problems: dict[str, int] = {}
    with local_runtime() as runtime:
        widen_limits(runtime)
        status, _ = http("POST", f"{runtime.url}/_local/prices", {s: float(p) for s, p in PRICES.items()})
        if status != 200:
            raise RuntimeError(f"setting paper prices failed: {status}")
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=runtime.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        rss_start = resident_mb(runtime.process.pid)
        started = time.perf_counter()
        sent = 0
        for exchange, symbol, timeframe in keys()[:SIGNALS]:
            if time.perf_counter() - started > BUDGET_SECONDS:
                break
            sent += 1
            body = json.dumps(signal(runtime.secret, exchange, symbol, timeframe)).encode()
            start = time.perf_counter()
            status, answer = http("POST", f"{runtime.url}/webhook", body)
            acks.append(time.perf_counter() - start)
            group_id = answer.get("group_id") if isinstance(answer, dict) else None
            if status != 202 or answer.get("outcome") != "opened" or not group_id:
                label = f"{status} {answer.get('outcome') if isinstance(answer, dict) else answer}"
                problems[label] = problems.get(label, 0) + 1
                continue
            first, every = wait_for_orders(dynamodb, exchange, entry_client_ids(runtime, group_id), start)
            if first is None:
                problems["no order on the exchange within 30 s"] = (
                    problems.get("no order on the exchange within 30 s", 0) + 1
                )
                continue
            firsts.append(first)
            if every is not None:
                alls.append(every)
        total = time.perf_counter() - started
        rss_end = resident_mb(runtime.process.pid)
        dead = http("GET", f"{runtime.url}/_local/status")[1].get("dead_letters", [])
    rows: list[list[object]] = []
    quarter = max(1, len(firsts) // 4)
    for label, values in (
        ("webhook answered (202 opened)", acks),
        ("signal → first entry order on the paper exchange", firsts),
        ("signal → every entry leg on the paper exchange", alls),
        ("  first order, first quarter of the signals", firsts[:quarter]),
        ("  first order, last quarter (bigger book)", firsts[-quarter:]),
    ):
        rows.append(
            [
                label,
                len(values),
                ms(percentile(values, 50)) if values else "-",
                ms(percentile(values, 99)) if values else "-",
                ms(max(values)) if values else "-",
            ]
        )
    notes = [
        f"{sent} entry signals sent one after another for distinct exchange/symbol/timeframe keys "
        f"(5 limit legs each, default DCA); {total:.1f} s in all",
        "path: HTTP → webhook handler → DynamoDB (moto server) → stream pump (0.2 s poll) → order_executor "
        "→ paper exchange; measured by reading the paper order book (BatchGetItem on the legs' client "
        "order ids at the runtime's AWS endpoint) every 25 ms",
        "order_sync/risk_engine schedules set to 1 h so they stay out of the measured path",
    ]
    if sent < SIGNALS:
        notes.append(
            f"time budget of {BUDGET_SECONDS:.0f} s reached after {sent} of {SIGNALS} signals "
            "(BENCH_LOCAL_BUDGET_SECONDS)"
        )
    notes.append(f"runtime process resident memory: {rss_start} MB before the signals, {rss_end} MB after")
    if problems:
        notes.append("not measured: " + ", ".join(f"{k}: {v}" for k, v in problems.items()))
    if dead:
        notes.append(f"dead letters in the stream pump: {len(dead)}")
    print_report(
        "Local runtime: signal received → order on the paper exchange",
        ["measure", "signals", "p50 ms", "p99 ms", "max ms"],
        rows,
        notes,
    )


if __name__ == "__main__":
    run()
