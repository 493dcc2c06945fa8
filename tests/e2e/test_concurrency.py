"""200 signals for 50 symbols from 8 threads against the local runtime with a pool of 10.

A private runtime (the pool size is global): 40 extra paper markets through ``engine.paper.markets``
(an SSM edit, as in the console), prices for all 50 symbols, the pool set to 10. Per symbol four entry
signals: the 1-minute key twice (the second in the same candle, or the next one), and the 5- and
15-minute keys — 150 keys competing for 10 slots. While the threads fire, a sampler polls
``GET /pool`` and ``GET /groups``. Then:

- no sample ever shows more than 10 open groups (pool counter or listing);
- exactly 10 groups were opened (no close happens meanwhile), each accepted signal has exactly one
  set of orders (one entry order per leg of each pyramid it created, nothing else);
- every other signal was queued, replaced, ignored or rejected, with a reason; the queue holds
  exactly the keys that were queued, once each.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.stack import LocalStack, entry_signal

pytestmark = pytest.mark.e2e

POOL = 10
THREADS = 8
BUILT_IN = {
    "BTC": 60000.0,
    "ETH": 3000.0,
    "SOL": 150.0,
    "BNB": 600.0,
    "XRP": 0.6,
    "DOGE": 0.15,
    "ADA": 0.45,
    "AVAX": 35.0,
    "LINK": 15.0,
    "LTC": 80.0,
}
#: 40 made-up bases (TAA ... TBN), priced 10..49 USDT.
EXTRA = {f"T{chr(65 + i // 26)}{chr(65 + i % 26)}": float(10 + i) for i in range(40)}
EXTRA_RULES = {"tick": "0.001", "step": "0.01", "min_qty": "0.01", "min_notional": "5"}
TIMEFRAMES = ("1", "1", "5", "15")
NOT_ACCEPTED = ("queued", "replaced", "ignored", "rejected")
#: How long a 5xx answer is resent (the webhook's in-progress marker lives for the invocation timeout).
RESEND_FOR_SECONDS = 45


def configure(stack: LocalStack) -> None:
    """Pool of 10, the 40 extra markets, prices for all 50 symbols."""
    stack.edit_config("pool", {"max_open_groups": POOL})
    ssm = stack.aws_client("ssm")
    name = stack.info["parameter_prefix"] + "engine"
    document = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    paper = document.get("paper") or {}
    paper["markets"] = {**(paper.get("markets") or {}), **{f"{base}/USDT": EXTRA_RULES for base in EXTRA}}
    stack.edit_config("engine", {"paper": paper})
    stack.prices({f"{base}/USDT": price for base, price in {**BUILT_IN, **EXTRA}.items()})


def signals(secret: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(symbol, timeframe, payload) for 4 entries per symbol, shuffled."""
    batch = [
        (
            f"{base}/USDT",
            timeframe,
            entry_signal(secret, f"{base}USDT", price, size_usd=250, timeframe=timeframe),
        )
        for base, price in {**BUILT_IN, **EXTRA}.items()
        for timeframe in TIMEFRAMES
    ]
    random.Random(8).shuffle(batch)
    return batch


class Sampler(threading.Thread):
    """Polls GET /pool and GET /groups until stopped; keeps (pool open, pool max, listed open groups)."""

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.samples: list[tuple[int, int, int]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                pool = self.stack.pool("binance")
                listed = len(self.stack.get("/groups")["groups"])
                self.samples.append((pool["open"], pool["max_open_groups"], listed))
            except Exception as exc:  # a failed poll is a finding, not a reason to stop sampling
                self.errors.append(repr(exc))
            time.sleep(0.2)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)


