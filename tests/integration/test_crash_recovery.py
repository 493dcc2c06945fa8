"""Crashes between two steps of the flow: the next order_sync reconciles, and the report shows no drift.

Harness: ``tests/support/faults.py`` (a clean and a faulty group side by side on a fake
exchange behind the real ``CcxtGateway``). A crash is modelled by losing the stream records of the
faulty group (the consumer never ran) after the state a real crash would leave has been written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.app.execution import apply_exchange_order, save_change
from engine.domain.models import OrderPurpose, OrderStatus
from engine.exchange.ccxt_convert import order_from_ccxt
from tests.support.faults import (
    CLEAN,
    EXCHANGE,
    FAULTY,
    World,
    make_world,
    run_lifecycle,
)
from tests.support.reconciliation import DriftKind, Report

LEGS = [f"p1-l{n}" for n in range(1, 6)]


def faulty_drift(world: World, report: Report) -> list[tuple[DriftKind, str]]:
    """(kind, order or group id relative to the faulty group) of the faulty group's drift items."""
    gid = world.faulty_group
    return sorted(
        (item.kind, (item.order_id or item.group_id or "").replace(gid, "G"))
        for item in report.drift
        if item.group_id == gid
    )


def assert_converged(world: World) -> None:
    """The faulty group ended like the clean one; nothing doubled; the report is clean; pool free."""
    faulty, clean = world.snapshot(FAULTY), world.snapshot(CLEAN)
    assert clean["status"] == "closed"
    assert faulty == clean
    world.assert_no_duplicates()
    report = world.report()
    assert report.drift == [] and report.in_flight == [], report
    assert world.stores.pool.count() == 0


def test_crash_between_writing_the_intent_and_sending_it(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch)

    def executor_never_runs(w: World) -> None:
        # Given the faulty group's legs were written but the batch that would send them was lost
        w.drop.add(w.faulty_group)
        w.drain()
        w.drop.clear()
        assert all(w.order(leg).status is OrderStatus.PENDING for leg in LEGS)
        # Then right away the report calls them in flight, not drift
        fresh = w.report()
        assert sorted(i.replace(w.faulty_group, "G") for i in fresh.in_flight) == [f"G-{leg}" for leg in LEGS]
        assert faulty_drift(w, fresh) == []
        # And a few minutes later it calls them stale intent
        w.now += timedelta(minutes=3)
        stale = w.report()
        assert faulty_drift(w, stale) == [(DriftKind.STALE_INTENT, f"G-{leg}") for leg in LEGS]
        # When the next order_sync runs
        summary = w.sync()
        w.drain()
        # Then it re-drove the legs: they are on the exchange, once each, and nothing drifts
        assert summary.redriven == len(LEGS)
        assert all(w.order(leg).status is OrderStatus.OPEN for leg in LEGS)
        assert [w.faults.creates(w.client_id(leg)) for leg in LEGS] == [1] * len(LEGS)
        assert faulty_drift(w, w.report()) == []

    # And the rest of the lifecycle ends where the clean group ends
    run_lifecycle(world, {"open": executor_never_runs})
    assert_converged(world)


def test_crash_after_the_exchange_took_the_order_but_before_it_was_recorded(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(monkeypatch)

    def executor_dies_after_sending(w: World) -> None:
        # Given the executor placed the legs, then died before saving the answers (its batch is lost)
        w.drop.add(w.faulty_group)
        w.drain()
        w.drop.clear()
        for leg in LEGS:
            order = w.order(leg)
            w.client.accept(
                order.symbol,
                order.type.value,
                order.side.value,
                float(order.amount),
                float(order.price or 0),
                {"clientOrderId": order.client_order_id},
            )
        # Then the report sees orders the exchange has and the engine does not know it has
        report = w.report()
        assert faulty_drift(w, report) == [(DriftKind.UNRECORDED, f"G-{leg}") for leg in LEGS]
        # When order_sync re-drives the stuck legs (two minutes on)
        w.now += timedelta(minutes=2)
        w.sync()
        w.drain()
        # Then it found them by client id instead of sending them again
        assert all(w.order(leg).status is OrderStatus.OPEN for leg in LEGS)
        assert [w.faults.creates(w.client_id(leg)) for leg in LEGS] == [0] * len(LEGS)
        assert faulty_drift(w, w.report()) == []

    run_lifecycle(world, {"open": executor_dies_after_sending})
    assert_converged(world)


def test_crash_between_a_fill_and_its_take_profit(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(monkeypatch)

    def position_update_never_runs(w: World) -> None:
        # Given legs 1 and 2 filled, the fills were recorded, and the records that would have run
        # position_update (figures, take-profits) were lost
        w.drop.add(w.faulty_group)
        for leg in ("p1-l1", "p1-l2"):
            order = w.order(leg)
            ex = order_from_ccxt(dict(w.client.orders[order.client_order_id]), EXCHANGE)
            save_change(w.stores, order, lambda o, ex=ex: apply_exchange_order(o, ex, w.now), w.now)  # type: ignore[misc]
        w.drain()
        w.drop.clear()
        tps = [o for o in w.stores.orders.list_for_group(w.faulty_group) if o.purpose is OrderPurpose.TP]
        assert tps == []
        # Then the report sees a position that lags its orders' fills (and nothing else)
        assert faulty_drift(w, w.report()) == [(DriftKind.POSITION, "G")]
        # When the next order_sync runs
        w.sync()
        w.drain()
        # Then the group caught up: its figures, and a take-profit per filled leg on the exchange
        tps = [o for o in w.stores.orders.list_for_group(w.faulty_group) if o.purpose is OrderPurpose.TP]
        assert sorted(o.parent_order_id or "" for o in tps) == [w.order_id("p1-l1"), w.order_id("p1-l2")]
        assert all(o.status is OrderStatus.OPEN for o in tps)
        assert faulty_drift(w, w.report()) == []

    run_lifecycle(world, {"filled": position_update_never_runs})
    assert_converged(world)
