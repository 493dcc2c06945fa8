"""A group's life over HTTP on the shared runtime: take-profits to closed, an exit, a live config edit.

Each test uses its own symbol and leaves nothing open, so they share one runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.stack import LocalStack, entry_signal, exit_signal, orders_of

pytestmark = pytest.mark.e2e


def _open_symbols(stack: LocalStack) -> set[str]:
    return {group["symbol"] for group in stack.get("/groups")["groups"]}


def test_a_signal_runs_to_closed_through_its_take_profits_and_frees_its_slot(stack: LocalStack) -> None:
    # Given a BTC/USDT price and the pool as it is now
    stack.prices({"BTC/USDT": 60000})
    pool_before = stack.pool()

    # When an entry signal arrives
    status, reply = stack.signal(entry_signal(stack.secret, "BTCUSDT", 60000, size_usd=500))

    # Then a group is opened and takes a slot
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    assert stack.pool()["open"] == pool_before["open"] + 1

    # When the legs reach the paper exchange: the 0 % leg fills at once, the others rest below
    detail = stack.tick_until(
        lambda: stack.group(group_id),
        lambda d: (
            [o["status"] for o in orders_of(d, "entry")] == ["filled", "open", "open", "open", "open"]
            and d["group"]["status"] == "partially_filled"
        ),
    )
    assert detail["group"]["total_legs"] == 5 and detail["group"]["filled_legs"] == 1

    # When the price falls through the whole grid
    stack.prices({"BTC/USDT": 57000})
    detail = stack.tick_until(
        lambda: stack.group(group_id),
        lambda d: d["group"]["status"] == "active" and all(o["status"] == "open" for o in orders_of(d, "tp")),
    )

    # Then every leg is filled and has its own resting take-profit for what it holds
    entries, tps = orders_of(detail, "entry"), orders_of(detail, "tp")
    assert all(o["status"] == "filled" for o in entries)
    assert len(tps) == 5 and all(o["side"] == "sell" and o["type"] == "limit" for o in tps)
    assert sorted(o["amount"] for o in tps) == sorted(o["filled"] for o in entries)

    # When the price rises above every take-profit
    stack.prices({"BTC/USDT": 61000})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")

    # Then the take-profits filled, nothing is held, the profit is realised
    group = detail["group"]
    assert all(o["status"] == "filled" for o in orders_of(detail, "tp"))
    assert group["quantity"] == 0 and group["realized_pnl_usd"] > 0 and group["closed_at"]

    # And the slot is free again; the group is listed only with ?status=all
    assert stack.pool() == pool_before
    assert group_id not in {g["id"] for g in stack.get("/groups")["groups"]}
    assert group_id in {g["id"] for g in stack.get("/groups?status=all")["groups"]}


def test_an_exit_signal_cancels_the_resting_legs_and_closes_at_market(stack: LocalStack) -> None:
    # Given an ETH/USDT group whose first leg is filled
    stack.prices({"ETH/USDT": 3000})
    pool_before = stack.pool()
    status, reply = stack.signal(entry_signal(stack.secret, "ETHUSDT", 3000, size_usd=500))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] == 1)

    # When the strategy's exit arrives
    status, reply = stack.signal(exit_signal(stack.secret, "ETHUSDT", 3000))

    # Then it is accepted for that group, which closes once its orders settle
    assert (status, reply["outcome"], reply.get("group_id")) == (202, "exited", group_id), reply
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")

    # And the resting legs and the filled leg's TP were cancelled, one market sell closed the position
    entries = orders_of(detail, "entry")
    assert [o["status"] for o in entries] == ["filled", "cancelled", "cancelled", "cancelled", "cancelled"]
    assert all(o["status"] == "cancelled" for o in orders_of(detail, "tp"))
    (close,) = orders_of(detail, "exit")
    assert (close["side"], close["type"], close["status"]) == ("sell", "market", "filled")
    assert close["filled"] == entries[0]["filled"]
    assert detail["group"]["quantity"] == 0
    assert stack.pool() == pool_before

    # When the exit is sent again with nothing open or queued for the key, then it is ignored
    status, reply = stack.signal(exit_signal(stack.secret, "ETHUSDT", 3000))
    assert (status, reply["outcome"]) == (202, "ignored"), reply


def test_pausing_the_engine_in_ssm_rejects_entries_until_it_is_resumed(stack: LocalStack) -> None:
    # Given the engine paused by an edit of its SSM document (the console's twin)
    stack.prices({"SOL/USDT": 150})
    pool_before = stack.pool()
    stack.edit_config("engine", {"paused": True})
    try:
        # When an entry arrives
        status, reply = stack.signal(entry_signal(stack.secret, "SOLUSDT", 150))

        # Then it is refused with the reason, and nothing is opened
        assert (status, reply["outcome"]) == (202, "rejected"), reply
        assert "engine paused" in reply["reason"]
        assert "SOL/USDT" not in _open_symbols(stack)
        assert stack.pool() == pool_before
    finally:
        stack.edit_config("engine", {"paused": False})

    # When the engine is resumed, then the next entry opens a group
    status, reply = stack.signal(entry_signal(stack.secret, "SOLUSDT", 150))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]

    # And the operator's close takes it to closed and frees the slot
    status, answer = stack.post(f"/groups/{group_id}/close")
    assert status == 200, answer
    detail: dict[str, Any] = stack.tick_until(
        lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed"
    )
    assert detail["group"]["quantity"] == 0
    assert stack.pool() == pool_before
