"""Property (DESIGN §1): after any sequence of opens, fills, take-profits, risk closes, exits, failures
and replays, the per-account counters equal a recomputation from the stored groups (moto).

The engine's own use cases run (pre-trade checks + pool transaction, ``refresh_group`` as position_update
runs it, ``request_close``); fills are written as order_sync records them. The book accumulates across
examples (fresh keys per example), so the comparison covers everything stored so far.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st_

from engine.app.context import EngineContext, Stores
from engine.app.positions import refresh_group, request_close
from engine.domain.models import (
    OPEN_GROUP_STATUSES,
    CloseReason,
    GroupStatus,
    OrderPurpose,
    OrderStatus,
)
from engine.store.tables import PoolModel, bind
from tests.support.scenario import (
    cancel_requested,
    engine_env,
    entry_request,
    fill,
    set_document,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT")
OPS = ("open", "fill", "tp", "exit", "risk", "fail", "replay")
_timeframes = itertools.count(1000)


@pytest.fixture
def env(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> EngineContext:
    ctx = engine_env(monkeypatch)
    set_document("engine", max_open_per_symbol=10_000, max_total_exposure_usd=10_000_000)
    set_document("pool", max_open_groups=10_000)
    return ctx


def _open(ctx: EngineContext, symbol: str, now: datetime) -> str | None:
    from engine.app.intake import evaluate_new_group

    config = ctx.config.snapshot()
    req = entry_request(symbol=symbol, price="100", timeframe=next(_timeframes))
    decision = evaluate_new_group(ctx, req, config, now)
    assert decision.action == "accept" and decision.plan is not None, decision.reason
    ctx.stores.pool.open_group(decision.plan.group, decision.plan.orders, max_open=10_000, now=now)
    return decision.plan.group.id


def _live(st: Stores, group_id: str, *purposes: OrderPurpose) -> list[Any]:
    orders = [o for o in st.orders.list_for_group(group_id) if o.is_live and o.purpose in purposes]
    return sorted(orders, key=lambda o: o.id)


def _close(ctx: EngineContext, group_id: str, reason: CloseReason, now: datetime) -> None:
    st = ctx.stores
    request_close(ctx, group_id, reason=reason, note="test", now=now)
    refresh_group(ctx, group_id, now)
    cancel_requested(st, group_id, now)
    refresh_group(ctx, group_id, now)
    for order in _live(st, group_id, OrderPurpose.EXIT, OrderPurpose.RISK_CLOSE):
        fill(st, order.id, price="97", at=now)
    refresh_group(ctx, group_id, now)


def _fail(ctx: EngineContext, group_id: str, now: datetime) -> None:
    st = ctx.stores
    legs = [o for o in st.orders.list_for_group(group_id) if o.purpose == OrderPurpose.ENTRY]
    if any(o.filled for o in legs):
        return
    for leg in legs:
        leg.status = OrderStatus.REJECTED
        st.orders.save(leg, now=now)
    refresh_group(ctx, group_id, now)


def _apply(ctx: EngineContext, op: str, pick: int, groups: list[str], now: datetime) -> None:
    st = ctx.stores
    if op == "open" or not groups:
        group_id = _open(ctx, SYMBOLS[pick % 2], now)
        if group_id is not None:
            groups.append(group_id)
        return
    group_id = groups[pick % len(groups)]
    group = st.groups.get(group_id)
    assert group is not None
    if op == "fill":
        legs = _live(st, group_id, OrderPurpose.ENTRY)
        if legs:
            fill(st, legs[0].id, price=str(legs[0].price or "100"), at=now)
    elif op == "tp":
        tps = _live(st, group_id, OrderPurpose.TP)
        if tps:
            fill(st, tps[0].id, price=str(tps[0].price), at=now)
            # Flat after the TP: close_when_flat cancels the resting legs; the executor confirms them
            refresh_group(ctx, group_id, now)
            cancel_requested(st, group_id, now)
    elif op in ("exit", "risk") and group.is_open and group.status != GroupStatus.CLOSING:
        _close(ctx, group_id, CloseReason.EXIT if op == "exit" else CloseReason.RISK, now)
    elif op == "fail":
        _fail(ctx, group_id, now)
    # Every op ends with position_update's recomputation; "replay" is only that (a redelivered record).
    refresh_group(ctx, group_id, now)
    if op == "replay":
        refresh_group(ctx, group_id, now)


def _stored_counters() -> dict[str, tuple[int, Decimal, Decimal]]:
    model = bind(PoolModel)
    found: dict[str, tuple[int, Decimal, Decimal]] = {}
    for item in model.scan(consistent_read=True):
        if item.pk.split("#", 1)[0] in ("acct", "sym", "day"):
            values = (
                int(item.open_groups or 0),
                item.exposure_usd or Decimal(0),
                item.realized_usd or Decimal(0),
            )
            if values != (0, Decimal(0), Decimal(0)):
                found[item.pk] = values
    return found


def _recomputed(st: Stores) -> dict[str, tuple[int, Decimal, Decimal]]:
    """The counters from first principles: every stored group, read back."""
    opened: dict[str, int] = defaultdict(int)
    exposure: dict[str, Decimal] = defaultdict(Decimal)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    for group in st.groups.list_by_status(list(GroupStatus)):
        account = group.exchange.lower()
        if group.status in OPEN_GROUP_STATUSES:
            opened[f"acct#{account}"] += 1
            opened[f"sym#{account}#{group.symbol}"] += 1
            exposure[f"acct#{account}"] += sum((p.capital_usd for p in group.pyramids), Decimal(0))
        for day, value in group.figures.realized_by_day.items():
            realized[f"day#{account}#{day}"] += value
    expected: dict[str, tuple[int, Decimal, Decimal]] = {}
    for pk in set(opened) | set(exposure) | set(realized):
        values = (opened.get(pk, 0), exposure.get(pk, Decimal(0)), realized.get(pk, Decimal(0)))
        if values != (0, Decimal(0), Decimal(0)):
            expected[pk] = values
    return expected


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st_.lists(
        st_.tuples(st_.sampled_from(OPS), st_.integers(min_value=0, max_value=5)), min_size=2, max_size=14
    )
)
@example(steps=[("open", 0), ("fill", 0), ("tp", 0), ("fill", 0), ("exit", 0), ("replay", 0)])
@example(steps=[("open", 1), ("open", 0), ("fail", 1), ("fill", 0), ("risk", 0), ("replay", 1)])
def test_counters_equal_a_recomputation_after_any_sequence(
    env: EngineContext, steps: list[tuple[str, int]]
) -> None:
    # Given the book so far, when a random sequence of engine operations runs (time moves 3 h per step,
    # so realised PnL falls on more than one UTC day)
    groups: list[str] = []
    for index, (op, pick) in enumerate(steps):
        _apply(env, op, pick, groups, T0 + timedelta(hours=3 * index))
    # Then every counter equals what the stored groups add up to
    assert _stored_counters() == _recomputed(env.stores)
    if steps[0] == ("open", 0) and steps[-2][0] == "exit":  # the first explicit example: it did close
        # (its take-profit sold everything held: close_when_flat closed it before the exit arrived)
        assert env.stores.groups.get(groups[0]).status is GroupStatus.CLOSED  # type: ignore[union-attr]
        assert any(pk.startswith("day#") for pk in _stored_counters())
    if steps[:3] == [("open", 1), ("open", 0), ("fail", 1)]:  # the second explicit example: it did fail
        assert env.stores.groups.get(groups[1]).status is GroupStatus.FAILED  # type: ignore[union-attr]
