"""Benchmark: the local runtime (`make run`) under a candle-close burst and over a long session.

Each part starts ``python -m engine.local`` as a subprocess on a fresh state directory (its own moto
server, stream pump and scheduler, the schedules at their `make run` defaults) and talks to it over
HTTP only, plus the runtime's AWS endpoint for config edits and for reading the paper exchange's book.

- **Burst**: 15 entry alerts on distinct keys sent at once (one thread each) to a fresh runtime with its
  default config, as TradingView delivers a candle close; min / median / max of the webhook's answers.
- **Soak**: ``BENCH_SOAK_SIGNALS`` (1,000) signals one after another in rounds of ``BENCH_SOAK_ROUND``
  (50) entries on distinct keys followed by the 50 exits of those keys, so closed history grows while
  the open book stays under 50 groups. Each signal is sent once the one before reached the exchange.
  For each signal the webhook's answer, and the time from sending it until its order was placed on the
  paper exchange (the order's own timestamp, looked up every 100 ms): an entry's first leg, an exit's
  close order (placed once the group's resting legs are cancelled).
  Resident memory of the runtime's process tree before the first and after the last signal, and the
  figures per quarter of the signals (the last quarter runs against the biggest history).

Figures go to ``bench-results/local.json``; nothing is asserted (DESIGN §8).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from engine.app.shared.closing import close_order_id
from engine.exchange.client_ids import client_order_id
from engine.local.settings import APP, STAGE, TABLE_VARIABLES
from tests.bench.common import median, ms, percentile, print_report, write_results

ROOT = Path(__file__).resolve().parents[2]
SOAK_SIGNALS = int(os.environ.get("BENCH_SOAK_SIGNALS", "1000"))
ROUND = int(os.environ.get("BENCH_SOAK_ROUND", "50"))
BURST = int(os.environ.get("BENCH_BURST", "15"))
POLL_SECONDS = 0.1
#: How the paper orders table stores an order's ``timestamp`` (pynamodb ``UTCDateTimeAttribute``).
PAPER_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"
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


# ---------------------------------------------------------------------- the runtime


@dataclass
class Runtime:
    """A running local runtime: its process, base URL, webhook secret and AWS endpoint."""

    process: subprocess.Popen[str]
    url: str
    secret: str
    endpoint: str
    output: list[str]

    def aws(self, service: str) -> Any:
        """A boto3 client against the runtime's moto endpoint."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


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
def local_runtime(state_dir: Path, **extra_env: str) -> Iterator[Runtime]:
    """Start ``python -m engine.local`` on a free port with its state in ``state_dir``; SIGTERM after."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
    env.update(
        PORT="0",
        PYTHONPATH=str(ROOT / "layers" / "engine" / "python"),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        LOCAL_STATE_DIR=str(state_dir),
        PYTHONUNBUFFERED="1",
        **extra_env,
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
        if not ready.wait(90) or process.poll() is not None:
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
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(child) for child in children)
                frontier.extend(int(child) for child in children)
    return pids


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants in MB (Linux)."""
    total_kb = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return round(total_kb / 1024, 1)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants so far (Linux)."""
    ticks = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{member}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- HTTP and signals


def http(method: str, url: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
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
    ssm = runtime.aws("ssm")
    engine = json.loads(ssm.get_parameter(Name=f"{prefix}engine")["Parameter"]["Value"])
    engine["max_open_per_symbol"] = 1000
    engine["max_total_exposure_usd"] = 1_000_000_000
    engine.setdefault("paper", {})["balance_usd"] = 1_000_000_000
    ssm.put_parameter(Name=f"{prefix}engine", Value=json.dumps(engine), Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{prefix}pool", Value=json.dumps({"max_open_groups": 1000}), Type="String", Overwrite=True
    )
    deadline = time.monotonic() + 30
    pool: Any = None
    while time.monotonic() < deadline:
        status, pool = http("GET", f"{runtime.url}/pool")
        accounts = pool.get("accounts", {}) if status == 200 else {}
        if accounts and all(account.get("max_open_groups") == 1000 for account in accounts.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the pool edit was not picked up: {pool}")


def set_prices(runtime: Runtime) -> None:
    """Paper prices for every symbol on every paper account."""
    status, answer = http("POST", f"{runtime.url}/_local/prices", {s: float(p) for s, p in PRICES.items()})
    if status != 200:
        raise RuntimeError(f"setting paper prices failed: {status} {answer}")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def entry(secret: str, key: tuple[str, str, int]) -> dict[str, Any]:
    """A long entry alert as TradingView sends it (default DCA: 5 limit legs)."""
    exchange, symbol, timeframe = key
    return {
        "secret": secret,
        "source": "tradingview",
        "timestamp": _now(),
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


def exit_(secret: str, key: tuple[str, str, int]) -> dict[str, Any]:
    """The strategy's closing alert (sell to flat) for the long group of ``key``."""
    exchange, symbol, timeframe = key
    return {
        "secret": secret,
        "source": "tradingview",
        "timestamp": _now(),
        "tv": {
            "exchange": exchange,
            "symbol": symbol.replace("/", ""),
            "timeframe": str(timeframe),
            "action": "sell",
            "market_position": "flat",
            "prev_market_position": "long",
            "close_price": PRICES[symbol],
        },
        "execution_intent": {"type": "exit", "side": "sell"},
    }


