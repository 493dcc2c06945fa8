"""Protections over HTTP on the shared runtime (DESIGN §3.9): the alert's stop-loss and a per-symbol
document's trailing take-profit, driven by the paper price and ``/_local/tick``.

Each test uses its own symbol (AVAX, ADA) and leaves nothing open.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.stack import LocalStack, entry_signal, orders_of

pytestmark = pytest.mark.e2e


def test_an_alerts_stop_loss_below_the_grid_closes_the_group_and_frees_its_slot(stack: LocalStack) -> None:
    # Given an AVAX/USDT entry whose alert carries a stop below its grid (grid 30 .. 28.80, stop 27)
    stack.prices({"AVAX/USDT": 30})
    pool_before = stack.pool()
    payload = entry_signal(stack.secret, "AVAXUSDT", 30, size_usd=500)
    payload["risk"] = {"stop_loss": 27, "take_profit": None, "max_slippage_percent": 1}
    status, reply = stack.signal(payload)
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["filled_legs"] == 1)
    assert detail["group"]["protection"]["stop_price"] == 27
    assert detail["group"]["protection"]["alert_stop"] == 27

    # When the price falls through the whole grid but not the stop: every leg fills, the group stays open
    stack.prices({"AVAX/USDT": 27.5})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "active")
    stack.tick()
    assert stack.group(group_id)["group"]["status"] == "active"

    # When it falls through the stop
    stack.prices({"AVAX/USDT": 26.9})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")

    # Then it closed stop_loss: TPs cancelled, one market sell of everything held, the slot freed
    group = detail["group"]
    assert group["close_reason"] == "stop_loss", group
    assert group["quantity"] == 0 and group["realized_pnl_usd"] < 0
    assert all(o["status"] == "cancelled" for o in orders_of(detail, "tp"))
    (close,) = orders_of(detail, "exit")
    assert (close["side"], close["type"], close["status"]) == ("sell", "market", "filled")
    assert close["filled"] == pytest.approx(sum(o["filled"] for o in orders_of(detail, "entry")))
    assert stack.pool() == pool_before


def test_a_trailing_take_profit_stays_open_while_rising_and_closes_after_the_pullback(
    stack: LocalStack,
) -> None:
    # Given a one-leg per-symbol DCA document with a trailing take-profit (activation 2 %, deviation 0.5 %)
    document = {
        "levels": [{"gap_percent": 0, "weight_percent": 100, "tp_percent": 1}],
        "protection": {"trailing_take_profit": {"activation_percent": 2, "deviation_percent": 0.5}},
    }
    ssm = stack.aws_client("ssm")
    ssm.put_parameter(
        Name=stack.info["parameter_prefix"] + "dca/binance/ADAUSDT/1",
        Value=json.dumps(document),
        Type="String",
        Overwrite=True,
    )
    stack.prices({"ADA/USDT": 0.5})
    pool_before = stack.pool()
    status, reply = stack.signal(entry_signal(stack.secret, "ADAUSDT", 0.5, size_usd=100))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    group_id = reply["group_id"]
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "active")
    avg_entry = detail["group"]["avg_entry"]
    assert avg_entry == 0.5

    # When it rises past its 1 % leg TP and past the activation, and keeps rising: open, no TP placed
    for price in (0.505, 0.51, 0.52):
        stack.prices({"ADA/USDT": price})
        stack.tick()
        detail = stack.group(group_id)
        assert detail["group"]["status"] == "active", detail["group"]
        assert orders_of(detail, "tp") == []
    protection = detail["group"]["protection"]
    assert protection["trailing_armed"] is True and protection["high"] == 0.52
    assert protection["trail_price"] == pytest.approx(0.5174)

    # When it falls back less than the deviation: still open
    stack.prices({"ADA/USDT": 0.5175})
    stack.tick()
    assert stack.group(group_id)["group"]["status"] == "active"

    # When it falls back by the deviation from the high
    stack.prices({"ADA/USDT": 0.5174})
    detail = stack.tick_until(lambda: stack.group(group_id), lambda d: d["group"]["status"] == "closed")

    # Then it closed trailing_take_profit above its average entry, and its slot is free
    group = detail["group"]
    assert group["close_reason"] == "trailing_take_profit", group
    (close,) = orders_of(detail, "exit")
    assert close["status"] == "filled" and close["average"] > avg_entry
    assert group["realized_pnl_usd"] > 0
    assert stack.pool() == pool_before
