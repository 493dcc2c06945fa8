"""Given known sets of closed trades, when the analytics report is computed, then every figure is exact
(DESIGN §6): trades, wins, losses, win rate in percent, average win/loss, profit factor, max drawdown,
Sharpe and Sortino from daily returns, by symbol / timeframe / side, best and worst."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.domain.analytics import ClosedTrade, Rollup, daily_returns, report, sharpe, sortino

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
BASE = Decimal(10000)


def trade(n: int, pnl: str, symbol: str = "BTC/USDT", timeframe: int = 60, side: str = "long") -> ClosedTrade:
    return ClosedTrade(
        group_id=f"g{n:02d}",
        account="binance",
        exchange="binance",
        symbol=symbol,
        timeframe=timeframe,
        side=side,
        realized_usd=Decimal(pnl),
        invested_usd=Decimal(1000),
        closed_at=T0 + timedelta(hours=n),
    )


@dataclass
class Case:
    name: str
    trades: list[ClosedTrade]
    daily: list[str]
    expected: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "no trades",
        [],
        ["0"],
        {
            "trades": 0, "wins": 0, "losses": 0, "win_rate": None, "realized_usd": Decimal(0),
            "avg_win_usd": None, "avg_loss_usd": None, "profit_factor": None,
            "max_drawdown_usd": Decimal(0), "sharpe": None, "sortino": None,
        },
    ),
    Case(
        "one trade",
        [trade(1, "25")],
        ["25"],
        {
            "trades": 1, "wins": 1, "losses": 0, "win_rate": Decimal("100.00"), "realized_usd": Decimal(25),
            "avg_win_usd": Decimal(25), "avg_loss_usd": None, "profit_factor": None,
            "max_drawdown_usd": Decimal(0), "sharpe": None, "sortino": None,
        },
    ),
    Case(
        "no losses",
        [trade(1, "10"), trade(2, "30"), trade(3, "20")],
        ["10", "50"],
        {
            "trades": 3, "wins": 3, "losses": 0, "win_rate": Decimal("100.00"), "realized_usd": Decimal(60),
            "avg_win_usd": Decimal(20), "avg_loss_usd": None, "profit_factor": None,
            "max_drawdown_usd": Decimal(0), "sortino": None,
        },
    ),
    Case(
        "one win one loss",
        [trade(1, "150"), trade(2, "-50")],
        ["100"],
        {
            "trades": 2, "wins": 1, "losses": 1, "win_rate": Decimal("50.00"), "realized_usd": Decimal(100),
            "avg_win_usd": Decimal(150), "avg_loss_usd": Decimal(-50), "profit_factor": Decimal("3.0000"),
            "max_drawdown_usd": Decimal(50), "max_drawdown_percent": Decimal("0.49"),
        },
    ),
    Case(
        "a drawdown that recovers",
        [trade(1, "100"), trade(2, "-50"), trade(3, "-30"), trade(4, "200"), trade(5, "-10")],
        ["100", "-80", "200", "-10"],
        {
            "trades": 5, "wins": 2, "losses": 3, "win_rate": Decimal("40.00"), "realized_usd": Decimal(210),
            "avg_win_usd": Decimal(150), "avg_loss_usd": Decimal(-30), "profit_factor": Decimal("3.3333"),
            "max_drawdown_usd": Decimal(80),
        },
    ),
    Case(
        "a flat trade is neither win nor loss",
        [trade(1, "0"), trade(2, "-20")],
        ["-20"],
        {"trades": 2, "wins": 0, "losses": 1, "win_rate": Decimal("0.00"),
         "profit_factor": Decimal("0.0000")},
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_report_figures(case: Case) -> None:
    rollup = Rollup()
    rollup.fold(case.trades)
    figures = report(rollup, [Decimal(d) for d in case.daily], BASE)
    for name, value in case.expected.items():
        assert figures[name] == value, name


def test_drawdown_is_measured_in_close_order_not_in_the_order_given() -> None:
    # Given trades handed over out of order, when folded, then the curve follows their close times.
    rollup = Rollup()
    rollup.fold([trade(3, "-30"), trade(1, "100"), trade(2, "-50")])
    assert rollup.drawdown.max_drawdown_usd == Decimal(80)
    assert rollup.drawdown.cumulative_usd == Decimal(20)


def test_folding_in_two_parts_equals_folding_at_once() -> None:
    trades = [trade(1, "100"), trade(2, "-50"), trade(3, "-30"), trade(4, "200"), trade(5, "-10")]
    whole = Rollup()
    whole.fold(trades)
    parts = Rollup()
    parts.fold(trades[:2])
    stored = Rollup.from_document(parts.as_document())
    stored.fold(trades[2:])
    assert stored.as_document() == whole.as_document()


def test_breakdowns_by_symbol_timeframe_and_side() -> None:
    rollup = Rollup()
    rollup.fold(
        [
            trade(1, "10", "BTC/USDT", 60, "long"),
            trade(2, "-4", "ETH/USDT", 15, "short"),
            trade(3, "6", "BTC/USDT", 15, "long"),
        ]
    )
    figures = report(rollup, [Decimal(12)], BASE)
    assert [(s["symbol"], s["trades"], s["realized_usd"]) for s in figures["by_symbol"]] == [
        ("BTC/USDT", 2, Decimal(16)),
        ("ETH/USDT", 1, Decimal(-4)),
    ]
    assert [(t["timeframe"], t["trades"]) for t in figures["by_timeframe"]] == [(15, 2), (60, 1)]
    assert figures["long_short"]["long"]["win_rate"] == Decimal("100.00")
    assert figures["long_short"]["short"]["realized_usd"] == Decimal(-4)
    assert [b["id"] for b in figures["best"]] == ["g01", "g03"]
    assert [w["id"] for w in figures["worst"]] == ["g02"]


def test_sharpe_and_sortino_on_known_daily_returns() -> None:
    # Given equity 1000 and daily PnL +10, -10, +20: returns 0.01, -10/1010, 20/1000.
    returns = daily_returns([Decimal(10), Decimal(-10), Decimal(20)], Decimal(1000))
    assert returns == [Decimal("0.01"), Decimal(-10) / Decimal(1010), Decimal("0.02")]
    mean = sum(returns) / 3
    std = (sum((r - mean) ** 2 for r in returns) / 2).sqrt()
    assert sharpe(returns) == mean / std
    downside = (returns[1] ** 2 / 3).sqrt()
    assert sortino(returns) == mean / downside


def test_ratios_are_undefined_without_spread_or_losing_days() -> None:
    assert sharpe([Decimal("0.01")]) is None
    assert sharpe([Decimal("0.01"), Decimal("0.01")]) is None
    assert sortino([Decimal("0.01"), Decimal("0.02")]) is None
