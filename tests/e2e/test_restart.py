"""State survives a restart of the runtime (DESIGN §6): after a graceful stop, after ``kill -9``; and a
port already in use is refused in one line.

Each test starts its own runtime on its own state directory, stops it, and starts a second runtime on
the same directory: the open group and its orders are there, its legs keep filling and its take-profits
close it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import StartStack, assert_clean_stop
from tests.e2e.stack import ROOT, LocalStack, entry_signal, orders_of

pytestmark = pytest.mark.e2e


def _open_group(stack: LocalStack, symbol: str, price: float) -> tuple[str, dict]:
    """A group whose first leg is filled and whose other legs rest on the paper exchange."""
    stack.prices({f"{symbol}/USDT": price})
    status, reply = stack.signal(entry_signal(stack.secret, f"{symbol}USDT", price, size_usd=500))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    detail = stack.tick_until(
        lambda: stack.group(group_id),
        lambda d: (
            [o["status"] for o in orders_of(d, "entry")] == ["filled", "open", "open", "open", "open"]
            and d["group"]["status"] == "partially_filled"
        ),
    )
    return group_id, detail


def _closes_on_its_take_profits(
    stack: LocalStack, group_id: str, symbol: str, low: float, high: float
) -> None:
    stack.prices({f"{symbol}/USDT": low})
    detail = stack.tick_until(
        lambda: stack.group(group_id),
        lambda d: d["group"]["status"] == "active" and all(o["status"] == "open" for o in orders_of(d, "tp")),
    )
    assert all(o["status"] == "filled" for o in orders_of(detail, "entry"))
    stack.prices({f"{symbol}/USDT": high})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")
    assert detail["group"]["quantity"] == 0 and detail["group"]["realized_pnl_usd"] > 0


def _same_orders(before: dict, after: dict) -> bool:
    def shape(detail: dict) -> list[tuple[str, str, str]]:
        return sorted((o["client_order_id"], o["purpose"], o["status"]) for o in detail["orders"])

    return shape(before) == shape(after)


def test_a_graceful_stop_keeps_the_open_group_and_it_closes_on_its_take_profit_after_the_restart(
    start_stack: StartStack,
) -> None:
    # Given a runtime with an open group (first leg filled, four resting) and a config edit
    first = start_stack("restart-graceful")
    group_id, before = _open_group(first, "LINK", 15)
    first.edit_config("pool", {"max_open_groups": 7})

    # When it is stopped with SIGTERM and started again on the same state directory
    assert_clean_stop(first, first.stop())
    second = LocalStack(first.workdir / "again", {}, state_dir=first.state_dir)
    second.start()
    try:
        # Then the group, its orders, the pool, the config and the webhook secret are as they were
        after = second.group(group_id)
        assert after["group"]["status"] == before["group"]["status"] == "partially_filled"
        assert _same_orders(before, after)
        pool = second.pool()  # pools are per account (DESIGN §3.10): the edit gave each account 7
        assert pool["open"] == 1 and pool["accounts"]["binance"] == {
            "max_open_groups": 7,
            "open": 1,
            "free": 6,
        }
        assert second.secret == first.secret

        # And the group keeps trading: its legs fill and its take-profits close it
        _closes_on_its_take_profits(second, group_id, "LINK", 14, 16)
    finally:
        assert_clean_stop(second, second.stop())


def test_kill_9_six_seconds_after_the_answer_loses_nothing_acknowledged(start_stack: StartStack) -> None:
    # Given a runtime that answered a signal and placed its legs
    first = start_stack("restart-kill")
    group_id, before = _open_group(first, "DOGE", 0.15)

    # When it is killed without warning six seconds later
    time.sleep(6)
    assert first.process is not None
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(10)

    # Then a runtime started on the same state directory has the group and its orders
    second = LocalStack(first.workdir / "again", {}, state_dir=first.state_dir)
    second.start()
    try:
        after = second.group(group_id)
        assert after["group"]["status"] == "partially_filled"
        assert _same_orders(before, after)
        assert second.secret == first.secret

        # And it closes on its take-profits
        _closes_on_its_take_profits(second, group_id, "DOGE", 0.14, 0.16)
    finally:
        assert_clean_stop(second, second.stop())


def test_a_port_in_use_is_refused_in_one_line_with_a_non_zero_exit(tmp_path: Path) -> None:
    # Given a port something already listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
        env.update(PYTHONPATH=str(ROOT / "layers" / "engine" / "python"), PORT=str(port))
        env.update(LOCAL_STATE_DIR=str(tmp_path / "state"))

        # When the runtime is started on it
        done = subprocess.run(
            [sys.executable, "-m", "engine.local"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # Then it exits non-zero with one line naming the port
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0]
