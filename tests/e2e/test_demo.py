"""`make demo` with the small scenario: the report folder and what its CSV files hold."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.local.demo_scenario import SMALL
from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_demo_replays_its_scenario_and_writes_the_report(tmp_path: Path) -> None:
    # Given a fresh folder for the report
    out = tmp_path / "report"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
    env.update(PYTHONPATH=str(ROOT / "layers" / "engine" / "python"), AWS_DEFAULT_REGION="us-east-1")

    # When the small scenario is replayed (a queued signal, a risk offset that promotes it, an exit)
    result = subprocess.run(
        [sys.executable, "-m", "engine.local.demo", "--scenario", "small", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Then it succeeds with every signal as scripted and says where the report is
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert f"report written to {out.resolve()}" in result.stdout
    for name in ("report.md", "equity.png", "groups.csv", "orders.csv", "risk_actions.csv", "runtime.log"):
        assert (out / name).is_file(), name
    assert (out / "equity.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # And the report's table has one row per step, with the signals' outcomes
    report = (out / "report.md").read_text()
    happened = report.split("## What happened", 1)[1].split("\n## ", 1)[0]
    table = [
        line
        for line in happened.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    assert len(table) == len(SMALL.steps)
    assert [row.split("|")[4].strip() for row in table if "| signal |" in row] == [
        "opened",
        "opened",
        "queued",
        "exited",
    ]

    # And groups.csv: BTC closed by its exit, ETH closed as the risk loser, SOL promoted and open
    groups = {row["symbol"]: row for row in _rows(out / "groups.csv")}
    assert sorted(groups) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert groups["BTC/USDT"]["status"] == groups["ETH/USDT"]["status"] == "closed"
    assert groups["SOL/USDT"]["status"] in ("live", "partially_filled", "active")
    assert (groups["ETH/USDT"]["close_reason"], groups["BTC/USDT"]["close_reason"]) == ("risk", "exit")
    assert float(groups["ETH/USDT"]["realized_pnl_usd"]) < 0 < float(groups["BTC/USDT"]["realized_pnl_usd"])

    # And orders.csv: ETH's five filled legs and its risk close; BTC's leg, its partial risk close, its exit
    orders = _rows(out / "orders.csv")
    filled = sorted(
        (row["symbol"], row["purpose"])
        for row in orders
        if row["status"] == "filled" and row["symbol"] != "SOL/USDT"
    )
    assert filled == sorted(
        [("ETH/USDT", "entry")] * 5
        + [
            ("ETH/USDT", "risk_close"),
            ("BTC/USDT", "entry"),
            ("BTC/USDT", "risk_close"),
            ("BTC/USDT", "exit"),
        ]
    )
    assert {row["group_id"] for row in orders} == {row["id"] for row in groups.values()}

    # And risk_actions.csv: one offset, ETH the loser, BTC the winner
    (action,) = _rows(out / "risk_actions.csv")
    assert action["action"] == "risk_offset"
    assert action["group_id"] == groups["ETH/USDT"]["id"]
    assert action["related_group_ids"] == groups["BTC/USDT"]["id"]
