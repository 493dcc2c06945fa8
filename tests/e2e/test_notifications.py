"""Notifications over HTTP (DESIGN §3.11, §6): each group's open and close reach
``GET /_local/notifications`` within seconds, with the account and, for the close, the realised PnL."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.stack import LocalStack, entry_signal, exit_signal

pytestmark = pytest.mark.e2e


def _wait_for(stack: LocalStack, wanted: set[tuple[str, str]], seconds: float = 15) -> list[dict[str, Any]]:
    """The notifications once every (event, group id) of ``wanted`` is among them."""
    deadline = time.monotonic() + seconds
    while True:
        notes = stack.get("/_local/notifications")["notifications"]
        seen = {(note["event"], note.get("group_id")) for note in notes}
        if wanted <= seen or time.monotonic() > deadline:
            return notes
        time.sleep(0.3)


def test_a_groups_open_and_close_are_notified_with_account_symbol_and_pnl(stack: LocalStack) -> None:
    # Given a LINK/USDT group opened and its first leg filled
    stack.prices({"LINK/USDT": 15})
    status, reply = stack.signal(entry_signal(stack.secret, "LINKUSDT", 15, size_usd=500))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] == 1)
    # When the strategy exits higher and the close goes through
    stack.prices({"LINK/USDT": 15.5})
    status, reply = stack.signal(exit_signal(stack.secret, "LINKUSDT", 15.5))
    assert (status, reply["outcome"]) == (202, "exited"), reply
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")
    # Then both the open and the close are listed, each once, with the account and the figures
    notes = _wait_for(stack, {("opened", group_id), ("closed", group_id)})
    mine = [note for note in notes if note.get("group_id") == group_id]
    assert sorted(note["event"] for note in mine) == ["closed", "opened"], notes
    opened = next(note for note in mine if note["event"] == "opened")
    closed = next(note for note in mine if note["event"] == "closed")
    assert opened["account"] == closed["account"] == "binance"
    assert "LINK/USDT" in opened["text"] and "binance" in opened["text"]
    assert "LINK/USDT" in closed["text"] and "binance" in closed["text"]
    realized = detail["group"]["realized_pnl_usd"]
    told = re.search(r"PnL ([+-][0-9.]+) USD", closed["text"])
    assert told is not None and abs(float(told.group(1)) - realized) <= 0.005, (closed["text"], realized)
    assert closed["channels"] == ["sns"]
