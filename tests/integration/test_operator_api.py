"""The operator API (DESIGN §6) through its Lambda handler, with API Gateway REST proxy events shaped by
``engine.local.events`` (resource ``/{proxy+}`` as the local runtime sends them, stage prefix in
``requestContext.path`` only): every route, the 404/409 cases, repeats answered 200 as no-ops.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, stores
from engine.domain.models import GroupStatus, OrderPurpose, OrderStatus
from engine.local.events import api_gateway_event
from tests.support.builders import make_queue_entry
from tests.support.streams import deliver, load_function
from tests.support.trading import configure, stored_group

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
GROUP_FIELDS = {
    "id", "exchange", "symbol", "timeframe", "side", "status", "pyramid_count", "filled_legs", "total_legs",
    "quantity", "avg_entry", "invested_usd", "unrealized_pnl_usd", "unrealized_pnl_percent",
    "realized_pnl_usd", "created_at", "closed_at",
}  # fmt: skip
ORDER_FIELDS = {
    "id", "client_order_id", "purpose", "side", "type", "price", "amount", "filled", "average", "status",
    "reason",
}  # fmt: skip


def call(
    method: str,
    path: str,
    query: str = "",
    *,
    resource: str = "/{proxy+}",
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Invoke operator_api like API Gateway does; (status, JSON body)."""
    event = api_gateway_event(
        method=method,
        path=path,
        query=query,
        headers=[("Accept", "application/json")],
        body=b"",
        resource=resource,
        source_ip="127.0.0.1",
        path_parameters=params if params is not None else {"proxy": path.lstrip("/")},
    )
    reply = deliver(load_function("operator_api"), event)
    return reply["statusCode"], json.loads(reply["body"])


@pytest.fixture
def the_stores(dynamodb: Any) -> Stores:
    configure(risk={"timer_start": "after_all_dca_filled"})
    return stores()


def _open(the_stores: Stores, symbol: str = "AAA/USDT", price: str = "88") -> str:
    return stored_group(the_stores, symbol, [[("100", "10")]], price=price, now=T0).id


def _closed(the_stores: Stores) -> str:
    group_id = _open(the_stores, "EEE/USDT")
    group = the_stores.groups.get(group_id)
    assert group is not None
    group.status = GroupStatus.CLOSED
    group.closed_at = T0
    the_stores.groups.save(group, now=T0)
    return group_id


# -- reads -----------------------------------------------------------------------------------------


def test_groups_lists_open_groups_and_all_on_request(the_stores: Stores) -> None:
    # Given an open and a closed group
    open_id, closed_id = _open(the_stores), _closed(the_stores)
    # When the groups are listed, then only the open one; with status=all both; with status=closed the closed
    status, body = call("GET", "/groups")
    assert status == 200 and [g["id"] for g in body["groups"]] == [open_id]
    _, every = call("GET", "/groups", "status=all")
    assert {g["id"] for g in every["groups"]} == {open_id, closed_id}
    _, closed = call("GET", "/groups", "status=closed")
    assert [g["id"] for g in closed["groups"]] == [closed_id]


def test_groups_refuses_an_unknown_status_filter(the_stores: Stores) -> None:
    status, body = call("GET", "/groups", "status=sideways")
    assert status == 400 and body["error"] == "bad_request" and "sideways" in body["reason"]


def test_group_detail_has_the_contract_shapes(the_stores: Stores) -> None:
    # Given an open group of 10 at 100 priced at 88
    group_id = _open(the_stores)
    # When it is read
    status, body = call("GET", f"/groups/{group_id}")
    # Then the group, its pyramids and its orders carry the contract's names and units
    assert status == 200
    group = body["group"]
    assert set(group) >= GROUP_FIELDS
    assert group["side"] == "long" and group["status"] == "active"
    assert group["quantity"] == 10 and group["avg_entry"] == 100 and group["invested_usd"] == 1000
    assert group["unrealized_pnl_usd"] == -120 and group["unrealized_pnl_percent"] == -12
    assert ISO_Z.match(group["created_at"]) and group["closed_at"] is None
    assert [p["index"] for p in body["pyramids"]] == [1]
    (order,) = body["orders"]
    assert set(order) >= ORDER_FIELDS
    assert (order["purpose"], order["side"], order["type"], order["status"]) == (
        "entry",
        "buy",
        "market",
        "filled",
    )
    assert order["amount"] == 10 and order["filled"] == 10 and order["average"] == 100


def test_group_detail_matches_an_explicit_resource_too(the_stores: Stores) -> None:
    # Given the REST API's own resource /groups/{id} (not the proxy), when a group is read, then it resolves
    group_id = _open(the_stores)
    status, body = call("GET", f"/groups/{group_id}", resource="/groups/{id}", params={"id": group_id})
    assert status == 200 and body["group"]["id"] == group_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/groups/nope"),
        ("POST", "/groups/nope/block"),
        ("POST", "/groups/nope/unblock"),
        ("POST", "/groups/nope/skip"),
        ("POST", "/groups/nope/close"),
        ("POST", "/queue/nope/promote"),
        ("DELETE", "/queue/nope"),
        ("GET", "/no-such-route"),
        ("POST", "/groups/nope/explode"),
    ],
)
def test_unknown_ids_and_routes_are_404_not_found(the_stores: Stores, method: str, path: str) -> None:
    status, body = call(method, path)
    assert status == 404 and body["error"] == "not_found" and body["reason"]


