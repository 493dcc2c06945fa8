"""DESIGN §3.8's worked example end to end, through the real streams and the paper exchange.

Given a loser -120 (AAA: 10 held at avg 100, price 88), W1 +80 (BBB: 8 at avg 100, price 110) and
W2 +50 (CCC: 10 at avg 50, price 55), each with a resting TP, all on step-1 markets,
when the loser's timer has expired and the risk engine runs,
then the loser is closed in full, W1 closes 8, W2 closes 9 of 10 (fees 0.1 %) with its TP re-sized to 1, the
action is recorded with the risk config version, the loser's slot is freed once and the realised PnL
of the closes covers the loss and the closes' fees.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import engine_context
from engine.app.risk import run_risk
from engine.app.shared.marks import marked
from engine.app.sync import run_sync
from engine.domain.accounting import fill_price
from engine.domain.models import GroupStatus, OrderPurpose, OrderStatus, OrderType, utcnow
from tests.support.trading import TradingWorld, configure

RISK = {"timer_start": "after_all_dca_filled", "post_full_wait_minutes": 15, "fee_percent": 0.1}


@pytest.fixture
def world(dynamodb: Any) -> TradingWorld:
    return TradingWorld()


def test_worked_example_closes_loser_in_full_and_pays_with_winners(world: TradingWorld) -> None:
    # Given the three groups of the worked example, filled on the paper exchange, each with a TP at +50 %
    versions = configure(risk=RISK)
    base = utcnow().replace(microsecond=0)
    loser = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="50")
    w1 = world.open_group("BBB/USDT", [("100", "8")], now=base, tp_percent="50")
    w2 = world.open_group("CCC/USDT", [("50", "10")], now=base, tp_percent="50")
    pool_before = world.stores.pool.count()
    # ... and prices moved: the order sync refreshes every group and starts the loser's timer
    world.set_price("AAA/USDT", "88")
    world.set_price("BBB/USDT", "110")
    world.set_price("CCC/USDT", "55")
    run_sync(engine_context(), base, force=True)
    world.drain()
    # (groups are not saved on price ticks: the readers mark them at the stored price)
    assert marked(world.stores, world.group(loser.id)).figures.unrealized_pnl_usd == Decimal(-120)
    assert marked(world.stores, world.group(w1.id)).figures.unrealized_pnl_usd == Decimal(80)
    assert marked(world.stores, world.group(w2.id)).figures.unrealized_pnl_usd == Decimal(50)
    assert world.group(loser.id).risk_timer_started_at is not None

    # When the risk engine runs before the timer expired, then nothing is closed
    early = run_risk(engine_context(), base + timedelta(minutes=5))
    assert early.ran and early.action is None

    # When it runs after the timer expired
    summary = run_risk(engine_context(), base + timedelta(minutes=16))

    # Then the plan closes the loser in full, 8 of W1 and 9 of W2 (with the 0.1 % fees of every close;
    # 8 would realise less than the loss plus fees)
    assert summary.action is not None, summary.reason
    assert summary.plan is not None
    assert summary.plan.loser.group_id == loser.id and summary.plan.loser.qty == Decimal(10)
    assert [(w.group_id, w.qty) for w in summary.plan.winners] == [(w1.id, Decimal(8)), (w2.id, Decimal(9))]

    # ... a second invocation within the same interval does nothing
    again = run_risk(engine_context(), base + timedelta(minutes=16, seconds=20))
    assert not again.ran

    # When the streams deliver the orders and group changes (each record twice: at-least-once)
    world.drain(replay=2)

    # Then the loser is closed by a risk_close market order of 10
    closed = world.group(loser.id)
    assert closed.status == GroupStatus.CLOSED
    loser_closes = [o for o in world.orders(loser.id) if o.purpose == OrderPurpose.RISK_CLOSE]
    assert [(o.type, o.filled, o.status) for o in loser_closes] == [
        (OrderType.MARKET, Decimal(10), OrderStatus.FILLED)
    ]
    # ... W1 sold its 8 and W2 9 of its 10, each through one risk close
    for winner, qty in ((w1, Decimal(8)), (w2, Decimal(9))):
        closes = [o for o in world.orders(winner.id) if o.purpose == OrderPurpose.RISK_CLOSE]
        assert [(o.filled, o.status) for o in closes] == [(qty, OrderStatus.FILLED)]
    assert world.group(w2.id).figures.quantity == Decimal(1)
    assert world.group(w2.id).status != GroupStatus.CLOSING
    # ... W2's TP of 10 was cancelled and replaced by a TP of the 1 it still holds
    w2_tps = [o for o in world.orders(w2.id) if o.purpose == OrderPurpose.TP]
    live_tps = [o for o in w2_tps if o.is_live]
    assert [(o.amount, o.price) for o in live_tps] == [(Decimal(1), Decimal(75))]
    assert any(o.status == OrderStatus.CANCELLED and o.amount == Decimal(10) for o in w2_tps)

    # ... the action is recorded with the risk document's version
    actions = world.stores.risk_actions.list_recent()
    assert [a.group_id for a in actions] == [loser.id]
    action = actions[0]
    assert action.related_group_ids == (w1.id, w2.id)
    assert action.amount_usd == Decimal(125)  # 8 x 10 + 9 x 5: covers the 120 loss and every close's fee
    assert action.details["config_version"] == versions["risk"]
    assert [w["qty"] for w in action.details["winners"]] == [8, 9]

    # ... the loser's slot is freed exactly once (W1, emptied, closed and freed its own)
    _, slots = world.stores.pool.status()
    assert loser.id not in slots and w1.id not in slots and w2.id in slots
    assert world.stores.pool.count() == pool_before - 2

    # ... and the closes realise, before fees, what the loser lost plus W2's rounded-up unit (5), which
    # pays the closes' 2.255 fees
    gross = Decimal(0)
    for group in (loser, w1, w2):
        avg = world.group(group.id).figures.avg_entry
        for order in world.orders(group.id):
            if order.purpose == OrderPurpose.RISK_CLOSE and order.filled:
                gross += (fill_price(order) - avg) * order.filled
    assert gross == Decimal(5)
