"""One alert, two accounts, over HTTP on a runtime of its own (DESIGN §3.10): ``binance-sub`` on binance,
routed at half size, with a pool of 1 on binance; the notifications name each account."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.stack import LocalStack, entry_signal, exit_signal

pytestmark = pytest.mark.e2e

SUB = "binance-sub"


def _configure(stack: LocalStack) -> None:
    stack.edit_config(
        "engine", {"accounts": {"binance": {}, "bybit": {}, "okx": {}, SUB: {"exchange": "binance"}}}
    )
    stack.edit_config(
        "routes", {"BINANCE": [{"account": "binance"}, {"account": SUB, "size_multiplier": 0.5}]}
    )
    stack.edit_config("pool", {"accounts": {"binance": {"max_open_groups": 1}}})
    time.sleep(6)  # CONFIG_MAX_AGE_SECONDS locally is 5


def _notes(stack: LocalStack, wanted: int, seconds: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        notes = stack.get("/_local/notifications")["notifications"]
        if len(notes) >= wanted or time.monotonic() > deadline:
            return notes
        time.sleep(0.3)


def test_one_alert_opens_a_group_per_account_and_each_is_told(start_stack: StartStack) -> None:
    stack = start_stack("accounts")
    _configure(stack)
    stack.prices({"BTC/USDT": 60000, "ETH/USDT": 3000})
    # When one BTC alert arrives, then it opens a group on each account, binance-sub with half the capital
    status, reply = stack.signal(entry_signal(stack.secret, "BTCUSDT", 60000, size_usd=500))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    accounts = reply["accounts"]
    assert {name: a["outcome"] for name, a in accounts.items()} == {"binance": "opened", SUB: "opened"}
    main = stack.group(accounts["binance"]["group_id"])
    sub = stack.group(accounts[SUB]["group_id"])
    assert main["pyramids"][0]["capital_usd"] == 500 and sub["pyramids"][0]["capital_usd"] == 250
    assert (main["group"]["account"], sub["group"]["account"]) == ("binance", SUB)
    # When an ETH alert arrives, then binance's pool of 1 queues it and binance-sub opens it
    status, reply = stack.signal(entry_signal(stack.secret, "ETHUSDT", 3000, size_usd=500))
    assert status == 202, reply
    assert reply["accounts"]["binance"]["outcome"] == "queued"
    assert reply["accounts"][SUB]["outcome"] == "opened"
    pool = stack.get("/pool")
    assert pool["accounts"]["binance"]["open"] == 1 and pool["accounts"][SUB]["open"] == 2
    # When the BTC strategy exits, then both BTC groups close, and each open and close is told once
    stack.tick()
    status, reply = stack.signal(exit_signal(stack.secret, "BTCUSDT", 60000))
    assert {name: a["outcome"] for name, a in reply["accounts"].items()} == {
        "binance": "exited",
        SUB: "exited",
    }
    for account in ("binance", SUB):
        group_id = accounts[account]["group_id"]
        stack.tick_until(lambda gid=group_id: stack.group(gid), lambda d: d["group"]["status"] == "closed")
    notes = _notes(stack, 5)
    told = {(n["event"], n.get("account"), n.get("group_id")) for n in notes}
    for account in ("binance", SUB):
        group_id = accounts[account]["group_id"]
        assert ("opened", account, group_id) in told and ("closed", account, group_id) in told, notes
