"""The fast sync loop (DESIGN §1, issue 14 item 5) under moto with a simulated clock.

The loop's SQS delay queue is modelled by :class:`DelayQueue`, a tick sender on the simulated clock; the
minute schedule and the ticks go through the real order_sync handler (``functions/order_sync``), the
lease through the real state table. :class:`SqsTickSender` itself is checked against moto's SQS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

import engine.app.sync.entry as sync_entry
from engine.app.context import EngineContext
from engine.app.execution import process_order
from engine.app.sync.loop import LEASE_SLACK, LOOP_LEASE, LoopTick
from engine.app.sync.ticks import SqsTickSender
from engine.config import clear_cache
from engine.domain.models import (
    Group,
    GroupStatus,
    Order,
    OrderPurpose,
    OrderStatus,
    OrderType,
    TpMode,
)
from engine.exchange.client_ids import client_order_id
from engine.local.events import scheduled_event
from tests.support.builders import make_group, make_order, make_pyramid, new_id
from tests.support.scenario import T0, engine_env, release
from tests.support.streams import deliver, load_function

PREFIX = "/ee-test/sync-loop/"
EXCHANGE = "binance"
SYMBOL = "BTC/USDT"
INTERVAL = 5  # engine.sync_interval_seconds (default)


class SimClock:
    """A settable clock."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass
class DelayQueue:
    """SQS with DelaySeconds on the simulated clock: a tick becomes due ``delay`` after it was sent."""

    clock: SimClock
    pending: list[tuple[datetime, LoopTick]] = field(default_factory=list)
    sent: int = 0

    def send(self, tick: LoopTick, delay_seconds: int) -> None:
        self.pending.append((self.clock.now + timedelta(seconds=delay_seconds), tick))
        self.sent += 1

    def due(self) -> list[LoopTick]:
        ready = [tick for at, tick in self.pending if at <= self.clock.now]
        self.pending = [(at, tick) for at, tick in self.pending if at > self.clock.now]
        return ready


def sqs_event(*ticks: LoopTick) -> dict[str, Any]:
    """The Lambda event of an SQS batch carrying ``ticks``."""
    return {
        "Records": [
            {"messageId": new_id(), "body": tick.to_body(), "eventSource": "aws:sqs", "attributes": {}}
            for tick in ticks
        ]
    }


@dataclass
class Loop:
    """The order_sync handler driven on the simulated clock: minute schedule + delayed ticks."""

    ctx: EngineContext
    clock: SimClock
    queue: DelayQueue
    handler: Any
    outcomes: list[str] = field(default_factory=list)

    def minute(self) -> dict[str, Any]:
        """One firing of the minute schedule."""
        return dict(deliver(self.handler, scheduled_event("order-sync-schedule", "us-east-1")))

    def tick(self, *ticks: LoopTick) -> list[str]:
        """Deliver ``ticks`` (one SQS batch) to the handler."""
        outcomes = list(deliver(self.handler, sqs_event(*ticks))["ticks"])
        self.outcomes.extend(outcomes)
        return outcomes

    def run_until(self, end: datetime, step: timedelta = timedelta(milliseconds=100)) -> None:
        """Advance the clock to ``end``, delivering every tick when due (the minute schedule is manual)."""
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + step)
            for tick in self.queue.due():
                self.tick(tick)

    def holder(self) -> str | None:
        return self.ctx.stores.state.lease_holder(LOOP_LEASE, self.clock.now)


