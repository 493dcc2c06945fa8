"""Money scenarios of issue 12 over HTTP on the shared runtime (DESIGN §3.5 lots).

Uses LTC/USDT on the 5-minute timeframe with a DCA document of its own, so nothing else shares it.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.stack import LocalStack, entry_signal, orders_of

pytestmark = pytest.mark.e2e

#: Finding 1's grid: legs at 0 % and -10 %, weights 50/50, leg TP 0.5 %, aggregate 1 %, hybrid.
HYBRID_TWO_LEGS = {
    "levels": [
        {"gap_percent": 0, "weight_percent": 50, "tp_percent": 0.5},
        {"gap_percent": -10, "weight_percent": 50, "tp_percent": 0.5},
    ],
    "tp_mode": "hybrid",
    "tp_aggregate_percent": 1,
}


def test_hybrid_take_profits_close_the_group_without_a_loss(stack: LocalStack) -> None:
    # Given the hybrid two-leg DCA document for binance LTC/USDT 5m and LTC at 100
    ssm = stack.aws_client("ssm")
    name = stack.info["parameter_prefix"] + "dca/binance/LTCUSDT/5"
    ssm.put_parameter(Name=name, Value=json.dumps(HYBRID_TWO_LEGS), Type="String", Overwrite=True)
    stack.prices({"LTC/USDT": 100})
    pool_before = stack.pool()
    # When an entry of 200 USD arrives: leg 1 (1 @ 100) fills, leg 2 (1.1 @ 90) rests
    status, reply = stack.signal(entry_signal(stack.secret, "LTCUSDT", 100, size_usd=200, timeframe="5"))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] == 1)
    # When the price falls to 90 (leg 2 fills), then to 90.45 (leg 2's TP fills)
    stack.prices({"LTC/USDT": 90})
    stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] == 2)
    stack.prices({"LTC/USDT": 90.45})
    detail = stack.tick_until(
        lambda: stack.group(group_id),
        lambda d: any(o["status"] == "filled" for o in orders_of(d, "tp")) and d["group"]["quantity"] == 1,
    )
    # Then the lot bought at 100 is what is held: the aggregate waits for 101, not 95.95
    assert detail["group"]["quantity"] == 1 and detail["group"]["avg_entry"] == 100
    stack.prices({"LTC/USDT": 95.95})
    stack.tick()
    assert stack.group(group_id)["group"]["status"] == "active"
    # When the price reaches 101, then the group ends closed with realised >= 0 and its slot is free
    stack.prices({"LTC/USDT": 101})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")
    group = detail["group"]
    assert group["quantity"] == 0 and group["realized_pnl_usd"] >= 0
    assert stack.pool() == pool_before
