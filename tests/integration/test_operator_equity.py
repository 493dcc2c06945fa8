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

from engine.app.context import engine_context
from engine.app.sync import run_sync
from engine.domain.models import GroupStatus, utcnow
from engine.local.events import api_gateway_event
from tests.support.streams import deliver, load_function
from tests.support.trading import PAPER, TradingWorld, configure


def call(method: str, path: str) -> tuple[int, dict[str, Any]]:
    event = api_gateway_event(
        method=method,
        path=path,
        query="",
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
