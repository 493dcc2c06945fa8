"""Queue promotion on close with a pool of 2, on a runtime of its own (the pool size is global)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.stack import entry_signal, exit_signal

pytestmark = pytest.mark.e2e


def test_a_closing_group_hands_its_slot_to_the_best_queued_signal(start_stack: StartStack) -> None:
    stack = start_stack("queue")
    # Given a pool of 2 (an SSM edit) and prices for four symbols
    stack.edit_config("pool", {"max_open_groups": 2})
    stack.prices({"BTC/USDT": 60000, "ETH/USDT": 3000, "SOL/USDT": 150, "XRP/USDT": 0.6})

    # When four entries arrive
    replies = [
        stack.signal(entry_signal(stack.secret, symbol, price))
        for symbol, price in (("BTCUSDT", 60000), ("ETHUSDT", 3000), ("SOLUSDT", 150), ("XRPUSDT", 0.6))
    ]

    # Then two open groups, two wait in the queue, oldest first
    assert [(status, reply["outcome"]) for status, reply in replies] == [
        (202, "opened"),
        (202, "opened"),
        (202, "queued"),
        (202, "queued"),
    ], replies
    btc_group = replies[0][1]["group_id"]
    sol_queue_id, xrp_queue_id = replies[2][1]["queue_id"], replies[3][1]["queue_id"]
    pool = stack.pool("binance")
    assert (pool["max_open_groups"], pool["open"], pool["free"]) == (2, 2, 0)
    queue = stack.get("/queue")["queue"]
    assert [(e["id"], e["rank"]) for e in queue] == [(sol_queue_id, 1), (xrp_queue_id, 2)]

    # When XRP falls below its queued entry price, then it ranks first (deepest loss)
    stack.prices({"XRP/USDT": 0.57})
    assert [e["id"] for e in stack.get("/queue")["queue"]] == [xrp_queue_id, sol_queue_id]

    # When the BTC group exits and closes
    status, reply = stack.signal(exit_signal(stack.secret, "BTCUSDT", 60000))
    assert (status, reply["outcome"]) == (202, "exited"), reply
    stack.tick_until(lambda: stack.group(btc_group), lambda d: d["group"]["status"] == "closed")

    # Then XRP was promoted into the freed slot; SOL still waits; the pool is full again
    open_groups = stack.get("/groups")["groups"]
    assert sorted(g["symbol"] for g in open_groups) == ["ETH/USDT", "XRP/USDT"]
    assert [e["id"] for e in stack.get("/queue")["queue"]] == [sol_queue_id]
    pool = stack.pool("binance")
    assert (pool["open"], pool["free"]) == (2, 0)

    # And the promoted group trades: its legs reach the paper exchange
    xrp_group = next(g["id"] for g in open_groups if g["symbol"] == "XRP/USDT")
    detail = stack.tick_until(lambda: stack.group(xrp_group), lambda d: d["group"]["filled_legs"] >= 1)
    assert detail["group"]["status"] in ("partially_filled", "active")

    # When an exit arrives for the key that is only queued, then the queued entry is removed
    status, reply = stack.signal(exit_signal(stack.secret, "SOLUSDT", 150))
    assert (status, reply["outcome"], reply.get("queue_id")) == (202, "exited", sol_queue_id), reply
    assert stack.get("/queue")["queue"] == []
