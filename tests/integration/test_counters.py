"""Per-account counters (DESIGN §1): the exposure cap under a race, stream replays add zero, the minute
pass's reconciliation corrects drift and backfills a book from before the counters (moto)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import EngineContext, Stores
from engine.app.intake import evaluate_new_group
from engine.app.pool import reconcile_counters
from engine.app.positions import request_close
from engine.domain.counters import CounterDelta
from engine.domain.models import CloseReason, GroupStatus, OrderPurpose
from engine.store import OpenResult
from engine.store.tables import GroupModel, PoolModel, bind
from tests.support.scenario import (
    T0,
    cancel_requested,
    engine_env,
    entries_of,
    entry_request,
    fill,
    group_of,
    open_group,
    orders_of,
    set_document,
)
from tests.support.streams import Streams, drain, load_function

D = Decimal
DAY = T0.date().isoformat()
LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def ctx(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> EngineContext:
    return engine_env(monkeypatch, clock=lambda: LATER)


@pytest.fixture
def st(ctx: EngineContext) -> Stores:
    return ctx.stores


def counters(st: Stores, group_symbol: str = "BTC/USDT") -> tuple[int, Decimal, int, Decimal]:
    """(account open groups, account exposure, open groups on the symbol, today's realised)."""
    acct = st.counters.get("acct#binance")
    sym = st.counters.get(f"sym#binance#{group_symbol}")
    day = st.counters.get(f"day#binance#{DAY}")
    return acct.open_groups, acct.exposure_usd, sym.open_groups, day.realized_usd


def settle(streams: Streams, *, replay: int = 1) -> None:
    drain(streams, {"orders": [load_function("position_update")]}, replay=replay)


def test_the_exposure_cap_holds_when_two_entries_race(st: Stores, ctx: EngineContext) -> None:
    # Given a 300 USD cap and two 200 USD entries planned against the same empty book (each fits alone)
    set_document("engine", max_total_exposure_usd=300)
    config = ctx.config.snapshot()
    first = evaluate_new_group(ctx, entry_request(symbol="BTC/USDT", group_id="g1"), config, T0)
    second = evaluate_new_group(ctx, entry_request(symbol="ETH/USDT", group_id="g2"), config, T0)
    assert first.plan is not None and second.plan is not None
    assert first.plan.group.pyramids[0].capital_usd == second.plan.group.pyramids[0].capital_usd == D("200")
    # When both commit, each with the cap in its transaction
    cap = config.engine.max_total_exposure_usd
    results = [
        st.pool.open_group(plan.group, plan.orders, max_open=10, exposure_cap_usd=cap, now=T0)
        for plan in (first.plan, second.plan)
    ]
    # Then the first opens and the second is refused by the counter's condition, writing nothing
    assert results == [OpenResult.OPENED, OpenResult.EXPOSURE_FULL]
    assert st.groups.get("g2") is None and st.orders.list_for_group("g2") == []
    assert st.pool.count() == 1
    assert counters(st)[:3] == (1, D("200"), 1)
    # And re-planned against the counters, the second entry shrinks to the 100 USD left
    again = evaluate_new_group(
        ctx, entry_request(symbol="ETH/USDT", group_id="g2"), ctx.config.snapshot(), T0
    )
    assert again.plan is not None and again.plan.group.pyramids[0].capital_usd == D("100")


def test_replayed_stream_records_add_nothing(st: Stores, ctx: EngineContext) -> None:
    # Given an open group (200 USD committed) whose first leg fills and whose TP then fills
    streams = Streams()
    group, _ = open_group(st, price="100")
    leg = entries_of(st, group.id)[0]
    fill(st, leg.id, price="100", at=T0)
    # When position_update gets every orders-stream record twice (at-least-once delivery)
    settle(streams, replay=2)
    (tp,) = orders_of(st, group.id, OrderPurpose.TP)
    fill(st, tp.id, price=str(tp.price), at=T0)
    settle(streams, replay=2)
    # Then the counters moved once: one open group, its capital, today's realised PnL exactly once
    stored = group_of(st, group.id)
    realised = stored.figures.realized_by_day[DAY]
    assert realised > 0
    assert counters(st) == (1, D("200"), 1, realised)
    # When the exit closes it (cancels, then position_update closes it) and every record is replayed
    request_close(ctx, group.id, reason=CloseReason.EXIT, note="exit", now=T0)
    settle(streams, replay=2)
    cancel_requested(st, group.id, T0)
    settle(streams, replay=2)
    for order in orders_of(st, group.id, OrderPurpose.EXIT):
        fill(st, order.id, price="100", at=T0)
    settle(streams, replay=2)
    # Then the group's slot count and capital left the counters once, the day kept all its PnL
    closed = group_of(st, group.id)
    assert closed.status is GroupStatus.CLOSED
    assert counters(st) == (0, D("0"), 0, closed.figures.realized_by_day[DAY])


def _set_counter(pk: str, **values: Any) -> None:
    bind(PoolModel)
    PoolModel(pk=pk, counted_at=T0 - timedelta(hours=1), counter_version=3, **values).save()


def test_reconciliation_corrects_drift_under_the_counter_version(st: Stores, ctx: EngineContext) -> None:
    # Given two open groups and counters that drifted (lost updates, a bug), changed long enough ago
    open_group(st, price="100", symbol="BTC/USDT")
    open_group(st, price="100", symbol="ETH/USDT")
    _set_counter("acct#binance", open_groups=7, exposure_usd=D("5"))
    _set_counter("sym#binance#ETH/USDT", open_groups=0)
    _set_counter("sym#binance#XRP/USDT", open_groups=2)  # counts groups that no longer exist
    # When the minute pass reconciles
    report = reconcile_counters(ctx)
    # Then each drifted counter is set to the recomputation from the book, the others left alone
    assert sorted(report.corrected) == ["acct#binance", "sym#binance#ETH/USDT", "sym#binance#XRP/USDT"]
    assert counters(st) == (2, D("400"), 1, D("0"))
    assert st.counters.get("sym#binance#ETH/USDT").open_groups == 1
    assert st.counters.get("sym#binance#XRP/USDT").open_groups == 0
    assert st.counters.get("acct#binance").version == 4
    # And a second pass finds nothing to correct
    assert reconcile_counters(ctx).corrected == []


def test_a_counter_that_changed_after_it_was_read_is_not_overwritten(st: Stores, ctx: EngineContext) -> None:
    # Given a drifted account counter read by the reconciliation
    open_group(st, price="100", symbol="BTC/USDT")
    _set_counter("acct#binance", open_groups=9, exposure_usd=D("1"))
    read = st.counters.get("acct#binance")
    # When a group write changes it before the correction lands (its version moves on)
    open_group(st, price="100", symbol="ETH/USDT")
    # Then the correction is refused by the counter-version condition and the live value stays
    assert st.counters.correct(read, CounterDelta(1, D("200")), LATER) is False
    assert st.counters.get("acct#binance").open_groups == 10


def test_a_freshly_changed_counter_waits_for_the_next_pass(st: Stores, ctx: EngineContext) -> None:
    # Given a drifted counter whose last change is within the settle window (the index may lag)
    open_group(st, price="100")
    bind(PoolModel)
    PoolModel(pk="acct#binance", counted_at=LATER, counter_version=1, open_groups=5).save()
    # When the minute pass reconciles, then it is left for the next pass
    report = reconcile_counters(ctx)
    assert "acct#binance" in report.skipped and st.counters.get("acct#binance").open_groups == 5


def test_reconciliation_backfills_the_counters_of_a_book_from_before_them(
    st: Stores, ctx: EngineContext
) -> None:
    # Given a book written before the counters: one group open, one closed today with a realised PnL,
    # stored without their ``counted`` share and with no counter items at all
    streams = Streams()
    kept, _ = open_group(st, price="100", symbol="BTC/USDT")
    gone, _ = open_group(st, price="100", symbol="ETH/USDT")
    leg = entries_of(st, gone.id)[0]
    fill(st, leg.id, price="100", at=T0)
    settle(streams)
    request_close(ctx, gone.id, reason=CloseReason.EXIT, note="exit", now=T0)
    settle(streams)
    cancel_requested(st, gone.id, T0)
    settle(streams)
    for order in orders_of(st, gone.id, OrderPurpose.EXIT):
        fill(st, order.id, price="101", at=T0)
    settle(streams)
    closed = group_of(st, gone.id)
    assert closed.status is GroupStatus.CLOSED
    realised = closed.figures.realized_by_day[DAY]
    for item in bind(PoolModel).scan():
        if item.pk.split("#", 1)[0] in ("acct", "sym", "day"):
            item.delete()
    for item in bind(GroupModel).scan():
        item.update(actions=[GroupModel.counted.remove()])
    # When the minute pass reconciles
    report = reconcile_counters(ctx)
    # Then the counters are created from the open book and today's closed groups
    assert "acct#binance" in report.corrected and f"day#binance#{DAY}" in report.corrected
    assert counters(st) == (1, D("200"), 1, realised)
    assert st.counters.get("sym#binance#ETH/USDT").open_groups == 0
    # And the next change of a backfilled group moves them by its delta only (not its whole share)
    request_close(ctx, kept.id, reason=CloseReason.EXIT, note="exit", now=T0)
    settle(streams)
    cancel_requested(st, kept.id, T0)
    settle(streams)
    assert group_of(st, kept.id).status is GroupStatus.CLOSED
    assert counters(st) == (0, D("0"), 0, realised)
