"""Benchmark: the webhook function in-process under moto — latency per signal and AWS calls per outcome.

Tables come from ``engine.store.create_all_tables``, config from ``engine.config.seed_defaults`` plus the
webhook secret; the limits are widened through SSM (per-symbol and exposure caps out of the way, a pool of
40). The handler module ``functions/webhook/handler.py`` is loaded and invoked the way the local runtime
does it (``engine.local.functions``) with API Gateway events from ``engine.local.events``. Logging and
metrics stay as deployed (LOG_LEVEL=INFO, EMF on) with the process's stdout sent to /dev/null while the
signals run.

500 signals in a scripted sequence give every outcome: groups opened, entries rejected by the rules
(a leg under the market minimums), pyramids added (up to ``max_pyramids``) then ignored, entries queued
once the pool is full and later replaced, exits that close a group or find nothing, input refused with
4xx (bad secret, unknown symbol, stale timestamp) and exact resends answered from the idempotency record.
AWS calls are counted by wrapping ``botocore.client.BaseClient._make_api_call`` (boto3, pynamodb and
Powertools all go through it). The figures per outcome (p50/p99 ms, mean AWS calls and calls per
operation) are written to ``bench-results/webhook.json`` under ``outcomes`` (resends as
``resend:<outcome>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.common import ms, percentile, print_report, table, update_results

ROOT = Path(__file__).resolve().parents[2]
POOL_SIZE = 20
SYMBOLS = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "DOGE/USDT",
    "ADA/USDT",
    "AVAX/USDT",
    "LINK/USDT",
    "LTC/USDT",
)
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
MARKETS = [(exchange, symbol) for symbol in SYMBOLS for exchange in EXCHANGES]  # 30
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "CONFIG_MAX_AGE_SECONDS": "30",
    "LOG_LEVEL": "INFO",
    "POWERTOOLS_SERVICE_NAME": "execution-engine-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "ExecutionEngine",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
SECRET = "bench-webhook-secret-0123456789"


@dataclass(frozen=True)
class Planned:
    """One signal of the script: its body and the label of what it is meant to exercise."""

    label: str
    exchange: str
    symbol: str
    timeframe: int
    exit: bool = False
    age_seconds: int = 0
    secret: str = SECRET
    order_size: str | None = None
    trade_id: str = "t"
    #: Send the same body again right after (a TradingView resend): answered from the idempotency record.
    resend: bool = False


@dataclass
class Sent:
    """What one signal got: the answer, its latency and the AWS calls it made."""

    label: str
    status: int
    outcome: str
    seconds: float
    calls: Counter[str] = field(default_factory=Counter)


def script() -> list[Planned]:
    """The 500 signals, in sending order (see the module doc).

    The book stays small (20 groups, at most 300 live entry orders). The pre-trade checks no longer read
    the book (one batch read of the key's state and the per-account counters, DESIGN §1), so the size
    of the book no longer shows in these figures.
    """
    pyramid_markets = MARKETS[:10]  # timeframe 1: opened, then 4 pyramids each, then one too many
    exit_markets = MARKETS[10:20]  # timeframe 2: opened, later closed by an exit signal
    queue_markets = MARKETS[20:30]  # timeframe 2: queued (pool full), later replaced
    plan: list[Planned] = []
    plan += [
        Planned("rule reject (leg under minimum)", e, s, tf, order_size="1")
        for tf in (10, 11)
        for e, s in MARKETS[:20]
    ]
    plan += [Planned("open", e, s, 1, age_seconds=240, resend=True) for e, s in pyramid_markets]
    plan += [Planned("open", e, s, 2, age_seconds=240) for e, s in exit_markets]  # pool now full (20)
    plan += [Planned("entry, pool full", e, s, 2, age_seconds=240) for e, s in queue_markets]
    plan += [Planned("entry, pool full", e, s, tf, trade_id="q") for tf in (5, 15) for e, s in MARKETS]
    plan += [Planned("entry again, later candle", e, s, 2, trade_id="r") for e, s in queue_markets]
    for round_index, age in enumerate((180, 120, 60, 0), start=2):
        plan += [
            Planned(
                "pyramid", e, s, 1, age_seconds=age, trade_id=f"p{round_index}", resend=round_index in (2, 3)
            )
            for e, s in pyramid_markets
        ]
    plan += [Planned("pyramid past max_pyramids", e, s, 1, trade_id="p6") for e, s in pyramid_markets]
    plan += [
        Planned("exit, nothing open", e, s, tf, exit=True)
        for tf in (7, 8, 9, 12, 13, 14, 16)
        for e, s in MARKETS
    ]
    plan += [Planned("exit of an open group", e, s, 2, exit=True) for e, s in exit_markets]
    plan += [Planned("bad secret (403)", e, s, 1, secret="wrong-secret") for e, s in MARKETS[:20]]
    plan += [Planned("unknown symbol (400)", e, "NOPE/USDT", 1) for e in EXCHANGES for _ in range(7)][:20]
    plan += [Planned("stale timestamp (400)", e, s, 1, age_seconds=400) for e, s in MARKETS[:20]]
    return plan


def body_of(item: Planned, sent_at: datetime) -> str:
    """The alert JSON for ``item`` sent at ``sent_at`` (timestamp = sent_at - age)."""
    price = PRICES.get(item.symbol, "1")
    stamp = (sent_at - timedelta(seconds=item.age_seconds)).isoformat().replace("+00:00", "Z")
    tv: dict[str, Any] = {
        "exchange": item.exchange,
        "symbol": item.symbol.replace("/", ""),
        "timeframe": str(item.timeframe),
        "action": "sell" if item.exit else "buy",
        "market_position": "flat" if item.exit else "long",
        "entry_price": price,
        "close_price": price,
    }
    if item.order_size is not None:
        tv["order_size"] = item.order_size
    return json.dumps(
        {
            "secret": item.secret,
            "source": "tradingview",
            "timestamp": stamp,
            "tv": tv,
            "strategy_info": {"trade_id": item.trade_id},
            "execution_intent": {
                "type": "exit" if item.exit else "signal",
                "side": "sell" if item.exit else "buy",
                "position_size_type": "quote",
            },
        }
    )


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null (the handler's JSON logs and EMF metrics)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (null, *saved):
            os.close(fd)


class CallCounter:
    """Counts botocore API calls ("service.Operation") while installed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap ``BaseClient._make_api_call`` for the duration."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self.calls

        def counting(client: Any, operation_name: str, api_params: Any) -> Any:
            counter[f"{client.meta.service_model.service_name}.{operation_name}"] += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]

    def take(self) -> Counter[str]:
        """The calls since the last take."""
        taken = Counter(self.calls)
        self.calls.clear()
        return taken


