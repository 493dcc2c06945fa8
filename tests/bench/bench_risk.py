"""Benchmark: one risk-engine evaluation (engine.domain.risk.evaluate) over 100 / 1,000 / 10,000 open groups.

Pure domain, no AWS. The synthetic book mixes eligible losers (expired timers at various losses), winners
with unrealised profit, and groups neither can use (closing, blocked, unpriced, timer still running).
Prints median and p99 milliseconds per evaluation.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.domain.config import RiskConfig
from engine.domain.models import Group, GroupFigures, GroupStatus, MarketPrecision, Pyramid, Side
from engine.domain.risk import RiskCandidate, evaluate
from tests.bench.common import median, ms, percentile, print_report, update_results

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: (open groups, timed evaluations)
SIZES: tuple[tuple[int, int], ...] = ((100, 1_000), (1_000, 200), (10_000, 40))
PRECISION_STEP = Decimal("0.001")


def _candidate(index: int, rng: random.Random) -> RiskCandidate:
    """Group ``index`` of the synthetic book: 25% losers, 55% winners, 20% unusable."""
    side = Side.LONG if index % 3 else Side.SHORT
    avg = Decimal(rng.randint(1_000, 100_000)) / 100
    qty = Decimal(rng.randint(100, 50_000)) / 1000
    kind = rng.random()
    status = GroupStatus.ACTIVE
    timer: datetime | None = None
    blocked = False
    priced = True
    if kind < 0.25:  # loser: down 1.5-12%, timer expired
        move = -Decimal(rng.randint(150, 1_200)) / 10_000
        timer = NOW - timedelta(minutes=rng.randint(16, 600))
    elif kind < 0.80:  # winner: up 0.2-8%
        move = Decimal(rng.randint(20, 800)) / 10_000
    else:  # unusable: closing / blocked / unpriced / timer still running
        move = -Decimal(rng.randint(10, 500)) / 10_000
        variant = index % 4
        status = GroupStatus.CLOSING if variant == 0 else GroupStatus.ACTIVE
        blocked = variant == 1
        priced = variant != 2
        timer = NOW - timedelta(minutes=5) if variant == 3 else None
    price = avg * (1 + move) if side == Side.LONG else avg * (1 - move)
    unit = price - avg if side == Side.LONG else avg - price
    figures = GroupFigures(
        quantity=qty,
        avg_entry=avg,
        invested_usd=qty * avg,
        unrealized_pnl_usd=qty * unit if priced else Decimal(0),
        unrealized_pnl_percent=unit / avg * 100 if priced else Decimal(0),
        last_price=price if priced else None,
    )
    group = Group(
        id=f"g{index:06d}",
        exchange="binance",
        symbol=f"S{index:05d}/USDT",
        timeframe=60,
        side=side,
        status=status,
        pyramids=[
            Pyramid(index=p + 1, entry_price=avg, capital_usd=Decimal(200), candle=p, leg_count=5)
            for p in range(3)
        ],
        figures=figures,
        created_at=NOW - timedelta(hours=rng.randint(1, 72)),
        risk_timer_started_at=timer,
        risk_blocked=blocked,
    )
    precision = MarketPrecision(
        symbol=group.symbol,
        tick=Decimal("0.01"),
        step=PRECISION_STEP,
        min_qty=PRECISION_STEP,
        min_notional=Decimal(5),
    )
    return RiskCandidate(
        group=group, precision=precision, pyramids_filled=3, all_dca_submitted=True, all_dca_filled=True
    )


def book(size: int, seed: int = 8) -> list[RiskCandidate]:
    """A deterministic synthetic book of ``size`` open groups."""
    rng = random.Random(seed + size)
    return [_candidate(i, rng) for i in range(size)]


def run() -> None:
    """Time ``evaluate`` for each book size and print the table."""
    cfg = RiskConfig()
    rows: list[list[object]] = []
    p99_ms: dict[str, float] = {}
    for size, runs in SIZES:
        candidates = book(size)
        plan = evaluate(candidates, cfg, NOW)  # warm-up, and the result we describe
        samples: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            evaluate(candidates, cfg, NOW)
            samples.append(time.perf_counter() - start)
        outcome = (
            "no plan"
            if plan is None
            else (f"{'actionable' if plan.actionable else 'not actionable'}, {len(plan.winners)} winner(s)")
        )
        p99_ms[str(size)] = round(percentile(samples, 99) * 1000, 3)
        rows.append(
            [
                f"{size:,}",
                runs,
                ms(median(samples)),
                ms(percentile(samples, 99)),
                ms(median(samples) / size * 1000),
                outcome,
            ]
        )
    print_report(
        "Risk engine evaluation (engine.domain.risk.evaluate, pure domain)",
        ["open groups", "runs", "median ms", "p99 ms", "µs per group (median)", "plan"],
        rows,
        notes=[
            "book: 25% eligible losers, 55% winners, 20% closing/blocked/unpriced/timer running; "
            "default RiskConfig (max 3 winners)"
        ],
    )
    update_results("webhook", {"risk_p99_ms": p99_ms})
    update_results("risk", {"p99_ms": p99_ms})


if __name__ == "__main__":
    run()
