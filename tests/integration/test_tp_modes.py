"""Take-profit modes (DESIGN §3.4) through fills to a closed group: the real streams (order_executor,
position_update, slot_release), the order sync's poll and the paper exchange, on step-1 markets.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import engine_context
from engine.app.sync import run_sync
from engine.domain.models import GroupStatus, OrderPurpose, OrderStatus, OrderType, TpMode, utcnow
from tests.support.trading import TradingWorld, configure


@pytest.fixture
def world(dynamodb: Any) -> TradingWorld:
    configure()
    return TradingWorld()


def _tick(world: TradingWorld, minutes: int) -> None:
    """One order-sync run (paper matching, refresh of every group), then every stream until quiet."""
    run_sync(engine_context(), utcnow() + timedelta(minutes=minutes), force=True)
    world.drain()


def _closing_orders(world: TradingWorld, group_id: str) -> list[Any]:
    return [o for o in world.orders(group_id) if o.purpose != OrderPurpose.ENTRY]


def _assert_closed_flat(world: TradingWorld, group_id: str) -> None:
    group = world.group(group_id)
    assert group.status == GroupStatus.CLOSED
    assert group.figures.quantity == 0 and group.closed_at is not None
    assert group_id not in world.stores.pool.status()[1]


def test_per_leg_tps_close_the_group_leg_by_leg(world: TradingWorld) -> None:
    # Given two legs filled at 100 and 98, each with a 2 % TP (102 and 99.96)
    now = utcnow()
    group = world.open_group("AAA/USDT", [("100", "5"), ("98", "5")], now=now, tp_percent="2")
    tps = [o for o in world.orders(group.id) if o.purpose == OrderPurpose.TP]
    assert sorted((o.price, o.amount) for o in tps) == [
        (Decimal("99.96"), Decimal(5)),
        (Decimal("102.00"), Decimal(5)),
    ]
    # When the price reaches the lower TP only, then that leg's TP fills and the group stays open
    world.set_price("AAA/USDT", "100.5")
    _tick(world, 1)
    assert world.group(group.id).figures.quantity == Decimal(5)
    assert world.group(group.id).is_open
    # When the price reaches the other TP, then the group is closed by its two limit TPs
    world.set_price("AAA/USDT", "102.5")
    _tick(world, 2)
    _assert_closed_flat(world, group.id)
    filled = [(o.type, o.status) for o in _closing_orders(world, group.id)]
    assert filled == [(OrderType.LIMIT, OrderStatus.FILLED)] * 2


def test_aggregate_tp_market_closes_the_whole_group(world: TradingWorld) -> None:
    # Given an aggregate 1 % group: legs filled at 100 and 98 (avg 99), no leg TPs
    now = utcnow()
    group = world.open_group(
        "BBB/USDT", [("100", "5"), ("98", "5")], now=now, tp_percent="2", tp_mode=TpMode.AGGREGATE
    )
    assert _closing_orders(world, group.id) == []
    # When the price is below avg x 1.01 = 99.99, then nothing happens
    world.set_price("BBB/USDT", "99.9")
    _tick(world, 1)
    assert world.group(group.id).is_open and _closing_orders(world, group.id) == []
    # When it reaches 99.99, then one market tp order sells all 10 and the group is closed
    world.set_price("BBB/USDT", "99.99")
    _tick(world, 2)
    _assert_closed_flat(world, group.id)
    closes = [(o.purpose, o.type, o.filled) for o in _closing_orders(world, group.id)]
    assert closes == [(OrderPurpose.TP, OrderType.MARKET, Decimal(10))]


def test_hybrid_aggregate_trigger_wins_and_cancels_the_leg_tps(world: TradingWorld) -> None:
    # Given a hybrid group (aggregate 1 %) whose legs at 100 and 98 rest 5 % TPs (105, 102.9)
    now = utcnow()
    group = world.open_group(
        "CCC/USDT", [("100", "5"), ("98", "5")], now=now, tp_percent="5", tp_mode=TpMode.HYBRID
    )
    leg_tps = [o for o in world.orders(group.id) if o.purpose == OrderPurpose.TP]
    assert len(leg_tps) == 2 and all(o.type == OrderType.LIMIT for o in leg_tps)
    # When the price reaches the aggregate trigger (99.99) before any leg TP
    world.set_price("CCC/USDT", "100")
    _tick(world, 1)
    # Then the leg TPs were cancelled unfilled and one market tp order sold everything
    _assert_closed_flat(world, group.id)
    tps = {o.id: o for o in world.orders(group.id) if o.purpose == OrderPurpose.TP}
    assert all(tps[o.id].status == OrderStatus.CANCELLED and tps[o.id].filled == 0 for o in leg_tps)
    market = [o for o in tps.values() if o.type == OrderType.MARKET]
    assert [(o.filled, o.status) for o in market] == [(Decimal(10), OrderStatus.FILLED)]


def test_hybrid_leg_tp_wins_when_it_is_reached_first(world: TradingWorld) -> None:
    # Given a hybrid group (aggregate 3 %) whose legs at 100 and 90 rest 1 % TPs (101, 90.9); avg 95
    now = utcnow()
    group = world.open_group(
        "DDD/USDT",
        [("100", "5"), ("90", "5")],
        now=now,
        tp_percent="1",
        tp_mode=TpMode.HYBRID,
        tp_aggregate_percent="3",
    )
    # When the price reaches the lower leg's TP (91) but not the aggregate (97.85)
    world.set_price("DDD/USDT", "91")
    _tick(world, 1)
    # Then that leg's limit TP filled and the group stays open with the other leg
    group_now = world.group(group.id)
    assert group_now.is_open and group_now.status != GroupStatus.CLOSING
    assert group_now.figures.quantity == Decimal(5)
    filled = [o for o in _closing_orders(world, group.id) if o.status == OrderStatus.FILLED]
    assert [(o.type, o.price) for o in filled] == [(OrderType.LIMIT, Decimal("90.90"))]


def test_pyramid_aggregate_closes_one_pyramid_and_keeps_the_other(world: TradingWorld) -> None:
    # Given a pyramid_aggregate 1 % group: pyramid 1 of 10 at 100, pyramid 2 of 10 at 90
    now = utcnow()
    group = world.open_group("EEE/USDT", [("100", "10")], now=now, tp_mode=TpMode.PYRAMID_AGGREGATE)
    world.add_pyramid(group.id, [("90", "10")], now=now + timedelta(seconds=1))
    assert world.group(group.id).figures.quantity == Decimal(20)
    # When the price reaches pyramid 2's trigger (90.9) but not pyramid 1's (101)
    world.set_price("EEE/USDT", "91")
    _tick(world, 1)
    # Then pyramid 2 is sold by a market tp order of 10 and the group stays open with pyramid 1
    after = world.group(group.id)
    assert after.is_open and after.status != GroupStatus.CLOSING
    assert after.figures.quantity == Decimal(10)
    closes = [(o.pyramid, o.type, o.filled) for o in _closing_orders(world, group.id)]
    assert closes == [(2, OrderType.MARKET, Decimal(10))]
    # When the price reaches pyramid 1's trigger, then it is sold too and the group is closed
    world.set_price("EEE/USDT", "101")
    _tick(world, 2)
    _assert_closed_flat(world, group.id)
    sold = sorted((o.pyramid, o.filled) for o in _closing_orders(world, group.id))
    assert sold == [(1, Decimal(10)), (2, Decimal(10))]