def test_two_hundred_concurrent_signals_never_exceed_the_pool(start_stack: StartStack) -> None:
    stack = start_stack("concurrency")
    configure(stack)
    batch = signals(stack.secret)
    sampler = Sampler(stack)
    sampler.start()
    start = threading.Barrier(THREADS)

    resends: Counter[str] = Counter()

    def send_like_tradingview(payload: dict[str, Any]) -> tuple[int, Any]:
        """POST the alert; on a 5xx resend the same body a second later, as TradingView does."""
        deadline = time.monotonic() + RESEND_FOR_SECONDS
        status, body = stack.signal(payload)
        while status >= 500 and time.monotonic() < deadline:
            resends[f"{status} {body.get('error') if isinstance(body, dict) else body}"] += 1
            time.sleep(1)
            status, body = stack.signal(payload)
        return status, body

    def fire(share: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, int, Any]]:
        start.wait()
        return [(symbol, tf, *send_like_tradingview(payload)) for symbol, tf, payload in share]

    # When 8 threads send 200 entry signals for 50 symbols at once
    with ThreadPoolExecutor(THREADS) as threads:
        shares = [batch[n::THREADS] for n in range(THREADS)]
        replies = [reply for result in threads.map(fire, shares) for reply in result]
    time.sleep(0.3)
    sampler.stop()

    # Then every signal was answered 202 with an outcome (after TradingView-style resends of 5xx
    # answers, which are reported: a loaded machine slows moto down); none was lost
    if resends:
        print(f"5xx answers resent: {dict(resends)}")
    assert len(replies) == 200
    assert [r for r in replies if r[2] != 202] == [], dict(resends)
    outcomes = Counter(body["outcome"] for _, _, _, body in replies)
    assert set(outcomes) <= {"opened", "pyramided", *NOT_ACCEPTED}, outcomes

    # And the pool was never exceeded at any sampled instant
    assert not sampler.errors, sampler.errors[:5]
    assert len(sampler.samples) >= 5, sampler.samples
    assert max(open_ for open_, _, _ in sampler.samples) <= POOL
    assert max(listed for _, _, listed in sampler.samples) <= POOL
    assert all(max_ == POOL for _, max_, _ in sampler.samples)

    # And exactly the pool's worth of groups was opened, and the pool says so
    opened = [body["group_id"] for _, _, _, body in replies if body["outcome"] == "opened"]
    assert len(opened) == POOL == len(set(opened)), outcomes
    pool = stack.pool("binance")
    assert (pool["open"], pool["free"]) == (POOL, 0)
    assert sorted(g["id"] for g in stack.get("/groups")["groups"]) == sorted(opened)

    # And each accepted signal created exactly one set of orders: one entry per leg of its pyramid
    pyramids_by_group: dict[str, int] = Counter(
        body["group_id"] for _, _, _, body in replies if body["outcome"] in ("opened", "pyramided")
    )
    for group_id, accepted in pyramids_by_group.items():
        detail = stack.group(group_id)
        pyramids = detail["pyramids"]
        assert len(pyramids) == accepted, (group_id, pyramids)
        entries = [o for o in detail["orders"] if o["purpose"] == "entry"]
        legs = Counter((o["pyramid"], o["leg"]) for o in entries)
        assert all(count == 1 for count in legs.values()), legs
        expected = {(p["index"], leg) for p in pyramids for leg in range(1, p["leg_count"] + 1)}
        assert set(legs) == expected, (group_id, sorted(legs), sorted(expected))
        assert [o for o in detail["orders"] if o["purpose"] != "entry" and o["purpose"] != "tp"] == []

    # And every other signal says why, and the queue holds each queued key once
    for symbol, tf, _, body in replies:
        if body["outcome"] in NOT_ACCEPTED:
            assert body.get("reason"), (symbol, tf, body)
    queued_ids = {body["queue_id"] for _, _, _, body in replies if body["outcome"] in ("queued", "replaced")}
    queue = stack.get("/queue")["queue"]
    assert sorted(e["id"] for e in queue) == sorted(queued_ids)
    keys = Counter((e["symbol"], e["timeframe"]) for e in queue)
    assert all(count == 1 for count in keys.values()), keys
    open_keys = {(g["symbol"], g["timeframe"]) for g in stack.get("/groups")["groups"]}
    assert open_keys.isdisjoint(keys), open_keys & set(keys)
    by_outcome: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for symbol, tf, _, body in replies:
        by_outcome[body["outcome"]].add((symbol, tf))
    assert len(by_outcome["opened"]) == POOL
