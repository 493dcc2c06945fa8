"""One alert, several accounts (DESIGN §3.10): routes, the alert's own accounts, per-account pools and
idempotency, the ``accounts`` map of the answer, exits reaching every account holding the key."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3

from engine.app.context import Stores
from engine.config import clear_cache
from engine.domain.models import GroupStatus
from tests.support.webhook import WebhookClient, alert, exit_alert, minute_times

SUB = "binance-sub"


def _put(document: str, value: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=f"/execution-engine/local/{document}", Value=json.dumps(value), Type="String", Overwrite=True
    )
    clear_cache()


def _two_accounts(pool: dict[str, Any] | None = None) -> None:
    _put("engine", {"accounts": {"binance": {}, "bybit": {}, "okx": {}, SUB: {"exchange": "binance"}}})
    _put("routes", {"BINANCE": [{"account": "binance"}, {"account": SUB, "size_multiplier": 0.5}]})
    if pool is not None:
        _put("pool", pool)


def _capital(st: Stores, group_id: str) -> Decimal:
    group = st.groups.get(group_id)
    assert group is not None
    return group.pyramids[0].capital_usd


def test_one_alert_opens_a_group_on_each_routed_account_the_second_with_half_the_capital(
    client: WebhookClient, st: Stores
) -> None:
    # Given binance-sub on binance, routed at half size
    _two_accounts()
    body = alert()
    # When one alert arrives
    status, answer = client.post(body)
    # Then two groups opened; the answer is the first account's plus every account's
    assert (status, answer["outcome"]) == (202, "opened"), answer
    accounts = answer["accounts"]
    assert sorted(accounts) == ["binance", SUB]
    assert accounts["binance"]["group_id"] == answer["group_id"]
    assert accounts[SUB]["outcome"] == "opened"
    main, sub = accounts["binance"]["group_id"], accounts[SUB]["group_id"]
    assert main != sub
    assert _capital(st, sub) * 2 == _capital(st, main) == Decimal(200)
    sub_group = st.groups.get(sub)
    assert sub_group is not None and sub_group.key.startswith(f"{SUB}#BTC/USDT#60#long")
    # And a resend gets the same answer without doing anything twice
    assert client.post(body) == (status, answer)
    assert len(st.groups.list_open()) == 2


def test_a_full_pool_on_one_account_does_not_stop_the_other(client: WebhookClient, st: Stores) -> None:
    # Given a pool of 1 on binance (binance-sub keeps the default 10)
    _two_accounts({"accounts": {"binance": {"max_open_groups": 1}}})
    times = minute_times(2)
    first = client.post(alert(timestamp=times[0]))[1]
    assert {name: a["outcome"] for name, a in first["accounts"].items()} == {
        "binance": "opened",
        SUB: "opened",
    }
    # When a second symbol's alert arrives
    status, second = client.post(alert(symbol="ETHUSDT", entry_price="3000", timestamp=times[1]))
    # Then binance queues it (its pool is full) and binance-sub opens it
    assert status == 202
    assert second["accounts"]["binance"]["outcome"] == "queued"
    assert second["accounts"][SUB]["outcome"] == "opened"
    assert (second["outcome"], second["queue_id"]) == ("queued", second["accounts"]["binance"]["queue_id"])
    # And /pool counts each account's own pool
    assert st.pool.counts() == {"binance": 1, SUB: 2}


def test_an_exit_reaches_every_account_holding_the_key_whatever_the_routes_say(
    client: WebhookClient, st: Stores
) -> None:
    # Given both accounts holding a group, then the route to binance-sub removed
    _two_accounts()
    times = minute_times(2)
    opened = client.post(alert(timestamp=times[0]))[1]
    _put("routes", {"BINANCE": [{"account": "binance"}]})
    # When the strategy exits
    status, answer = client.post(exit_alert(timestamp=times[1]))
    # Then both groups are closing
    assert status == 202
    assert {name: a["outcome"] for name, a in answer["accounts"].items()} == {
        "binance": "exited",
        SUB: "exited",
    }
    for account in ("binance", SUB):
        group = st.groups.get(opened["accounts"][account]["group_id"])
        assert group is not None and group.status in (GroupStatus.CLOSING, GroupStatus.CLOSED)


def test_an_alert_may_name_its_own_accounts(client: WebhookClient, st: Stores) -> None:
    _two_accounts()
    body = alert()
    body["accounts"] = [SUB]
    status, answer = client.post(body)
    assert (status, list(answer["accounts"])) == (202, [SUB])
    assert answer["outcome"] == "opened"
    assert [group.exchange for group in st.groups.list_open()] == [SUB]
    unknown = alert(symbol="ETHUSDT", entry_price="3000")
    unknown["accounts"] = ["nope"]
    status, refused = client.post(unknown)
    assert (status, refused["error"]) == (400, "unknown_account")


def test_a_single_account_config_answers_as_before(client: WebhookClient) -> None:
    status, answer = client.post(alert())
    assert (status, answer["outcome"]) == (202, "opened")
    assert sorted(answer) == ["group_id", "outcome", "reason"]


def test_an_account_that_failed_is_503_and_the_resend_runs_only_that_account(
    client: WebhookClient, st: Stores, monkeypatch: Any
) -> None:
    # Given the binance-sub step failing once with a conflict (a resend is wanted)
    from engine.app.intake import RoutingConflict, webhook

    _two_accounts()
    original = webhook.route_signal
    calls: dict[str, int] = {}

    def flaky(ctx: Any) -> Any:
        calls[ctx.exchange] = calls.get(ctx.exchange, 0) + 1
        if ctx.exchange == SUB and calls[SUB] == 1:
            raise RoutingConflict("the key kept changing")
        return original(ctx)

    monkeypatch.setattr(webhook, "route_signal", flaky)
    body = alert()
    # When the alert arrives, then it is 503 with the map: binance opened, binance-sub in error
    status, answer = client.post(body)
    assert (status, answer["error"]) == (503, "accounts_incomplete"), answer
    assert answer["accounts"]["binance"]["outcome"] == "opened"
    assert answer["accounts"][SUB]["outcome"] == "error"
    # When TradingView resends it, then only binance-sub runs again and both are answered
    status, again = client.post(body)
    assert status == 202, again
    assert {name: a["outcome"] for name, a in again["accounts"].items()} == {
        "binance": "opened",
        SUB: "opened",
    }
    assert calls == {"binance": 1, SUB: 2}
    assert again["accounts"]["binance"] == answer["accounts"]["binance"]