def test_pool_counts_open_slots(the_stores: Stores) -> None:
    # Given two open groups on binance and the default pool of 10 per account (binance, bybit, okx)
    _open(the_stores)
    _open(the_stores, "BBB/USDT")
    status, body = call("GET", "/pool")
    assert status == 200
    assert (body["max_open_groups"], body["open"], body["free"]) == (30, 2, 28)
    assert body["accounts"]["binance"] == {"max_open_groups": 10, "open": 2, "free": 8}
    assert body["accounts"]["okx"] == {"max_open_groups": 10, "open": 0, "free": 10}
    # And ?account= keeps one account's pool
    status, body = call("GET", "/pool", "account=binance")
    assert (body["max_open_groups"], body["open"], body["free"], list(body["accounts"])) == (
        10,
        2,
        8,
        ["binance"],
    )


def test_queue_is_listed_in_promotion_order_with_ranks(the_stores: Stores) -> None:
    # Given three queued entries: the oldest, one replaced twice, one replaced once
    oldest = make_queue_entry(id="q-old", symbol="ETH/USDT", queued_at=T0)
    twice = make_queue_entry(
        id="q-two", symbol="SOL/USDT", replacement_count=2, queued_at=T0 + timedelta(minutes=2)
    )
    once = make_queue_entry(
        id="q-one", symbol="BNB/USDT", replacement_count=1, queued_at=T0 + timedelta(minutes=1)
    )
    for entry in (oldest, twice, once):
        assert the_stores.queue.enqueue(entry)
    # When the queue is read, then replacement count outranks age (default rules), ranks from 1
    status, body = call("GET", "/queue")
    assert status == 200
    assert [(q["id"], q["rank"]) for q in body["queue"]] == [("q-two", 1), ("q-one", 2), ("q-old", 3)]
    first = body["queue"][0]
    assert first["side"] == "long" and first["entry_price"] == 2500.25 and ISO_Z.match(first["queued_at"])


def test_equity_lists_points_oldest_first(the_stores: Stores) -> None:
    # Given two equity points
    the_stores.equity.append(T0 + timedelta(hours=1), Decimal("-3.5"), Decimal("9996.5"))
    the_stores.equity.append(T0, Decimal(0), Decimal(10000))
    # When read (all, then since the second), then numbers and Z times, oldest first
    status, body = call("GET", "/equity")
    assert status == 200
    assert body["points"] == [
        {"at": "2026-03-02T10:00:00Z", "realized_usd": 0, "equity_usd": 10000},
        {"at": "2026-03-02T11:00:00Z", "realized_usd": -3.5, "equity_usd": 9996.5},
    ]
    _, later = call("GET", "/equity", "since=2026-03-02T10:30:00Z")
    assert [p["at"] for p in later["points"]] == ["2026-03-02T11:00:00Z"]
    bad, error = call("GET", "/equity", "since=yesterday")
    assert bad == 400 and error["error"] == "bad_request"


# -- group controls ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "flag", "value"),
    [("block", "risk_blocked", True), ("skip", "risk_skip_once", True)],
)
def test_flag_controls_change_once_and_repeat_as_no_ops(
    the_stores: Stores, action: str, flag: str, value: bool
) -> None:
    group_id = _open(the_stores)
    # When the control is posted, then the flag is set
    status, body = call("POST", f"/groups/{group_id}/{action}")
    assert status == 200 and body["changed"] is True and body["group"][flag] is value
    # When it is posted again, then 200 and nothing changes
    again, repeat = call("POST", f"/groups/{group_id}/{action}")
    assert again == 200 and repeat["changed"] is False and repeat["group"][flag] is value
    # ... and the change was recorded once
    assert [a.group_id for a in the_stores.risk_actions.list_recent()] == [group_id]


def test_unblock_clears_the_block_and_repeats_as_a_no_op(the_stores: Stores) -> None:
    group_id = _open(the_stores)
    call("POST", f"/groups/{group_id}/block")
    status, body = call("POST", f"/groups/{group_id}/unblock")
    assert status == 200 and body["changed"] is True and body["group"]["risk_blocked"] is False
    again, repeat = call("POST", f"/groups/{group_id}/unblock")
    assert again == 200 and repeat["changed"] is False


@pytest.mark.parametrize("action", ["block", "skip", "close"])
def test_controls_on_a_closed_group_are_409_invalid_state(the_stores: Stores, action: str) -> None:
    group_id = _closed(the_stores)
    status, body = call("POST", f"/groups/{group_id}/{action}")
    assert status == 409 and body["error"] == "invalid_state"


