"""Performance analytics over closed groups (DESIGN §6 ``GET /analytics``): pure computation.

A **trade** is a closed group (failed groups never traded); a **win** has realised PnL > 0, a **loss**
< 0 (a flat trade is neither). Figures:

- ``win_rate``: wins / trades in percent; ``avg_win_usd`` / ``avg_loss_usd``: mean realised of the wins /
  the losses (the latter negative); ``profit_factor``: Σ wins ÷ |Σ losses| (``None`` without losses).
- ``max_drawdown_usd``: the largest fall of the cumulative realised PnL of the trades, in close order,
  from its running peak (which starts at 0): a positive amount, 0 when it never fell.
  ``max_drawdown_percent`` is that fall relative to the equity at the peak (base + peak).
- ``sharpe`` / ``sortino``: from the **daily** realised PnL (the day counters: realised booked on each
  UTC day of the period, days without a fill count as 0) as returns on the account's equity at the start
  of that day (base equity + realised before it). Sharpe = mean ÷ sample standard deviation; Sortino =
  mean ÷ downside deviation (root mean square of the negative returns over every day). Not annualised;
  ``None`` with fewer than two days or a zero deviation.

Everything additive (counts, sums per symbol, timeframe and side) lives in :class:`TradeTotals`, so a
period's figures can be built from a stored roll-up of earlier days (:class:`Rollup`) plus the newest
days, without reading the whole history again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
HUNDRED = Decimal(100)
#: Best and worst groups kept per report (and in a roll-up).
TOP_N = 5
_RATIO_PLACES = Decimal("0.0001")
_PERCENT_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class ClosedTrade:
    """What analytics needs of one closed group."""

    group_id: str
    account: str
    exchange: str
    symbol: str
    timeframe: int
    side: str
    realized_usd: Decimal
    invested_usd: Decimal
    closed_at: datetime
    close_reason: str | None = None

    def as_document(self) -> dict[str, Any]:
        """A JSON-like map (Decimals as strings) for a stored roll-up."""
        return {
            "group_id": self.group_id,
            "account": self.account,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "side": self.side,
            "realized_usd": str(self.realized_usd),
            "invested_usd": str(self.invested_usd),
            "closed_at": self.closed_at.isoformat(),
            "close_reason": self.close_reason,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ClosedTrade:
        """The inverse of :meth:`as_document`."""
        return cls(
            group_id=str(doc["group_id"]),
            account=str(doc["account"]),
            exchange=str(doc["exchange"]),
            symbol=str(doc["symbol"]),
            timeframe=int(doc["timeframe"]),
            side=str(doc["side"]),
            realized_usd=Decimal(str(doc["realized_usd"])),
            invested_usd=Decimal(str(doc["invested_usd"])),
            closed_at=datetime.fromisoformat(str(doc["closed_at"])),
            close_reason=None if doc.get("close_reason") is None else str(doc["close_reason"]),
        )


@dataclass
class TradeTotals:
    """Additive counts and sums of a set of trades."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    gross_win_usd: Decimal = ZERO
    gross_loss_usd: Decimal = ZERO

    @property
    def realized_usd(self) -> Decimal:
        """Net realised PnL."""
        return self.gross_win_usd + self.gross_loss_usd

    def add(self, realized: Decimal) -> None:
        """Count one trade of ``realized`` USD."""
        self.trades += 1
        if realized > ZERO:
            self.wins += 1
            self.gross_win_usd += realized
        elif realized < ZERO:
            self.losses += 1
            self.gross_loss_usd += realized

    def merge(self, other: TradeTotals) -> None:
        """Add ``other``'s counts and sums."""
        self.trades += other.trades
        self.wins += other.wins
        self.losses += other.losses
        self.gross_win_usd += other.gross_win_usd
        self.gross_loss_usd += other.gross_loss_usd

    def as_document(self) -> dict[str, Any]:
        """A JSON-like map (Decimals as strings)."""
        return {
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "gross_win_usd": str(self.gross_win_usd),
            "gross_loss_usd": str(self.gross_loss_usd),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> TradeTotals:
        """The inverse of :meth:`as_document`."""
        return cls(
            trades=int(doc.get("trades", 0)),
            wins=int(doc.get("wins", 0)),
            losses=int(doc.get("losses", 0)),
            gross_win_usd=Decimal(str(doc.get("gross_win_usd", "0"))),
            gross_loss_usd=Decimal(str(doc.get("gross_loss_usd", "0"))),
        )


@dataclass
class Drawdown:
    """Running peak and deepest fall of a cumulative PnL curve (starts flat at 0)."""

    cumulative_usd: Decimal = ZERO
    peak_usd: Decimal = ZERO
    max_drawdown_usd: Decimal = ZERO
    #: The peak the deepest fall was measured from.
    peak_at_max_usd: Decimal = ZERO

    def advance(self, pnl: Decimal) -> None:
        """Move the curve by one trade's ``pnl``."""
        self.cumulative_usd += pnl
        if self.cumulative_usd > self.peak_usd:
            self.peak_usd = self.cumulative_usd
        fall = self.peak_usd - self.cumulative_usd
        if fall > self.max_drawdown_usd:
            self.max_drawdown_usd = fall
            self.peak_at_max_usd = self.peak_usd

    def as_document(self) -> dict[str, str]:
        """A JSON-like map (Decimals as strings)."""
        return {
            "cumulative_usd": str(self.cumulative_usd),
            "peak_usd": str(self.peak_usd),
            "max_drawdown_usd": str(self.max_drawdown_usd),
            "peak_at_max_usd": str(self.peak_at_max_usd),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Drawdown:
        """The inverse of :meth:`as_document`."""
        return cls(**{name: Decimal(str(doc.get(name, "0"))) for name in cls.__dataclass_fields__})


def _ordered(trades: Iterable[ClosedTrade]) -> list[ClosedTrade]:
    return sorted(trades, key=lambda t: (t.closed_at, t.group_id))


def _ranked(trades: Iterable[ClosedTrade], best: bool) -> list[ClosedTrade]:
    key = (lambda t: (-t.realized_usd, t.group_id)) if best else (lambda t: (t.realized_usd, t.group_id))
    return sorted(trades, key=key)[:TOP_N]


@dataclass
class Rollup:
    """Everything a report needs of a run of trades, folded in close order; stored for earlier days."""

    totals: TradeTotals = field(default_factory=TradeTotals)
    by_symbol: dict[str, TradeTotals] = field(default_factory=dict)
    by_timeframe: dict[str, TradeTotals] = field(default_factory=dict)
    by_side: dict[str, TradeTotals] = field(default_factory=dict)
    drawdown: Drawdown = field(default_factory=Drawdown)
    best: list[ClosedTrade] = field(default_factory=list)
    worst: list[ClosedTrade] = field(default_factory=list)

    def fold(self, trades: Iterable[ClosedTrade]) -> None:
        """Add ``trades`` (all closed after those already folded)."""
        new = _ordered(trades)
        for trade in new:
            self.totals.add(trade.realized_usd)
            self.by_symbol.setdefault(trade.symbol, TradeTotals()).add(trade.realized_usd)
            self.by_timeframe.setdefault(str(trade.timeframe), TradeTotals()).add(trade.realized_usd)
            self.by_side.setdefault(trade.side, TradeTotals()).add(trade.realized_usd)
            self.drawdown.advance(trade.realized_usd)
        self.best = _ranked([*self.best, *new], best=True)
        self.worst = _ranked([*self.worst, *new], best=False)

    def copy(self) -> Rollup:
        """A deep copy (folding into it leaves this one as it is)."""
        return Rollup.from_document(self.as_document())

    def as_document(self) -> dict[str, Any]:
        """A JSON-like map (Decimals as strings)."""
        return {
            "totals": self.totals.as_document(),
            "by_symbol": {k: v.as_document() for k, v in self.by_symbol.items()},
            "by_timeframe": {k: v.as_document() for k, v in self.by_timeframe.items()},
            "by_side": {k: v.as_document() for k, v in self.by_side.items()},
            "drawdown": self.drawdown.as_document(),
            "best": [t.as_document() for t in self.best],
            "worst": [t.as_document() for t in self.worst],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Rollup:
        """The inverse of :meth:`as_document`."""

        def totals(part: Any) -> dict[str, TradeTotals]:
            return {str(k): TradeTotals.from_document(v) for k, v in (part or {}).items()}

        return cls(
            totals=TradeTotals.from_document(doc.get("totals") or {}),
            by_symbol=totals(doc.get("by_symbol")),
            by_timeframe=totals(doc.get("by_timeframe")),
            by_side=totals(doc.get("by_side")),
            drawdown=Drawdown.from_document(doc.get("drawdown") or {}),
            best=[ClosedTrade.from_document(t) for t in doc.get("best") or []],
            worst=[ClosedTrade.from_document(t) for t in doc.get("worst") or []],
        )


def daily_returns(daily_pnl: Sequence[Decimal], base_equity_usd: Decimal) -> list[Decimal]:
    """Each day's PnL as a fraction of the equity at the start of that day (base + PnL before it).

    A day whose starting equity is not positive has no meaningful return and is left out.
    """
    returns: list[Decimal] = []
    equity = base_equity_usd
    for pnl in daily_pnl:
        if equity > ZERO:
            returns.append(pnl / equity)
        equity += pnl
    return returns


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values)


def sharpe(returns: Sequence[Decimal]) -> Decimal | None:
    """Mean ÷ sample standard deviation of ``returns`` (not annualised); None when undefined."""
    if len(returns) < 2:
        return None
    mean = _mean(returns)
    variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (len(returns) - 1)
    if variance <= ZERO:
        return None
    return mean / variance.sqrt()


def sortino(returns: Sequence[Decimal]) -> Decimal | None:
    """Mean ÷ downside deviation (RMS of the negative returns over all days); None when undefined."""
    if len(returns) < 2:
        return None
    downside = sum((min(r, ZERO) ** 2 for r in returns), ZERO) / len(returns)
    if downside <= ZERO:
        return None
    return _mean(returns) / downside.sqrt()


def _round(value: Decimal | None, places: Decimal) -> Decimal | None:
    if value is None or not value.is_finite():
        return None
    return value.quantize(places)


def _totals_view(totals: TradeTotals) -> dict[str, Any]:
    return {
        "trades": totals.trades,
        "wins": totals.wins,
        "losses": totals.losses,
        "win_rate": win_rate(totals),
        "realized_usd": totals.realized_usd,
    }


def win_rate(totals: TradeTotals) -> Decimal | None:
    """Wins ÷ trades in percent (two decimals); None without trades."""
    if totals.trades == 0:
        return None
    return _round(Decimal(totals.wins) * HUNDRED / Decimal(totals.trades), _PERCENT_PLACES)


def profit_factor(totals: TradeTotals) -> Decimal | None:
    """Σ wins ÷ |Σ losses|; None without a loss."""
    if totals.gross_loss_usd >= ZERO:
        return None
    return _round(totals.gross_win_usd / -totals.gross_loss_usd, _RATIO_PLACES)


def _average(total: Decimal, count: int) -> Decimal | None:
    return None if count == 0 else total / count


def _trade_view(trade: ClosedTrade) -> dict[str, Any]:
    return {
        "id": trade.group_id,
        "account": trade.account,
        "exchange": trade.exchange,
        "symbol": trade.symbol,
        "timeframe": trade.timeframe,
        "side": trade.side,
        "realized_pnl_usd": trade.realized_usd,
        "invested_usd": trade.invested_usd,
        "closed_at": trade.closed_at,
        "close_reason": trade.close_reason,
    }


def report(rollup: Rollup, daily_pnl: Sequence[Decimal], base_equity_usd: Decimal) -> dict[str, Any]:
    """The figures of DESIGN §6 from a period's roll-up and its daily realised PnL (oldest day first).

    Values are Decimals (or None where undefined); the caller makes them JSON numbers.
    """
    totals = rollup.totals
    returns = daily_returns(daily_pnl, base_equity_usd)
    drawdown = rollup.drawdown
    peak_equity = base_equity_usd + drawdown.peak_at_max_usd
    drawdown_percent = (
        _round(drawdown.max_drawdown_usd * HUNDRED / peak_equity, _PERCENT_PLACES)
        if peak_equity > ZERO
        else None
    )
    return {
        "trades": totals.trades,
        "wins": totals.wins,
        "losses": totals.losses,
        "win_rate": win_rate(totals),
        "realized_usd": totals.realized_usd,
        "avg_win_usd": _average(totals.gross_win_usd, totals.wins),
        "avg_loss_usd": _average(totals.gross_loss_usd, totals.losses),
        "profit_factor": profit_factor(totals),
        "max_drawdown_usd": drawdown.max_drawdown_usd,
        "max_drawdown_percent": drawdown_percent,
        "sharpe": _round(sharpe(returns), _RATIO_PLACES),
        "sortino": _round(sortino(returns), _RATIO_PLACES),
        "days": len(daily_pnl),
        "by_symbol": [
            {"symbol": symbol, **_totals_view(part)} for symbol, part in sorted(rollup.by_symbol.items())
        ],
        "by_timeframe": [
            {"timeframe": int(tf), **_totals_view(part)}
            for tf, part in sorted(rollup.by_timeframe.items(), key=lambda item: int(item[0]))
        ],
        "long_short": {
            side: _totals_view(rollup.by_side.get(side, TradeTotals())) for side in ("long", "short")
        },
        "best": [_trade_view(t) for t in rollup.best if t.realized_usd > ZERO],
        "worst": [_trade_view(t) for t in rollup.worst if t.realized_usd < ZERO],
    }