def widen_limits() -> None:
    """Per-symbol and exposure caps out of the way, a pool of :data:`POOL_SIZE` (SSM, as an operator)."""
    import boto3

    from engine.config import clear_cache
    from engine.config.settings import config_prefix

    ssm = boto3.client("ssm", region_name="us-east-1")
    prefix = config_prefix(None)
    engine = json.loads(ssm.get_parameter(Name=f"{prefix}engine")["Parameter"]["Value"])
    engine["max_open_per_symbol"] = 1000
    engine["max_total_exposure_usd"] = 1_000_000_000
    ssm.put_parameter(Name=f"{prefix}engine", Value=json.dumps(engine), Type="String", Overwrite=True)
    # Pools are per account (DESIGN §3.10): each account's is sized to fill after the script's first
    # POOL_SIZE groups (MARKETS[:20] holds 7 binance, 7 bybit and 6 okx keys), so the next entries queue.
    per_account = {
        exchange: sum(1 for e, _ in MARKETS[:POOL_SIZE] if e == exchange) for exchange in EXCHANGES
    }
    pool = {
        "max_open_groups": POOL_SIZE,
        "accounts": {name: {"max_open_groups": size} for name, size in per_account.items()},
    }
    ssm.put_parameter(Name=f"{prefix}pool", Value=json.dumps(pool), Type="String", Overwrite=True)
    clear_cache()


def run_script() -> tuple[list[Sent], list[str]]:
    """Set up moto, run the script through the handler; (results, unexpected outcomes)."""
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
    results: list[Sent] = []
    surprises: list[str] = []
    with mock_aws():
        reset_connections()
        create_all_tables()
        seed_defaults()
        seed_webhook_secret(SECRET)
        widen_limits()
        registry = FunctionRegistry(ROOT / "functions", "us-east-1")
        handler = registry.handler("webhook")
        counter = CallCounter()
        plan = script()

        def send(body: str) -> tuple[int, dict[str, Any], float]:
            event = api_gateway_event(
                method="POST",
                path="/webhook",
                query="",
                resource="/webhook",
                source_ip="52.89.214.238",
                headers=[("Content-Type", "text/plain; charset=utf-8"), ("User-Agent", "Go-http-client/1.1")],
                body=body.encode(),
            )
            start = time.perf_counter()
            response = handler(event, registry.context("webhook"))
            elapsed = time.perf_counter() - start
            return int(response["statusCode"]), json.loads(response["body"]), elapsed

        with counter.installed(), quiet_stdout():
            # Warm-up (not measured): first config and secret reads, idempotency layer creation.
            send(body_of(Planned("warm-up", "binance", "BTC/USDT", 17, exit=True), datetime.now(UTC)))
            counter.take()
            for item in plan:
                body = body_of(item, datetime.now(UTC))
                for label in (item.label, RESEND) if item.resend else (item.label,):
                    status, answer, elapsed = send(body)
                    outcome = str(answer.get("outcome") if status == 202 else answer.get("error", status))
                    results.append(Sent(label, status, outcome, elapsed, counter.take()))
        reset_connections()
    for sent in results:
        if not _expected(sent):
            surprises.append(f"{sent.label}: {sent.status} {sent.outcome}")
    return results, surprises


