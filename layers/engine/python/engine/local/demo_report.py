"""The demo's report folder: ``report.md``, ``equity.png``, CSV files of groups, orders, risk actions."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.local.demo_scenario import Scenario

GROUP_COLUMNS = (
    "id", "exchange", "symbol", "timeframe", "side", "status", "pyramid_count", "filled_legs", "total_legs",
    "quantity", "avg_entry", "invested_usd", "unrealized_pnl_usd", "unrealized_pnl_percent",
    "realized_pnl_usd", "close_reason", "close_note", "created_at", "closed_at",
)  # fmt: skip
ORDER_COLUMNS = (
    "group_id", "symbol", "id", "client_order_id", "purpose", "side", "type", "price", "amount", "filled",
    "average", "status", "reason", "pyramid", "leg", "created_at",
)  # fmt: skip
RISK_ACTION_COLUMNS = (
    "id",
    "at",
    "action",
    "reason",
    "group_id",
    "related_group_ids",
    "amount_usd",
    "details",
)


@dataclass
class StepRecord:
    """One replayed step: what was done, the answer, and what changed."""

    kind: str
    description: str
    outcome: str
    reason: str
    expected: str | None = None
    changes: list[str] = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        """True unless the script expected another outcome."""
        return self.expected is None or self.expected == self.outcome


@dataclass
class DemoRecord:
    """Everything the report is written from."""

    scenario: Scenario
    started_at: datetime
    steps: list[StepRecord] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    risk_actions: list[dict[str, Any]] = field(default_factory=list)
    equity: list[dict[str, Any]] = field(default_factory=list)
    pool: dict[str, Any] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)

    def mismatches(self) -> list[str]:
        """Steps whose outcome differs from the script's expectation."""
        return [
            f"step {number}: {step.description}: expected {step.expected}, got {step.outcome} ({step.reason})"
            for number, step in enumerate(self.steps, start=1)
            if not step.as_expected
        ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(_cell(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (only ``columns``, in that order); returns the number of rows written."""
    count = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
            count += 1
    return count


def write_equity_png(path: Path, points: Sequence[Mapping[str, Any]]) -> None:
    """The equity (and realised PnL) curve from ``GET /equity`` points (Agg backend, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(str(point["at"]).replace("Z", "+00:00")) for point in points]
    figure, (equity_axis, realized_axis) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    equity_axis.plot(times, [float(p["equity_usd"]) for p in points], marker="o", color="tab:blue")
    equity_axis.set_ylabel("equity (USD)")
    equity_axis.set_title("Paper account equity" if points else "Paper account equity (no points recorded)")
    equity_axis.grid(True, alpha=0.3)
    realized_axis.step(times, [float(p["realized_usd"]) for p in points], where="post", color="tab:green")
    realized_axis.set_ylabel("realised PnL (USD)")
    realized_axis.set_xlabel("time (UTC)")
    realized_axis.grid(True, alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _md(text: Any) -> str:
    return _cell(text).replace("|", "\\|").replace("\n", " ")


def _markdown(record: DemoRecord) -> str:
    lines = [
        f"# Execution engine demo: `{record.scenario.name}` scenario",
        "",
        record.scenario.description,
        "",
        f"Run at {record.started_at.isoformat(timespec='seconds')} on a fresh local stack (moto + paper "
        "exchange), driven over HTTP only.",
        "",
        "## What happened",
        "",
        "| # | step | what | outcome | reason / effect |",
        "|---|------|------|---------|-----------------|",
    ]
    for number, step in enumerate(record.steps, start=1):
        outcome = (
            step.outcome if step.as_expected else f"**{step.outcome}** (script expected {step.expected})"
        )
        effect = "; ".join(part for part in (step.reason, *step.changes) if part)
        lines.append(f"| {number} | {step.kind} | {_md(step.description)} | {_md(outcome)} | {_md(effect)} |")
    pool = record.pool
    lines += [
        "",
        "## Final state",
        "",
        f"Pool: {pool.get('open')}/{pool.get('max_open_groups')} open, {pool.get('free')} free; "
        f"queue: {len(record.queue)} waiting.",
        "",
        "| group | symbol | status | pyramids | legs filled | avg entry | realised USD | unrealised USD |",
        "|-------|--------|--------|----------|-------------|-----------|--------------|----------------|",
    ]
    for g in record.groups:
        lines.append(
            f"| {str(g['id'])[:8]} | {g['symbol']} | {g['status']} | {g['pyramid_count']} | "
            f"{g['filled_legs']}/{g['total_legs']} | {_cell(g['avg_entry'])} | "
            f"{_cell(g['realized_pnl_usd'])} | {_cell(g['unrealized_pnl_usd'])} |"
        )
    lines += ["", "## Risk actions", ""]
    lines += [f"- {a['at']} {a['action']}: {_md(a['reason'])}" for a in record.risk_actions] or ["- none"]
    if record.equity:
        first, last = record.equity[0], record.equity[-1]
        lines += [
            "",
            f"Equity: {first['equity_usd']} -> {last['equity_usd']} USD over {len(record.equity)} points.",
        ]
    lines += [
        "",
        "## Files",
        "",
        "- `equity.png`: equity curve and realised PnL (`GET /equity`)",
        f"- `groups.csv` ({len(record.groups)} rows), `orders.csv` ({len(record.orders)} rows), "
        f"`risk_actions.csv` ({len(record.risk_actions)} rows): from the operator API",
        "- `runtime.log`: what the local runtime printed",
        "",
    ]
    return "\n".join(lines)


def write_report(record: DemoRecord, out_dir: Path) -> None:
    """Write every file of the report into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "groups.csv", GROUP_COLUMNS, record.groups)
    write_csv(out_dir / "orders.csv", ORDER_COLUMNS, record.orders)
    write_csv(out_dir / "risk_actions.csv", RISK_ACTION_COLUMNS, record.risk_actions)
    write_equity_png(out_dir / "equity.png", record.equity)
    (out_dir / "report.md").write_text(_markdown(record))