@pytest.fixture
def loop(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    monkeypatch.setenv("CONFIG_PREFIX", PREFIX)
    clock = SimClock(T0)
    ctx = engine_env(monkeypatch, clock=clock)
    queue = DelayQueue(clock)
    monkeypatch.setattr(sync_entry, "queue_sender", lambda: queue)
    ctx.stores.prices.set(EXCHANGE, SYMBOL, Decimal("60000"), T0)
    yield Loop(ctx, clock, queue, load_function("order_sync"))
    release()
    clear_cache()


def open_resting_group(loop: Loop) -> tuple[Group, Order]:
    """A live per-leg-TP group whose buy limit at 59000 rests on the paper book (price 60000)."""
    now = loop.clock.now
    group = make_group(
        id=new_id("g-"),
        exchange=EXCHANGE,
        status=GroupStatus.LIVE,
        pyramids=[make_pyramid(index=1, entry_price=Decimal("60000"), leg_count=1, created_at=now)],
        tp_mode=TpMode.PER_LEG,
        created_at=now,
        updated_at=now,
    )
    order_id = f"{group.id}-p1-l1"
    leg = make_order(
        group,
        id=order_id,
        amount=Decimal("0.001"),
        price=Decimal("59000"),
        type=OrderType.LIMIT,
        client_order_id=client_order_id(order_id),
        pyramid=1,
        leg=1,
        tp_percent=Decimal("1"),
        created_at=now,
        updated_at=now,
    )
    assert loop.ctx.stores.pool.open_group(group, [leg], max_open=10).value == "opened"
    process_order(loop.ctx, leg.id, now)
    stored = loop.ctx.stores.orders.get(leg.id)
    assert stored is not None and stored.status is OrderStatus.OPEN
    return group, stored


def take_profits(loop: Loop, group: Group) -> list[Order]:
    return [o for o in loop.ctx.stores.orders.list_for_group(group.id) if o.purpose is OrderPurpose.TP]


def test_fill_gets_its_take_profit_within_the_sync_interval_through_the_loop(loop: Loop) -> None:
    # Given a resting entry leg and the minute schedule that started the loop
    group, leg = open_resting_group(loop)
    started = loop.minute()
    assert started["loop_started"] is not None
    # When the price crosses the limit 12.3 s later (between two minute schedules)
    loop.run_until(T0 + timedelta(seconds=12.3))
    loop.ctx.stores.prices.set(EXCHANGE, SYMBOL, Decimal("58900"), loop.clock.now)
    filled_at = loop.clock.now
    loop.run_until(T0 + timedelta(seconds=40))
    # Then the loop saw the fill and placed the leg's take-profit within sync_interval_seconds + 1 s
    (tp,) = take_profits(loop, group)
    assert tp.parent_order_id == leg.id and tp.status is OrderStatus.PENDING
    assert tp.created_at - filled_at <= timedelta(seconds=INTERVAL + 1)
    # ... long before the next minute schedule, with one tick every 5 s and one loop
    assert loop.outcomes == ["continued"] * 8
    assert len(loop.queue.pending) == 1


def test_overlapping_minute_schedules_start_one_loop(loop: Loop) -> None:
    # Given something live
    open_resting_group(loop)
    # When two minute schedules overlap (same instant), and another comes a minute later
    first, second = loop.minute(), loop.minute()
    # Then exactly one took the lease and sent a tick
    started = [r["loop_started"] for r in (first, second) if r["loop_started"] is not None]
    assert len(started) == 1
    assert loop.holder() == started[0]
    assert loop.queue.sent == 1
    loop.run_until(T0 + timedelta(seconds=60))
    assert loop.minute()["loop_started"] is None
    # ... and the single chain ticked every 5 s
    assert loop.outcomes == ["continued"] * 12
    assert len(loop.queue.pending) == 1


def test_a_duplicate_tick_does_not_fork_the_loop(loop: Loop) -> None:
    # Given a running loop at step 0
    open_resting_group(loop)
    holder = loop.minute()["loop_started"]
    loop.clock.now += timedelta(seconds=INTERVAL)
    (tick,) = loop.queue.due()
    # When SQS delivers step 0 twice (at-least-once), and a stranger's tick arrives
    assert loop.tick(tick) == ["continued"]
    assert loop.tick(tick) == ["not_holder"]
    assert loop.tick(LoopTick("someone-else", 1)) == ["not_holder"]
    # Then only one next tick exists, still of the same holder
    assert [t for _at, t in loop.queue.pending] == [LoopTick(holder, 1)]


def test_loop_stops_when_idle_and_the_minute_schedule_restarts_it(loop: Loop) -> None:
    # Given a running loop over one resting leg
    group, leg = open_resting_group(loop)
    holder = loop.minute()["loop_started"]
    loop.run_until(T0 + timedelta(seconds=10))
    # When the group ends (nothing live any more)
    cancelled = loop.ctx.stores.orders.get(leg.id)
    assert cancelled is not None
    cancelled.status = OrderStatus.CANCELLED
    loop.ctx.stores.orders.save(cancelled, now=loop.clock.now)
    stored = loop.ctx.stores.groups.get(group.id)
    assert stored is not None
    stored.status = GroupStatus.FAILED
    loop.ctx.stores.groups.save(stored, now=loop.clock.now)
    loop.ctx.stores.pool.release_slot(group.id, group.key)
    loop.run_until(T0 + timedelta(seconds=30))
    # Then the next tick released the lease and sent nothing: the loop costs nothing while idle
    assert loop.outcomes[-1] == "stopped"
    assert loop.outcomes.count("stopped") == 1
    assert loop.queue.pending == []
    assert loop.holder() is None
    # ... an idle minute schedule starts nothing
    loop.clock.now = T0 + timedelta(seconds=60)
    assert loop.minute()["loop_started"] is None
    # ... and once something is live again the minute schedule starts a new loop
    loop.clock.now = T0 + timedelta(seconds=120)
    open_resting_group(loop)
    restarted = loop.minute()["loop_started"]
    assert restarted is not None and restarted != holder
    assert len(loop.queue.pending) == 1


def test_a_broken_chain_is_restarted_after_its_lease_expires(loop: Loop) -> None:
    # Given a loop whose next tick is lost
    open_resting_group(loop)
    holder = loop.minute()["loop_started"]
    lost = loop.queue.pending.pop()[1]
    # When the minute schedule fires while the lease is still valid, it starts nothing
    loop.clock.now = T0 + timedelta(seconds=60)
    assert loop.minute()["loop_started"] is None
    # ... and after the lease expired (interval + slack) it starts a new loop
    loop.clock.now = T0 + timedelta(seconds=INTERVAL) + LEASE_SLACK + timedelta(seconds=2)
    restarted = loop.minute()["loop_started"]
    assert restarted is not None and restarted != holder
    # Then the lost tick, delivered late after all, stops without forking
    assert loop.tick(lost) == ["not_holder"]
    assert len(loop.queue.pending) == 1


def test_sqs_tick_sender_sends_a_delayed_tick(dynamodb: Any) -> None:
    # Given a queue (moto)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="sync-loop")["QueueUrl"]
    # When a tick is sent with a 5 s delay
    SqsTickSender(url, client=sqs).send(LoopTick("h1", 3), 5)
    # Then it waits in the queue as a delayed message carrying the tick
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert json.loads(LoopTick("h1", 3).to_body()) == {"loop": "h1", "seq": 3}
    assert LoopTick.from_body('{"loop": "h1", "seq": 3}') == LoopTick("h1", 3)
    assert LoopTick.from_body("not json") is None
