"""slot_release and the queue: a closed group frees its slot once, or hands it to the best queued signal.

The real ``functions/slot_release/handler.py`` gets Lambda events built from moto's groups-stream
records, in order; replays deliver the same batches again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.app.context import Stores, engine_context
from engine.app.intake import EntryRefused
from engine.app.pool import promote_entry, sweep_queue
from engine.app.shared.errors import NotFound, PoolFull
from engine.config import load_config
from engine.domain.models import GroupStatus, OrderPurpose, OrderStatus
from tests.support.scenario import (
    T0,
    close_flat,
    engine_env,
    entries_of,
    group_of,
    open_group,
    queue_entry,
    set_document,
)
from tests.support.streams import Streams, drain, load_function


@pytest.fixture
def st(dynamodb, monkeypatch) -> Stores:
    return engine_env(monkeypatch).stores


def release(streams: Streams, *, replay: int = 1) -> None:
    """Deliver every new groups-stream record to slot_release."""
    drain(streams, {"groups": [load_function("slot_release")]}, replay=replay)


def queued_ids(st: Stores) -> list[str]:
    return sorted(entry.id for entry in st.queue.list_all())


def test_a_closed_group_frees_its_slot_once_whatever_the_replays(st):
    # Given a pool of 2 with groups A and B open
    set_document("pool", max_open_groups=2)
    a, _ = open_group(st, price="100")
    b, _ = open_group(st, price="2000", symbol="ETH/USDT")
    streams = Streams()
    # When A closes and every groups-stream batch is delivered twice
    close_flat(st, a.id)
    assert group_of(st, a.id).status is GroupStatus.CLOSED
    release(streams, replay=2)
    # Then exactly one slot was freed: B keeps its slot
    assert st.pool.status() == (1, [b.id])
    # And replaying the whole stream from its start frees nothing more
    release(Streams(), replay=2)
    assert st.pool.status() == (1, [b.id])
    # And the key is free again: a new group for A's key opens
    again, _ = open_group(st, price="100", candle=2)
    assert st.pool.status() == (2, sorted([b.id, again.id]))


SETUP = {
    # id: (symbol, entry price, current price, minutes queued, replacements)
    "q-old": ("ETH/USDT", "2000", "2000", 60, 0),
    "q-replaced": ("SOL/USDT", "150", "151", 5, 2),
    "q-loss": ("BNB/USDT", "300", "290", 10, 0),
}


@pytest.mark.parametrize(
    ("rules", "promoted"),
    [
        (None, "q-loss"),  # default: pyramid_continuation, deepest_loss, replacement_count, oldest
        ([{"name": "replacement_count"}, {"name": "oldest"}], "q-replaced"),
        ([{"name": "deepest_loss", "enabled": False}, {"name": "oldest"}], "q-old"),
    ],
    ids=["deepest-loss-first", "most-replaced-first", "oldest-first"],
)
def test_the_best_queued_signal_takes_the_freed_slot(st, rules, promoted):
    # Given a pool of 1, held by A, and three queued signals
    set_document("pool", max_open_groups=1)
    if rules is not None:
        set_document("queue", rules=rules)
    a, _ = open_group(st, price="100")
    for entry_id, (symbol, entry_price, price, minutes, replacements) in SETUP.items():
        queue_entry(
            st,
            entry_id,
            symbol=symbol,
            price=entry_price,
            queued_minutes_ago=minutes,
            replacements=replacements,
        )
        st.prices.set("binance", symbol, Decimal(price), T0)
    streams = Streams()
    # When A closes and slot_release runs (twice per batch)
    close_flat(st, a.id)
    release(streams, replay=2)
    # Then the best entry by the rules got A's slot: a live group with its 5 pending legs
    assert st.pool.status() == (1, [promoted])
    group = group_of(st, promoted)
    assert group.status is GroupStatus.LIVE
    legs = entries_of(st, promoted)
    assert len(legs) == 5 and all(leg.status is OrderStatus.PENDING for leg in legs)
    assert queued_ids(st) == sorted(set(SETUP) - {promoted})
    record = next(r for r in st.signals.list_recent() if r.signal_id == f"{promoted}:promotion")
    assert (record.outcome, record.group_id) == ("opened", promoted)


def test_a_queued_signal_that_now_fails_pre_trade_is_rejected_and_the_next_promoted(st):
    # Given one group per symbol allowed, ETH already open, and the best queued entry also for ETH
    set_document("pool", max_open_groups=2)
    set_document("engine", max_open_per_symbol=1)
    a, _ = open_group(st, price="100")
    eth, _ = open_group(st, price="2000", symbol="ETH/USDT")
    queue_entry(st, "q-eth", symbol="ETH/USDT", price="2100", timeframe=240, queued_minutes_ago=60)
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150", queued_minutes_ago=5)
    st.prices.set("binance", "ETH/USDT", Decimal("2000"), T0)  # q-eth is 4.8 % under water: first in line
    streams = Streams()
    # When A closes
    close_flat(st, a.id)
    release(streams)
    # Then q-eth is rejected with the reason and removed, and q-sol took the slot
    assert st.pool.status() == (2, sorted([eth.id, "q-sol"]))
    assert queued_ids(st) == []
    record = next(r for r in st.signals.list_recent() if r.signal_id == "q-eth:promotion")
    assert record.outcome == "rejected"
    assert "per symbol" in (record.reason or "")


def test_a_pool_shrunk_below_its_count_only_releases(st):
    set_document("pool", max_open_groups=2)
    a, _ = open_group(st, price="100")
    b, _ = open_group(st, price="2000", symbol="ETH/USDT")
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150")
    set_document("pool", max_open_groups=1)
    streams = Streams()
    close_flat(st, a.id)
    release(streams)
    assert st.pool.status() == (1, [b.id])
    assert queued_ids(st) == ["q-sol"]


def test_while_paused_a_freed_slot_is_released_and_the_queue_kept(st):
    set_document("pool", max_open_groups=1)
    a, _ = open_group(st, price="100")
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150")
    set_document("engine", paused=True)
    streams = Streams()
    close_flat(st, a.id)
    release(streams)
    assert st.pool.status() == (0, [])
    assert queued_ids(st) == ["q-sol"]


def test_while_the_operator_paused_a_freed_slot_is_released_and_the_queue_kept(st):
    # Given the operator's pause control (POST /engine/pause), not the engine document
    set_document("pool", max_open_groups=1)
    a, _ = open_group(st, price="100")
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150")
    st.control.set_paused(True, T0, "test")
    streams = Streams()
    close_flat(st, a.id)
    release(streams)
    assert st.pool.status() == (0, [])
    assert queued_ids(st) == ["q-sol"]
    assert sweep_queue(engine_context(), load_config(), T0) == []
    # When the operator resumes, then the sweep promotes it
    st.control.set_paused(False, T0)
    assert sweep_queue(engine_context(), load_config(), T0) == ["q-sol"]


def test_a_queued_pyramid_continuation_extends_its_group_and_leaves_the_slot_to_the_next(st):
    set_document("pool", max_open_groups=2)
    a, _ = open_group(st, price="100")
    b, _ = open_group(st, price="2000", symbol="ETH/USDT")
    queue_entry(st, "q-pyr", symbol="BTC/USDT", price="95", candle=2, pyramid_continuation=True)
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150")
    streams = Streams()
    close_flat(st, b.id)
    release(streams, replay=2)
    extended = group_of(st, a.id)
    assert [p.index for p in extended.pyramids] == [1, 2]
    assert len(entries_of(st, a.id)) == 10
    assert st.pool.status() == (2, sorted([a.id, "q-sol"]))
    assert queued_ids(st) == []


def test_sweep_expires_old_entries_and_promotes_into_free_slots(st):
    set_document("pool", max_open_groups=1)
    queue_entry(st, "q-stale", symbol="ETH/USDT", price="2000", queued_minutes_ago=1441)
    queue_entry(st, "q-fresh", symbol="SOL/USDT", price="150", queued_minutes_ago=5)
    config = load_config()
    # When order_sync sweeps the queue
    assert sweep_queue(engine_context(), config, T0) == ["q-fresh"]
    # Then the stale entry expired (audited) and the fresh one opened in the free slot
    assert queued_ids(st) == []
    assert st.pool.status() == (1, ["q-fresh"])
    record = next(r for r in st.signals.list_recent() if r.signal_id == "q-stale:expiry")
    assert record.outcome == "expired"
    # And a second sweep does nothing
    assert sweep_queue(engine_context(), config, T0 + timedelta(minutes=1)) == []
    assert st.pool.status() == (1, ["q-fresh"])


def test_operator_promote(st):
    set_document("pool", max_open_groups=1)
    queue_entry(st, "q-sol", symbol="SOL/USDT", price="150")
    queue_entry(st, "q-eth", symbol="ETH/USDT", price="2000")
    config = load_config()
    with pytest.raises(NotFound):
        promote_entry(engine_context(), "missing", config, T0)
    group = promote_entry(engine_context(), "q-eth", config, T0)
    assert (group.id, group.status) == ("q-eth", GroupStatus.LIVE)
    with pytest.raises(PoolFull):
        promote_entry(engine_context(), "q-sol", config, T0)
    assert queued_ids(st) == ["q-sol"]


def test_operator_promote_of_a_refused_entry_keeps_it_queued(st):
    queue_entry(st, "q-doge", symbol="NOPE/USDT", price="1")
    with pytest.raises(EntryRefused, match="unknown market"):
        promote_entry(engine_context(), "q-doge", load_config(), T0)
    assert queued_ids(st) == ["q-doge"]


def test_a_failed_group_also_frees_its_slot(st):
    set_document("pool", max_open_groups=1)
    a, _ = open_group(st, price="100")
    streams = Streams()
    # When the exchange rejects every leg of the first pyramid
    for leg in entries_of(st, a.id):
        leg.status = OrderStatus.REJECTED
        st.orders.save(leg, now=T0)
    from engine.app.positions import refresh_group

    refresh_group(engine_context(), a.id, T0)
    assert group_of(st, a.id).status is GroupStatus.FAILED
    release(streams)
    assert st.pool.status() == (0, [])
    assert [o for o in st.orders.list_for_group(a.id) if o.purpose is OrderPurpose.TP] == []