def test_close_starts_a_market_close_and_repeats_as_a_no_op(the_stores: Stores) -> None:
    # Given an open group holding 10 (no live order)
    group_id = _open(the_stores)
    # When the operator closes it
    status, body = call("POST", f"/groups/{group_id}/close")
    # Then it is closing for the operator's reason, with one market exit order for 10
    assert status == 200 and body["changed"] is True
    assert body["group"]["status"] == "closing" and body["group"]["close_reason"] == "operator"
    assert body["group"]["close_note"] == "operator close"
    exits = [o for o in the_stores.orders.list_for_group(group_id) if o.purpose == OrderPurpose.EXIT]
    assert [(o.amount, o.status) for o in exits] == [(Decimal(10), OrderStatus.PENDING)]
    # When it is closed again, then 200 and nothing new
    again, repeat = call("POST", f"/groups/{group_id}/close")
    assert again == 200 and repeat["changed"] is False
    assert len([o for o in the_stores.orders.list_for_group(group_id) if o.purpose == OrderPurpose.EXIT]) == 1


# -- queue controls ----------------------------------------------------------------------------------


def test_promote_places_the_entry_orders_and_repeats_as_a_no_op(the_stores: Stores) -> None:
    # Given a queued ETH entry and a free slot
    entry = make_queue_entry(id="q-eth", symbol="ETH/USDT", queued_at=T0)
    assert the_stores.queue.enqueue(entry)
    # When the operator promotes it
    status, body = call("POST", "/queue/q-eth/promote")
    # Then a live group holds a slot, with pending entry legs written for the executor, and the entry is gone
    assert status == 200 and body["changed"] is True
    group_id = body["group"]["id"]
    assert body["group"]["status"] == "live" and body["group"]["symbol"] == "ETH/USDT"
    legs = [o for o in the_stores.orders.list_for_group(group_id) if o.purpose == OrderPurpose.ENTRY]
    assert legs and all(o.status == OrderStatus.PENDING for o in legs)
    assert len(body["orders"]) == len(legs)
    assert the_stores.queue.get("q-eth") is None
    assert group_id in the_stores.pool.status()[1]
    # When promoted again, then 200 with the same group and nothing new
    again, repeat = call("POST", "/queue/q-eth/promote")
    assert again == 200 and repeat["changed"] is False and repeat["group"]["id"] == group_id
    assert len(the_stores.orders.list_for_group(group_id)) == len(legs)


def test_promote_into_a_full_pool_is_409_pool_full(the_stores: Stores) -> None:
    # Given a pool of one slot, taken, and a queued entry
    configure(pool={"max_open_groups": 1})
    _open(the_stores)
    assert the_stores.queue.enqueue(make_queue_entry(id="q-eth", queued_at=T0))
    # When it is promoted, then 409 pool_full and it stays queued
    status, body = call("POST", "/queue/q-eth/promote")
    assert status == 409 and body["error"] == "pool_full"
    assert the_stores.queue.get("q-eth") is not None


def test_delete_removes_a_queued_entry_and_repeats_as_a_no_op(the_stores: Stores) -> None:
    assert the_stores.queue.enqueue(make_queue_entry(id="q-eth", queued_at=T0))
    status, body = call("DELETE", "/queue/q-eth")
    assert status == 200 and body == {"removed": "q-eth", "changed": True}
    assert the_stores.queue.get("q-eth") is None
    _, queue = call("GET", "/queue")
    assert queue["queue"] == []
    again, repeat = call("DELETE", "/queue/q-eth")
    assert again == 200 and repeat["changed"] is False


# -- risk --------------------------------------------------------------------------------------------


def test_risk_view_shows_timer_loser_winners_plan_and_actions(the_stores: Stores) -> None:
    # Given a loser -120 whose timer expired and a winner +200
    loser = _open(the_stores)
    winner = stored_group(the_stores, "BBB/USDT", [[("100", "20")]], price="110", now=T0).id
    group = the_stores.groups.get(loser)
    assert group is not None
    group.risk_timer_started_at = datetime.now(UTC) - timedelta(minutes=20)
    the_stores.groups.save(group, now=T0)
    # When the risk view is read
    status, body = call("GET", "/risk")
    # Then it shows the running timer (expired), the loser, the winner and the plan, and no action yet
    assert status == 200
    assert [(t["group_id"], t["expired"]) for t in body["timers"]] == [(loser, True)]
    assert body["loser"]["id"] == loser and [w["id"] for w in body["winners"]] == [winner]
    assert [(step["role"], step["group_id"], step["qty"]) for step in body["plan"]] == [
        ("loser", loser, 10),
        ("winner", winner, 13),  # 12.2 needed with fees, rounded up to the step so the offset covers them
    ]
    assert body["actions"] == []
    # When the operator runs the risk engine now, then it acts and the action shows in the view
    ran, run = call("POST", "/risk/run")
    assert ran == 200 and run["ran"] is True and run["action"]["group_id"] == loser
    _, after = call("GET", "/risk")
    assert [a["group_id"] for a in after["actions"]] == [loser]
    assert after["loser"] is None and after["plan"] == []
