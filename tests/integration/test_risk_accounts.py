"""The risk engine per account (DESIGN §3.10): one run evaluates each account on its own — one loser per
account, offset only by that account's winners — and ``GET /risk?account=`` shows one account's view.

Groups are stored with figures computed by the domain (``tests.support.trading.stored_group``), as in
``test_risk_engine``; a group's ``exchange`` field names its account (``binance-sub`` trades on binance's
markets, ``engine.accounts``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.app.context import Stores, engine_context, stores
from engine.app.risk import run_risk
from engine.domain.models import CloseReason, GroupStatus, OrderPurpose
from engine.local.events import api_gateway_event
from tests.support.streams import deliver, load_function
from tests.support.trading import configure, stored_group

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EXPIRED = T0 + timedelta(minutes=16)
SUB = "binance-sub"
ACCOUNTS = {"binance": {}, "bybit": {}, "okx": {}, SUB: {"exchange": "binance"}}


@pytest.fixture
def the_stores(dynamodb: Any) -> Stores:
    configure(
        engine={"accounts": ACCOUNTS},
        risk={"timer_start": "after_all_dca_filled", "post_full_wait_minutes": 15},
    )
    return stores()


def _group(s: Stores, symbol: str, account: str, *, qty: str = "10", price: str) -> str:
    """``qty`` held at 100 on ``account``, priced at ``price``."""
    return stored_group(s, symbol, [[("100", qty)]], price=price, now=T0, exchange=account).id


def _risk_closes(s: Stores, group_id: str) -> list[Any]:
    return [o for o in s.orders.list_for_group(group_id) if o.purpose == OrderPurpose.RISK_CLOSE]


def _status(s: Stores, group_id: str) -> GroupStatus:
    group = s.groups.get(group_id)
    assert group is not None
    return group.status


def call(path: str, query: str = "") -> tuple[int, dict[str, Any]]:
    event = api_gateway_event(
        method="GET",
        path=path,
        query=query,
        headers=[("Accept", "application/json")],
        body=b"",
        resource="/{proxy+}",
        source_ip="127.0.0.1",
        path_parameters={"proxy": path.lstrip("/")},
    )
    reply = deliver(load_function("operator_api"), event)
    return reply["statusCode"], json.loads(reply["body"])


def test_one_run_closes_one_loser_per_account_each_paid_by_its_own_winners(the_stores: Stores) -> None:
    # Given binance: loser AAA -120 and winners BBB +200, CCC +100;
    # and binance-sub: loser DDD -120 and winner EEE +200
    main_loser = _group(the_stores, "AAA/USDT", "binance", price="88")
    main_winners = [
        _group(the_stores, "BBB/USDT", "binance", qty="20", price="110"),
        _group(the_stores, "CCC/USDT", "binance", price="110"),
    ]
    sub_loser = _group(the_stores, "DDD/USDT", SUB, price="88")
    sub_winner = _group(the_stores, "EEE/USDT", SUB, qty="20", price="110")
    first = run_risk(engine_context(), T0, force=True)
    assert sorted(first.timers_started) == sorted([main_loser, sub_loser])

    # When the risk engine runs once with both timers expired
    summary = run_risk(engine_context(), EXPIRED, force=True)

    # Then both losers are closing (close reason risk), one action per account
    assert set(summary.accounts) == {"binance", SUB}
    assert [a.group_id for a in summary.actions] == [main_loser, sub_loser]
    for loser in (main_loser, sub_loser):
        group = the_stores.groups.get(loser)
        assert group is not None
        assert group.status == GroupStatus.CLOSING and group.close_reason is CloseReason.RISK
    # And each loser is paid only by its own account's winners
    main_action, sub_action = summary.actions
    assert main_action.details["account"] == "binance" and sub_action.details["account"] == SUB
    assert set(main_action.related_group_ids) <= set(main_winners)
    assert sub_action.related_group_ids == (sub_winner,)
    assert len(_risk_closes(the_stores, sub_winner)) == 1
    assert sum(len(_risk_closes(the_stores, w)) for w in main_winners) == len(main_action.related_group_ids)
    assert "binance: closed loser" in summary.reason and f"{SUB}: closed loser" in summary.reason
    # And both actions are recorded
    assert {a.group_id for a in the_stores.risk_actions.list_recent()} == {main_loser, sub_loser}


def test_a_loser_is_not_paid_by_another_accounts_winners_and_the_other_account_still_acts(
    the_stores: Stores,
) -> None:
    # Given binance: loser AAA -120 and a large winner BBB +1000;
    # and binance-sub: loser DDD -120 with no winner of its own
    main_loser = _group(the_stores, "AAA/USDT", "binance", price="88")
    main_winner = _group(the_stores, "BBB/USDT", "binance", qty="100", price="110")
    sub_loser = _group(the_stores, "DDD/USDT", SUB, price="88")
    run_risk(engine_context(), T0, force=True)

    # When the risk engine runs with both timers expired
    summary = run_risk(engine_context(), EXPIRED, force=True)

    # Then binance's loser is closed and offset by its winner
    assert [a.group_id for a in summary.actions] == [main_loser]
    assert summary.actions[0].related_group_ids == (main_winner,)
    assert _status(the_stores, main_loser) == GroupStatus.CLOSING
    # And binance-sub's loser stays open: binance's winner never pays for it
    sub_run = summary.accounts[SUB]
    assert sub_run.action is None and sub_run.plan is not None and sub_run.plan.winners == []
    assert sub_run.reason.startswith("not acting")
    assert _status(the_stores, sub_loser) == GroupStatus.ACTIVE
    assert len(_risk_closes(the_stores, main_winner)) == 1


def test_get_risk_with_an_account_shows_only_its_timers_plan_and_actions(the_stores: Stores) -> None:
    # Given a loser and a winner on each account, timers started, and binance's loser already acted on
    main_loser = _group(the_stores, "AAA/USDT", "binance", price="88")
    main_winner = _group(the_stores, "BBB/USDT", "binance", qty="20", price="110")
    run_risk(engine_context(), T0, force=True)
    assert run_risk(engine_context(), EXPIRED, force=True).actions[0].group_id == main_loser
    sub_loser = _group(the_stores, "DDD/USDT", SUB, price="80")
    sub_winner = _group(the_stores, "EEE/USDT", SUB, qty="20", price="110")
    run_risk(engine_context(), EXPIRED, force=True)

    # When the operator reads the risk view of binance-sub, then of every account
    status, sub = call("/risk", f"account={SUB}")
    _, everything = call("/risk")

    # Then binance-sub's view holds only its own timer, its next plan and no action
    assert status == 200 and sub["account"] == SUB
    assert [t["group_id"] for t in sub["timers"]] == [sub_loser]
    assert {t["account"] for t in sub["timers"]} == {SUB}
    assert sub["loser"]["id"] == sub_loser and [w["id"] for w in sub["winners"]] == [sub_winner]
    assert sub["plan"] and set(sub["accounts"]) == {SUB}
    assert sub["actions"] == []
    # And binance's view lists its action
    _, main = call("/risk", "account=binance")
    assert [a["group_id"] for a in main["actions"]] == [main_loser]
    assert main["actions"][0]["account"] == "binance"
    assert main["loser"] is None and main_winner not in [t["group_id"] for t in main["timers"]]
    # And the unfiltered view keeps every account's plan side by side
    assert everything["account"] is None
    assert everything["accounts"][SUB]["loser"]["id"] == sub_loser
    assert everything["loser"]["id"] == sub_loser
    assert {a["group_id"] for a in everything["actions"]} == {main_loser}
