"""GET /equity after a day of trades: each point's realised PnL is that of the groups closed by then.

Trades go through the real flow (streams, paper exchange at 0.1 % fees); closes through the operator
API; the order sync records an equity point per run.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import engine_context, stores
from engine.app.sync import run_sync
from engine.domain.models import GroupStatus, utcnow
from engine.local.events import api_gateway_event
from tests.support.streams import deliver, load_function
from tests.support.trading import PAPER, TradingWorld, configure, stored_group


def call(method: str, target: str) -> tuple[int, dict[str, Any]]:
    path, _, query = target.partition("?")
    event = api_gateway_event(
        method=method,
        path=path,
        query=query,
        headers=[],
        body=b"",
        resource="/{proxy+}",
        source_ip="127.0.0.1",
        path_parameters={"proxy": path.lstrip("/")},
    )
    reply = deliver(load_function("operator_api"), event)
    return reply["statusCode"], json.loads(reply["body"])


@pytest.fixture
def world(dynamodb: Any) -> TradingWorld:
    configure()
    return TradingWorld()


def _operator_close(world: TradingWorld, group_id: str) -> None:
    status, body = call("POST", f"/groups/{group_id}/close")
    assert status == 200 and body["changed"] is True
    world.drain()
    assert world.group(group_id).status == GroupStatus.CLOSED


def test_equity_history_matches_the_realised_pnl_of_closed_groups(world: TradingWorld) -> None:
    balance = Decimal(str(PAPER["balance_usd"]))
    day = utcnow().replace(microsecond=0)
    # Given a day: A bought 10 at 100 and closed at 110; B bought 10 at 50 and closed at 45;
    # C bought 10 at 20 and still open at 22; the order sync records a point after each step
    a = world.open_group("AAA/USDT", [("100", "10")], now=day)
    run_sync(engine_context(), day, force=True)
    world.set_price("AAA/USDT", "110")
    _operator_close(world, a.id)
    run_sync(engine_context(), day + timedelta(hours=2), force=True)
    b = world.open_group("BBB/USDT", [("50", "10")], now=day + timedelta(hours=4))
    world.set_price("BBB/USDT", "45")
    _operator_close(world, b.id)
    run_sync(engine_context(), day + timedelta(hours=6), force=True)
    world.open_group("CCC/USDT", [("20", "10")], now=day + timedelta(hours=8))
    world.set_price("CCC/USDT", "22")
    run_sync(engine_context(), day + timedelta(hours=8), force=True)

    # When the equity history is read
    status, body = call("GET", "/equity")

    # Then every point's realised PnL is that of the groups closed by then, net of fees:
    # A: +100 - 1.00 entry fee - 1.10 exit fee = 97.90; B: -50 - 0.50 - 0.45 = -50.95
    assert status == 200
    realized_a = world.group(a.id).figures.realized_pnl_usd
    realized_b = world.group(b.id).figures.realized_pnl_usd
    assert (realized_a, realized_b) == (Decimal("97.9"), Decimal("-50.95"))
    points = body["points"]
    assert [p["realized_usd"] for p in points] == [0, 97.9, float(realized_a + realized_b), 46.95]
    # ... and equity adds C's unrealised +20 to the starting balance and the realised PnL
    assert points[-1]["equity_usd"] == float(balance + realized_a + realized_b + 20)
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)


def test_equity_per_account_is_its_own_series_next_to_the_total(dynamodb: Any) -> None:
    # Given binance holding AAA (10 at 100, now 110: +100) and binance-sub holding DDD (10 at 100,
    # now 88: -120); okx configured with no group
    accounts = {"binance": {}, "bybit": {}, "okx": {}, "binance-sub": {"exchange": "binance"}}
    configure(engine={"accounts": accounts})
    the_stores = stores()
    balance = Decimal(str(PAPER["balance_usd"]))
    day = utcnow().replace(microsecond=0)
    stored_group(the_stores, "AAA/USDT", [[("100", "10")]], price="110", now=day)
    stored_group(the_stores, "DDD/USDT", [[("100", "10")]], price="88", now=day, exchange="binance-sub")
    # When the order sync records its points twice and each account's curve is read
    run_sync(engine_context(), day, force=True)
    run_sync(engine_context(), day + timedelta(hours=1), force=True)
    names = ("binance", "binance-sub", "okx", "nope")
    curves = {name: call("GET", f"/equity?account={name}") for name in names}
    status, total = call("GET", "/equity")

    # Then each account's curve is its own groups on the paper balance, one point per sync
    assert {name: reply[0] for name, reply in curves.items()} == dict.fromkeys(curves, 200)
    equities = {name: [p["equity_usd"] for p in reply[1]["points"]] for name, reply in curves.items()}
    assert equities == {
        "binance": [float(balance + 100)] * 2,
        "binance-sub": [float(balance - 120)] * 2,
        "okx": [float(balance)] * 2,
        "nope": [],
    }
    assert curves["binance-sub"][1]["account"] == "binance-sub"
    # And the total curve is kept as before: every account's groups on one balance
    assert status == 200 and total["account"] is None
    assert [p["equity_usd"] for p in total["points"]] == [float(balance - 20)] * 2
