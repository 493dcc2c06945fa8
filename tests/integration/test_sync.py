"""order_sync against the real paper exchange: fills, triggers, reconciliation, markets, interval, equity."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, engine_context
from engine.app.execution import process_order
from engine.app.shared.marks import marked_all
from engine.app.sync import run_sync
from engine.domain.config import ConfigSnapshot
from engine.domain.models import (
    Group,
    GroupStatus,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TpMode,
    utcnow,
)
from engine.exchange.client_ids import client_order_id
from engine.exchange.gateway import ExchangeGateway, OrderRequest
from engine.exchange.markets import PAPER_MARKETS
from engine.local.events import scheduled_event
from tests.support.builders import make_group, make_order, make_pyramid, new_id
from tests.support.scenario import engine_session, set_document
from tests.support.streams import StreamTap, deliver, load_function

PREFIX = "/ee-test/sync/"
EXCHANGE = "binance"
SYMBOL = "BTC/USDT"


@pytest.fixture
def engine(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    with engine_session(monkeypatch, PREFIX) as ctx:
        s = ctx.stores
        s.prices.set(EXCHANGE, SYMBOL, Decimal("60000"), utcnow())
        yield s


def leg(group: Group, n: int = 1, **overrides: Any) -> Order:
    order_id = f"{group.id}-p1-l{n}"
    fields: dict[str, Any] = {
        "id": order_id,
        "amount": Decimal("0.001"),
        "price": Decimal("59000"),
        "client_order_id": client_order_id(order_id),
        "pyramid": 1,
        "leg": n,
        "tp_percent": None,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    fields.update(overrides)
    return make_order(group, **fields)


def open_group(s: Stores, orders_of: Any, *, exchange: str = EXCHANGE, side: Side = Side.LONG) -> list[Order]:
    """A live group (one pyramid, aggregate TP far away) holding a pool slot, with its pending legs."""
    group = make_group(
        id=new_id("g-"),
        exchange=exchange,
        side=side,
        status=GroupStatus.LIVE,
        pyramids=[make_pyramid(index=1, entry_price=Decimal("60000"), created_at=utcnow())],
        tp_mode=TpMode.AGGREGATE,
        tp_aggregate_percent=Decimal("50"),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    orders = orders_of(group)
    assert s.pool.open_group(group, orders, max_open=10).value == "opened"
    return orders


def stored(s: Stores, order: Order) -> Order:
    found = s.orders.get(order.id)
    assert found is not None
    return found


def test_resting_limit_is_recorded_filled_once_the_price_crosses_it(engine: Stores):
    # Given a buy limit at 59000 resting on the paper book
    (order,) = open_group(engine, lambda g: [leg(g)])
    now = utcnow()
    process_order(engine_context(), order.id, now)
    assert stored(engine, order).status is OrderStatus.OPEN
    # When the price stays above it, a sync records nothing
    quiet = run_sync(engine_context(), now, force=True)
    assert (quiet.orders_polled, quiet.orders_updated) == (1, 0)
    assert stored(engine, order).status is OrderStatus.OPEN
    # And when the price crosses it, the next sync records the fill at the limit price
    engine.prices.set(EXCHANGE, SYMBOL, Decimal("58900"), utcnow())
    summary = run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    assert summary.orders_updated == 1
    filled = stored(engine, order)
    assert filled.status is OrderStatus.FILLED
    assert filled.filled == Decimal("0.001") and filled.average == Decimal("59000")
    assert filled.fee_cost == Decimal("0.059") and filled.last_fill_at is not None


@pytest.mark.parametrize(
    ("side", "trigger", "price", "fires"),
    [
        (Side.LONG, Decimal("59000"), Decimal("59000.01"), False),
        (Side.LONG, Decimal("59000"), Decimal("59000"), True),
        (Side.LONG, Decimal("59000"), Decimal("58000"), True),
        (Side.SHORT, Decimal("61000"), Decimal("60999.99"), False),
        (Side.SHORT, Decimal("61000"), Decimal("61000"), True),
    ],
)
def test_price_trigger_fires_when_the_price_reaches_it(engine: Stores, side, trigger, price, fires):
    # Given a waiting market leg with a trigger price
    (order,) = open_group(
        engine,
        lambda g: [leg(g, type=OrderType.MARKET, price=None, trigger_price=trigger)],
        side=side,
    )
    engine.prices.set(EXCHANGE, SYMBOL, price, utcnow())
    # When order_sync runs
    summary = run_sync(engine_context(), utcnow(), force=True)
    # Then the trigger is cleared (the executor sends it next) exactly when the price reached it
    after = stored(engine, order)
    assert summary.triggers_fired == (1 if fires else 0)
    assert after.status is OrderStatus.PENDING
    assert (after.trigger_price is None) is fires
    assert engine.paper.get(EXCHANGE, order.client_order_id) is None


def test_fired_trigger_leg_is_then_sent_by_the_executor_at_the_market(engine: Stores):
    (order,) = open_group(
        engine, lambda g: [leg(g, type=OrderType.MARKET, price=None, trigger_price=Decimal("59000"))]
    )
    engine.prices.set(EXCHANGE, SYMBOL, Decimal("58500"), utcnow())
    run_sync(engine_context(), utcnow(), force=True)
    process_order(engine_context(), order.id, utcnow())
    after = stored(engine, order)
    assert after.status is OrderStatus.FILLED and after.average == Decimal("58500")


def test_unknown_order_found_on_the_paper_book_is_recorded(engine: Stores):
    # Given an order whose create reached the paper book but whose outcome we lost
    (order,) = open_group(engine, lambda g: [leg(g)])
    ctx = engine_context()
    gateway = ctx.gateways(EXCHANGE, ctx.config.snapshot())
    gateway.create_order(
        OrderRequest(order.client_order_id, SYMBOL, order.side, order.type, order.amount, order.price)
    )
    unknown = stored(engine, order)
    unknown.status, unknown.reason = OrderStatus.UNKNOWN, "request timed out"
    engine.orders.save(unknown, now=utcnow())
    # When order_sync reconciles it
    summary = run_sync(engine_context(), utcnow(), force=True)
    # Then it is recorded as the exchange has it
    after = stored(engine, order)
    assert summary.unknown_found == 1
    assert after.status is OrderStatus.OPEN and after.exchange_order_id == f"paper-{order.client_order_id}"
    assert after.reason is None


def test_unknown_order_absent_twice_is_resent_once(engine: Stores):
    # Given an unknown order the paper book never received
    (order,) = open_group(engine, lambda g: [leg(g)])
    unknown = stored(engine, order)
    unknown.status, unknown.reason = OrderStatus.UNKNOWN, "request timed out"
    engine.orders.save(unknown, now=utcnow())
    now = utcnow()
    # When order_sync misses it once, then again a sync later
    first = run_sync(engine_context(), now, force=True)
    assert first.unknown_waiting == 1 and stored(engine, order).status is OrderStatus.UNKNOWN
    second = run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    # Then it was resent with the same client id: one paper order, recorded open
    assert second.unknown_resent == 1
    assert stored(engine, order).status is OrderStatus.OPEN
    assert [o.client_order_id for o in engine.paper.list_all(EXCHANGE)] == [order.client_order_id]
    run_sync(engine_context(), now + timedelta(minutes=2), force=True)
    assert len(engine.paper.list_all(EXCHANGE)) == 1


def test_pending_order_left_behind_is_re_driven_after_two_minutes(engine: Stores):
    # Given a pending leg the executor never sent (its record was lost)
    (order,) = open_group(engine, lambda g: [leg(g)])
    now = utcnow()
    # When order_sync runs a minute later, it leaves it to the executor; two minutes later it sends it
    early = run_sync(engine_context(), now + timedelta(minutes=1), force=True)
    assert early.redriven == 0 and stored(engine, order).status is OrderStatus.PENDING
    late = run_sync(engine_context(), now + timedelta(minutes=3), force=True)
    assert late.redriven == 1
    assert stored(engine, order).status is OrderStatus.OPEN
    assert len(engine.paper.list_all(EXCHANGE)) == 1


def test_second_unforced_run_within_the_interval_does_nothing(engine: Stores):
    now = utcnow()
    assert run_sync(engine_context(), now).ran
    assert not run_sync(engine_context(), now + timedelta(seconds=2)).ran
    assert run_sync(engine_context(), now + timedelta(seconds=2), force=True).ran
    assert run_sync(engine_context(), now + timedelta(minutes=1)).ran
    points = engine.equity.list()
    assert len(points) == 3


def test_fast_pass_every_sync_interval_and_minute_pass_once_a_minute(engine: Stores):
    # Given the default sync interval of 5 s and a first run at `now` (both passes)
    now = utcnow()
    first = run_sync(engine_context(), now)
    assert (first.fast, first.minute) == (True, True)
    # When order_sync is asked every second for the next minute
    runs = [run_sync(engine_context(), now + timedelta(seconds=s)) for s in range(1, 61)]
    # Then the fast pass runs every 5 s and the minute pass once, at the minute
    fast_at = [s for s, run in enumerate(runs, start=1) if run.fast]
    minute_at = [s for s, run in enumerate(runs, start=1) if run.minute]
    assert fast_at == list(range(5, 61, 5))
    assert minute_at == [55]
    # ... and only the minute passes wrote equity points
    assert len(engine.equity.list()) == 2


def test_sync_interval_is_read_live(engine: Stores):
    # Given sync_interval_seconds edited to 20
    set_document("engine", sync_interval_seconds=20)
    now = utcnow()
    assert run_sync(engine_context(), now).fast
    # Then a run 10 s later skips the fast pass and one 20 s later runs it
    assert not run_sync(engine_context(), now + timedelta(seconds=10)).fast
    assert run_sync(engine_context(), now + timedelta(seconds=20)).fast


def test_price_tick_that_only_moves_unrealised_pnl_writes_no_group(engine: Stores):
    # Given an open group whose leg filled, refreshed once at 60000
    (order,) = open_group(engine, lambda g: [leg(g, type=OrderType.MARKET, price=None)])
    process_order(engine_context(), order.id, utcnow())
    now = utcnow()
    run_sync(engine_context(), now, force=True)
    stored_before = engine.groups.get(order.group_id)
    assert stored_before is not None and stored_before.figures.quantity > 0
    groups_stream = StreamTap("groups")
    groups_stream.read()  # everything up to here
    # When the price ticks (far from any take-profit) and the fast pass runs again
    engine.prices.set(EXCHANGE, SYMBOL, Decimal("60100"), now)
    summary = run_sync(engine_context(), now + timedelta(seconds=5))
    # Then the group was refreshed but not written: no group stream record, same stored version
    assert summary.fast and summary.groups_refreshed == 1
    assert groups_stream.read() == []
    assert engine.groups.get(order.group_id) == stored_before
    # ... while the readers see it marked at the new price
    marked = marked_all(engine, [stored_before])[0]
    assert marked.figures.last_price == Decimal("60100")
    assert marked.figures.unrealized_pnl_usd == stored_before.figures.unrealized_pnl_usd + Decimal("0.1")


def test_markets_of_every_configured_account_are_refreshed_hourly(engine: Stores):
    now = utcnow()
    # When order_sync first runs, every account's markets are stored
    first = run_sync(engine_context(), now, force=True)
    assert first.markets_refreshed == ["binance", "bybit", "okx"]
    btc = engine.markets.get("okx", SYMBOL)
    assert btc == PAPER_MARKETS[SYMBOL]
    assert {m.symbol for m in engine.markets.list(EXCHANGE)} == set(PAPER_MARKETS)
    # And within the hour they are not fetched again; after it they are
    assert run_sync(engine_context(), now + timedelta(minutes=30), force=True).markets_refreshed == []
    later = run_sync(engine_context(), now + timedelta(minutes=61), force=True)
    assert later.markets_refreshed == ["binance", "bybit", "okx"]
    assert engine.markets.refreshed_at(EXCHANGE) == now + timedelta(minutes=61)


def test_failing_account_does_not_stop_the_others(engine: Stores):
    # Given open groups on binance and okx, and okx unreachable
    (binance_leg,) = open_group(engine, lambda g: [leg(g)])
    (okx_leg,) = open_group(engine, lambda g: [leg(g)], exchange="okx")
    ctx = engine_context()
    real = ctx.gateways

    def flaky(exchange: str, config: ConfigSnapshot) -> ExchangeGateway:
        if exchange == "okx":
            raise ConnectionError("okx is down")
        return real(exchange, config)

    now = utcnow()
    # When order_sync re-drives both stale legs
    summary = run_sync(dataclasses.replace(ctx, gateways=flaky), now + timedelta(minutes=3), force=True)
    # Then binance's is sent and okx's failure is reported, not raised
    assert stored(engine, binance_leg).status is OrderStatus.OPEN
    assert stored(engine, okx_leg).status is OrderStatus.PENDING
    assert summary.failures["okx"] == "ConnectionError: okx is down"
    assert "markets:okx" in summary.failures
    assert summary.accounts == ["binance", "okx"]
    assert summary.groups_refreshed == 2


def test_equity_point_and_figures(engine: Stores):
    # Given one open group whose leg filled at 59000, now priced at 60000
    (order,) = open_group(engine, lambda g: [leg(g, type=OrderType.MARKET, price=None)])
    engine.prices.set(EXCHANGE, SYMBOL, Decimal("59000"), utcnow())
    process_order(engine_context(), order.id, utcnow())
    engine.prices.set(EXCHANGE, SYMBOL, Decimal("60000"), utcnow())
    now = utcnow()
    # When order_sync runs
    summary = run_sync(engine_context(), now, force=True)
    # Then the figures count the open group and the equity point is balance + realised + unrealised
    figures = summary.figures
    assert figures is not None
    # (the pools of the three default accounts, 10 each)
    assert (figures.open_groups, figures.pool_open, figures.pool_max, figures.queue_depth) == (1, 1, 30, 0)
    group = engine.groups.get(order.group_id)
    assert group is not None
    assert figures.unrealized_pnl_usd == group.figures.unrealized_pnl_usd
    assert figures.unrealized_pnl_usd > 0
    (point,) = engine.equity.list()
    assert point.at == now
    assert point.realized_usd == figures.realized_pnl_usd
    assert point.equity_usd == Decimal(10000) + figures.realized_pnl_usd + figures.unrealized_pnl_usd


def test_handler_runs_on_a_forced_scheduled_event_and_respects_the_interval_otherwise(engine: Stores):
    order_sync = load_function("order_sync")
    first = deliver(order_sync, scheduled_event("order-sync", "us-east-1"))
    skipped = deliver(order_sync, scheduled_event("order-sync", "us-east-1"))
    forced = deliver(order_sync, scheduled_event("order-sync", "us-east-1", force=True))
    assert (first["ran"], skipped["ran"], forced["ran"]) == (True, False, True)
    assert forced["markets_refreshed"] == []
    assert forced["figures"]["pool_max"] == 30  # 10 for each of the three default accounts