def keys() -> list[tuple[str, str, int]]:
    """Distinct (exchange, symbol, timeframe) keys, interleaved across exchanges and symbols (240)."""
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


def first_order_seconds(paper: Any, exchange: str, client_ids: list[str], sent_at: datetime) -> float | None:
    """Seconds from ``sent_at`` (just before the signal was sent) until the first of ``client_ids`` was
    placed on the paper exchange: the order's own ``timestamp``, stamped by the paper gateway when it
    accepts the order, so the figure does not depend on how often this client looks (it looks every
    ``POLL_SECONDS``, and each look is a request the runtime serves)."""
    wanted = [{"exchange": {"S": exchange}, "client_order_id": {"S": cid}} for cid in client_ids]
    deadline = time.monotonic() + ORDER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        answer = paper.batch_get_item(
            RequestItems={
                PAPER_TABLE: {
                    "Keys": wanted,
                    "ProjectionExpression": "#placed",
                    "ExpressionAttributeNames": {"#placed": "timestamp"},
                }
            }
        )
        placed = [
            datetime.strptime(item["timestamp"]["S"], PAPER_TIMESTAMP_FORMAT)
            for item in answer["Responses"].get(PAPER_TABLE, [])
            if "timestamp" in item
        ]
        if placed:
            return (min(placed) - sent_at).total_seconds()
        time.sleep(POLL_SECONDS)
    return None


# ---------------------------------------------------------------------- burst


