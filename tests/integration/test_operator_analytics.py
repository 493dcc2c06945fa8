"""The operator's analytics, CSV export and pause control through the operator_api handler (moto).

Given closed groups stored with their realised PnL (the day counters move in the same write), when
``GET /analytics`` is asked, then the figures match; the ``all`` period is served from a stored roll-up of
settled days plus the newest days. ``POST /engine/pause`` writes the operator control item (never the
``engine`` document) and new entries are refused while it holds.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores
from engine.domain.models import CloseReason, GroupStatus
from engine.local.events import api_gateway_event
from tests.support.scenario import engine_env
from tests.support.streams import deliver, load_function
from tests.support.trading import stored_group

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def call(method: str, path: str, query: str = "", body: bytes = b"") -> tuple[int, Any, dict[str, Any]]:
    event = api_gateway_event(
        method=method,
        path=path,
        query=query,
        headers=[("Accept", "application/json")],
        body=body,
        resource="/{proxy+}",
        source_ip="127.0.0.1",
        path_parameters={"proxy": path.lstrip("/")},
    )
    reply = deliver(load_function("operator_api"), event)
    headers = {k.lower(): v for k, v in (reply.get("headers") or {}).items()}
    for name, values in (reply.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[-1]
    raw = reply["body"]
    parsed = json.loads(raw) if headers.get("content-type", "").startswith("application/json") else raw
    return reply["statusCode"], parsed, headers


@pytest.fixture
def the_stores(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Stores:
    return engine_env(monkeypatch, clock=lambda: NOW).stores


def close(the_stores: Stores, symbol: str, pnl: str, at: datetime, timeframe: int = 60) -> str:
    group = stored_group(the_stores, symbol, [[("100", "10")]], price="100", now=at - timedelta(hours=1))
    group.status = GroupStatus.CLOSED
    group.closed_at = at
    group.close_reason = CloseReason.TAKE_PROFIT
    group.figures.realized_pnl_usd = Decimal(pnl)
    group.figures.realized_by_day = {at.date().isoformat(): Decimal(pnl)}
    group.figures.quantity = Decimal(0)
    group.timeframe = timeframe
    the_stores.groups.save(group, now=at)
    return group.id


def test_one_win_and_one_loss_give_two_trades_half_won_and_the_profit_factor(the_stores: Stores) -> None:
    close(the_stores, "AAA/USDT", "150", NOW - timedelta(hours=3))
    close(the_stores, "BBB/USDT", "-50", NOW - timedelta(hours=2))
    for period in ("all", "day", "week", "month"):
        status, body, _ = call("GET", "/analytics", f"period={period}")
        assert status == 200
        assert (body["trades"], body["wins"], body["losses"]) == (2, 1, 1), period
        assert body["win_rate"] == 50
        assert body["profit_factor"] == 3
        assert body["realized_usd"] == 100
        assert body["max_drawdown_usd"] == 50
        assert body["avg_win_usd"] == 150 and body["avg_loss_usd"] == -50
        assert [b["id"] for b in body["best"]] and [w["id"] for w in body["worst"]]


def test_periods_cover_today_the_last_7_and_30_days(the_stores: Stores) -> None:
    close(the_stores, "AAA/USDT", "10", NOW - timedelta(hours=1))
    close(the_stores, "BBB/USDT", "20", NOW - timedelta(days=3))
    close(the_stores, "CCC/USDT", "-5", NOW - timedelta(days=20))
    close(the_stores, "DDD/USDT", "7", NOW - timedelta(days=100))
    trades = {
        p: call("GET", "/analytics", f"period={p}")[1]["trades"] for p in ("day", "week", "month", "all")
    }
    assert trades == {"day": 1, "week": 2, "month": 3, "all": 4}
    _, week, _ = call("GET", "/analytics", "period=week")
    assert week["days"] == 7
    assert week["from"] == (NOW - timedelta(days=6)).date().isoformat()


def test_all_time_is_served_from_the_stored_rollup_and_folds_new_days_only(the_stores: Stores) -> None:
    old = close(the_stores, "AAA/USDT", "40", NOW - timedelta(days=10))
    close(the_stores, "BBB/USDT", "-10", NOW - timedelta(hours=1))
    _, first, _ = call("GET", "/analytics", "period=all")
    assert first["trades"] == 2
    rollup = the_stores.state.get("analytics/*")
    assert rollup is not None and rollup["through"] == (NOW - timedelta(days=2)).date().isoformat()
    # Given the settled group altered behind the roll-up's back, the all-time figures do not re-read it.
    group = the_stores.groups.get(old)
    assert group is not None
    group.figures.realized_pnl_usd = Decimal(999)
    the_stores.groups.save(group, now=NOW)
    _, again, _ = call("GET", "/analytics", "period=all")
    assert again["realized_usd"] == 30


def test_analytics_per_account_and_bad_period(the_stores: Stores) -> None:
    close(the_stores, "AAA/USDT", "10", NOW - timedelta(hours=1))
    _, mine, _ = call("GET", "/analytics", "period=all&account=binance")
    assert mine["trades"] == 1 and mine["account"] == "binance"
    _, other, _ = call("GET", "/analytics", "period=all&account=bybit")
    assert other["trades"] == 0
    status, error, _ = call("GET", "/analytics", "period=year")
    assert status == 400 and error["error"] == "bad_request"


def test_closed_groups_export_as_csv(the_stores: Stores) -> None:
    first = close(the_stores, "AAA/USDT", "10", NOW - timedelta(hours=2))
    second = close(the_stores, "BBB/USDT", "-4", NOW - timedelta(hours=1))
    status, body, headers = call("GET", "/groups", "status=closed&format=csv")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["id"] for r in rows] == [first, second]
    assert rows[1]["realized_pnl_usd"] == "-4" and rows[0]["symbol"] == "AAA/USDT"
    assert call("GET", "/groups", "status=open&format=csv")[0] == 400


def test_pause_and_resume_write_the_control_item_not_the_document(the_stores: Stores) -> None:
    status, paused, _ = call("POST", "/engine/pause", body=b'{"note": "maintenance"}')
    assert status == 200 and paused["paused"] and paused["paused_by_operator"] and paused["changed"]
    assert not paused["paused_by_document"] and paused["note"] == "maintenance"
    assert the_stores.control.get().paused
    assert call("POST", "/engine/pause")[1]["changed"] is False
    state = the_stores.counters.entry_state(
        key="binance#BTC/USDT#60#long",
        account="binance",
        symbol="BTC/USDT",
        day="2026-06-10",
        exchange="binance",
    )
    assert state.operator_paused
    _, resumed, _ = call("POST", "/engine/resume")
    assert resumed["paused"] is False and resumed["changed"]
    assert call("GET", "/engine")[1]["paused"] is False


def test_the_console_page_and_its_assets_are_served(the_stores: Stores) -> None:
    status, page, headers = call("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'data-auth="none"' in page and "console.js" in page
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert call("GET", "/console/console.js")[0] == 200
    assert call("GET", "/console/secrets.txt")[0] == 404


def test_in_aws_the_page_carries_the_public_sign_in_settings_only(
    the_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stack's environment (hosted UI and public client id), when the page is served,
    # then it signs in there and may call only this origin and the token endpoint.
    monkeypatch.setenv("CONSOLE_AUTH_URL", "https://desk-console.auth.ap-northeast-1.amazoncognito.com/")
    monkeypatch.setenv("CONSOLE_CLIENT_ID", "abc123client")
    status, page, headers = call("GET", "/")
    assert status == 200
    assert 'data-auth="cognito"' in page and 'data-client-id="abc123client"' in page
    assert 'data-auth-url="https://desk-console.auth.ap-northeast-1.amazoncognito.com"' in page
    assert (
        "connect-src 'self' https://desk-console.auth.ap-northeast-1.amazoncognito.com;"
        in (headers["content-security-policy"])
    )
    assert "secret" not in page.lower()