RESEND = "exact resend (idempotent)"
_EXPECTED = {
    "open": "opened",
    "rule reject (leg under minimum)": "rejected",
    "pyramid": "pyramided",
    "pyramid past max_pyramids": "ignored",
    "entry, pool full": "queued",
    "entry again, later candle": "replaced",
    "exit, nothing open": "ignored",
    "exit of an open group": "exited",
    "bad secret (403)": "bad_secret",
    "unknown symbol (400)": "unknown_symbol",
    "stale timestamp (400)": "stale_signal",
}


def _expected(sent: Sent) -> bool:
    wanted = _EXPECTED.get(sent.label)
    return wanted is None or wanted == sent.outcome


def run() -> None:
    """Run the script and print the tables."""
    results, surprises = run_script()
    groups: dict[str, list[Sent]] = defaultdict(list)
    for sent in results:
        key = f"{sent.outcome} ({sent.status})"
        if sent.label == RESEND:
            key = f"resend → {key}"
        groups[key].append(sent)
    rows: list[list[object]] = []
    operations: list[list[object]] = []
    outcomes: dict[str, dict[str, Any]] = {}
    everything = [sent.seconds for sent in results]
    for key, sents in sorted(groups.items(), key=lambda item: -len(item[1])):
        seconds = [s.seconds for s in sents]
        calls = [sum(s.calls.values()) for s in sents]
        rows.append(
            [
                key,
                len(sents),
                ms(percentile(seconds, 50)),
                ms(percentile(seconds, 99)),
                f"{sum(calls) / len(calls):.1f}",
                f"{min(calls)}-{max(calls)}",
            ]
        )
        merged: Counter[str] = Counter()
        for s in sents:
            merged.update(s.calls)
        name = sents[0].outcome if sents[0].label != RESEND else f"resend:{sents[0].outcome}"
        outcomes[name] = {
            "signals": len(sents),
            "status": sents[0].status,
            "p50_ms": round(percentile(seconds, 50) * 1000, 3),
            "p99_ms": round(percentile(seconds, 99) * 1000, 3),
            "aws_calls": round(sum(calls) / len(calls), 2),
            "aws_calls_max": max(calls),
            "operations": {op: round(count / len(sents), 2) for op, count in sorted(merged.items())},
        }
        operations.append(
            [
                key,
                ", ".join(
                    f"{op} {count / len(sents):.1f}"
                    for op, count in sorted(merged.items(), key=lambda item: (-item[1], item[0]))
                )
                or "-",
            ]
        )
    rows.append(
        [
            "all signals",
            len(results),
            ms(percentile(everything, 50)),
            ms(percentile(everything, 99)),
            f"{sum(sum(s.calls.values()) for s in results) / len(results):.1f}",
            "",
        ]
    )
    notes = [
        "in-process: handler → Powertools → pynamodb/boto3 → moto (mock_aws); AWS calls = botocore API calls",
        f"pool {POOL_SIZE}, per-symbol/exposure caps lifted, config cache 30 s (SSM reads amortised)",
    ]
    if surprises:
        notes.append(f"unexpected outcomes ({len(surprises)}): " + "; ".join(sorted(set(surprises))[:8]))
    print_report(
        f"Webhook: latency per signal and AWS calls by outcome ({len(results)} signals)",
        ["outcome (HTTP status)", "signals", "p50 ms", "p99 ms", "AWS calls (mean)", "range"],
        rows,
        notes,
    )
    print("\nAWS calls per signal by operation (mean):\n")
    print(table(["outcome", "calls"], operations))
    update_results(
        "webhook", {"outcomes": outcomes, "signals": len(results), "surprises": sorted(set(surprises))}
    )
    sys.stdout.flush()


if __name__ == "__main__":
    run()