def burst(runtime: Runtime, count: int) -> dict[str, Any]:
    """``count`` entry alerts on distinct keys at once; the answers' seconds and outcomes."""
    bodies = [json.dumps(entry(runtime.secret, key)).encode() for key in keys()[:count]]
    seconds: list[float] = [0.0] * count
    outcomes: list[str] = [""] * count
    gate = threading.Barrier(count)

    def send(index: int) -> None:
        gate.wait()
        start = time.perf_counter()
        status, answer = http("POST", f"{runtime.url}/webhook", bodies[index])
        seconds[index] = time.perf_counter() - start
        outcomes[index] = f"{status} {answer.get('outcome') if isinstance(answer, dict) else answer}"

    threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counted: dict[str, int] = {}
    for outcome in outcomes:
        counted[outcome] = counted.get(outcome, 0) + 1
    return {
        "alerts": count,
        "min_ms": round(min(seconds) * 1000, 1),
        "median_ms": round(median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "outcomes": counted,
    }


# ---------------------------------------------------------------------- soak


@dataclass
class Sample:
    """One signal of the soak."""

    kind: str
    webhook: float
    first_order: float | None = None
    problem: str | None = None


@dataclass
class Soak:
    """What the soak measured."""

    samples: list[Sample] = field(default_factory=list)
    rss_before: float = 0.0
    rss_after: float = 0.0
    rss_by_quarter: list[float] = field(default_factory=list)
    cpu_by_quarter: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _awaited_orders(
    runtime: Runtime,
    sample: Sample,
    key: tuple[str, str, int],
    status: int,
    answer: Any,
    groups: dict[tuple[str, str, int], str],
) -> list[str]:
    """Client ids of the orders that show the signal reached the exchange: an entry's legs, an exit's
    close order; none (and ``sample.problem`` set) when the answer was not the expected one."""
    outcome = answer.get("outcome") if isinstance(answer, dict) else None
    if sample.kind == "entry":
        group_id = answer.get("group_id") if isinstance(answer, dict) else None
        if status != 202 or outcome != "opened" or not group_id:
            sample.problem = f"entry {status} {outcome}"
            return []
        groups[key] = group_id
        return entry_client_ids(runtime, group_id)
    if status != 202 or outcome not in ("exited", "ignored"):
        sample.problem = f"exit {status} {outcome}"
        return []
    group_id = groups.pop(key, None)
    return [client_order_id(close_order_id(group_id, []))] if group_id else []


def soak(runtime: Runtime, signals: int, round_size: int) -> Soak:
    """``signals`` signals in rounds: ``round_size`` entries on distinct keys, then their exits.

    Each signal is sent once the one before it reached the exchange: an entry's first leg, an exit's
    close order (the sell that flattens the group, placed once its resting legs are cancelled).
    """
    paper = runtime.aws("dynamodb")
    all_keys = keys()
    plan: list[tuple[str, tuple[str, str, int]]] = []
    offset = 0
    while len(plan) < signals:
        window = [all_keys[(offset + i) % len(all_keys)] for i in range(round_size)]
        offset += round_size
        plan.extend(("entry", key) for key in window)
        plan.extend(("exit", key) for key in window)
    plan = plan[:signals]
    quarter = max(1, signals // 4)
    groups: dict[tuple[str, str, int], str] = {}
    result = Soak(rss_before=tree_rss_mb(runtime.process.pid))
    cpu_mark = tree_cpu_seconds(runtime.process.pid)
    started = time.perf_counter()
    for index, (kind, key) in enumerate(plan, start=1):
        body = json.dumps((entry if kind == "entry" else exit_)(runtime.secret, key)).encode()
        sent_at, start = datetime.now(UTC), time.perf_counter()
        status, answer = http("POST", f"{runtime.url}/webhook", body)
        sample = Sample(kind, time.perf_counter() - start)
        result.samples.append(sample)
        ids = _awaited_orders(runtime, sample, key, status, answer, groups)
        if ids:
            sample.first_order = first_order_seconds(paper, key[0], ids, sent_at)
            if sample.first_order is None:
                sample.problem = f"no {kind} order on the exchange within {ORDER_TIMEOUT_SECONDS:.0f} s"
        if index % quarter == 0 or index == len(plan):
            cpu_now = tree_cpu_seconds(runtime.process.pid)
            result.cpu_by_quarter.append(cpu_now - cpu_mark)
            cpu_mark = cpu_now
            result.rss_by_quarter.append(tree_rss_mb(runtime.process.pid))
            print(
                f"  soak: {index}/{len(plan)} signals, {time.perf_counter() - started:.0f} s, "
                f"RSS {result.rss_by_quarter[-1]} MB",
                flush=True,
            )
    result.seconds = time.perf_counter() - started
    result.rss_after = tree_rss_mb(runtime.process.pid)
    return result


def _percentile_ms(seconds: list[float], pct: float) -> float | None:
    """The ``pct`` percentile of ``seconds`` in ms (one decimal), None when there are none."""
    return round(percentile(seconds, pct) * 1000, 1) if seconds else None


def quarters(result: Soak) -> list[dict[str, Any]]:
    """Per quarter of the signals, p50/p99 in ms: the webhook's answer, entry → first leg on the exchange
    (``first_order``), exit → close order on the exchange (``exit_close``)."""
    size = max(1, len(result.samples) // 4)
    figures = []
    for number in range(4):
        part = result.samples[number * size : (number + 1) * size if number < 3 else None]
        hooks = [sample.webhook for sample in part]
        firsts = [s.first_order for s in part if s.kind == "entry" and s.first_order is not None]
        closes = [s.first_order for s in part if s.kind == "exit" and s.first_order is not None]
        figures.append(
            {
                "signals": len(part),
                "webhook_p50_ms": _percentile_ms(hooks, 50),
                "webhook_p99_ms": _percentile_ms(hooks, 99),
                "first_order_p50_ms": _percentile_ms(firsts, 50),
                "first_order_p99_ms": _percentile_ms(firsts, 99),
                "exit_close_p50_ms": _percentile_ms(closes, 50),
                "exit_close_p99_ms": _percentile_ms(closes, 99),
                "cpu_seconds": round(result.cpu_by_quarter[number], 1)
                if number < len(result.cpu_by_quarter)
                else None,
                "rss_mb": result.rss_by_quarter[number] if number < len(result.rss_by_quarter) else None,
            }
        )
    return figures


# ---------------------------------------------------------------------- report


def run() -> None:
    """The burst, then the soak, each on a fresh runtime; print the tables, write local.json."""
    with tempfile.TemporaryDirectory(prefix="bench-local-") as scratch:
        with local_runtime(Path(scratch) / "burst") as runtime:
            set_prices(runtime)
            burst_figures = burst(runtime, BURST)
        with local_runtime(Path(scratch) / "soak") as runtime:
            widen_limits(runtime)
            set_prices(runtime)
            result = soak(runtime, SOAK_SIGNALS, ROUND)
            dead = http("GET", f"{runtime.url}/_local/status")[1].get("dead_letters", [])
    print_report(
        f"Local runtime: a burst of {BURST} alerts on distinct keys against a fresh runtime",
        ["alerts", "min ms", "median ms", "max ms", "answers"],
        [
            [
                burst_figures["alerts"],
                burst_figures["min_ms"],
                burst_figures["median_ms"],
                burst_figures["max_ms"],
                ", ".join(f"{k}: {v}" for k, v in burst_figures["outcomes"].items()),
            ]
        ],
        ["every alert sent at the same moment from its own thread (TradingView gives up after 3 s)"],
    )
    per_quarter = quarters(result)
    rows = [
        [
            f"Q{number}",
            figures["signals"],
            figures["webhook_p50_ms"],
            figures["webhook_p99_ms"],
            figures["first_order_p50_ms"],
            figures["first_order_p99_ms"],
            figures["exit_close_p50_ms"],
            figures["exit_close_p99_ms"],
            figures["cpu_seconds"],
            figures["rss_mb"],
        ]
        for number, figures in enumerate(per_quarter, start=1)
    ]
    problems: dict[str, int] = {}
    for sample in result.samples:
        if sample.problem:
            problems[sample.problem] = problems.get(sample.problem, 0) + 1
    hooks = [sample.webhook for sample in result.samples]
    firsts = [s.first_order for s in result.samples if s.kind == "entry" and s.first_order is not None]
    notes = [
        f"{len(result.samples)} signals in rounds of {ROUND} entries on distinct exchange/symbol/timeframe "
        f"keys then their {ROUND} exits, each sent once the one before reached the exchange; "
        f"{result.seconds:.0f} s in all; "
        "schedules at their `make run` defaults (order_sync asked every second, risk every 30 s)",
        f"webhook p50 {ms(percentile(hooks, 50))} / p99 {ms(percentile(hooks, 99))} ms overall; "
        + (
            f"signal → first entry order p50 {ms(percentile(firsts, 50))} / "
            f"p99 {ms(percentile(firsts, 99))} ms"
            if firsts
            else "no first order measured"
        ),
        f"resident memory of the runtime's process tree: {result.rss_before} MB before the signals, "
        f"{result.rss_after} MB after",
        "CPU s: user + system seconds the runtime spent during the quarter (the client's polling included)",
    ]
    if problems:
        notes.append("not measured: " + ", ".join(f"{k}: {v}" for k, v in problems.items()))
    if dead:
        notes.append(f"dead letters in the stream pump: {len(dead)}")
    print_report(
        "Local runtime soak: signals in rounds (entries, then their exits)",
        [
            "quarter",
            "signals",
            "webhook p50",
            "webhook p99",
            "1st order p50",
            "1st order p99",
            "exit close p50",
            "exit close p99",
            "CPU s",
            "RSS MB",
        ],
        rows,
        notes,
    )
    write_results(
        "local",
        {
            "signals": len(result.samples),
            "round": ROUND,
            "seconds": round(result.seconds, 1),
            "rss_mb_before": result.rss_before,
            "rss_mb_after": result.rss_after,
            "quarters": per_quarter,
            "problems": problems,
            "dead_letters": len(dead),
            "burst": burst_figures,
        },
    )


if __name__ == "__main__":
    run()
