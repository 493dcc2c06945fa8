"""Execution pool: bounded opens under concurrency, idempotent release and hand-over, key locks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.domain.models import Group, Side
from engine.store import (
    GroupStore,
    HandOverRefused,
    OpenResult,
    OrderStore,
    PoolStore,
    QueueStore,
)
from tests.support.builders import make_group, make_order, make_queue_entry

MAX_OPEN = 10


def _open_or_queue(index: int) -> tuple[OpenResult, bool | None]:
    group = make_group(symbol=f"C{index:02d}/USDT")
    result = PoolStore().open_group(group, [make_order(group)], max_open=MAX_OPEN)
    if result is not OpenResult.POOL_FULL:
        return result, None
    entry = make_queue_entry(symbol=group.symbol, timeframe=group.timeframe)
    return result, QueueStore().enqueue(entry)


@pytest.mark.usefixtures("moto_server")
def test_fifty_concurrent_opens_against_ten_slots():
    # Given an empty pool of 10, when 50 threads open groups for 50 distinct symbols at once
    with ThreadPoolExecutor(max_workers=50) as executor:
        results = list(executor.map(_open_or_queue, range(50)))
    # Then exactly 10 open; the other 40 are refused as pool full and queued
    outcomes = [result for result, _ in results]
    assert outcomes.count(OpenResult.OPENED) == MAX_OPEN
    assert outcomes.count(OpenResult.POOL_FULL) == 40
    assert all(queued is True for result, queued in results if result is OpenResult.POOL_FULL)
    count, slots = PoolStore().status()
    assert count == MAX_OPEN and len(slots) == MAX_OPEN
    open_groups = GroupStore().list_open()
    assert sorted(g.id for g in open_groups) == slots
    assert len(QueueStore().list_all()) == 40
    assert all(len(OrderStore().list_for_group(g.id)) == 1 for g in open_groups)


def _open(pool: PoolStore, count: int, max_open: int = 3) -> list[Group]:
    groups = [make_group(symbol=f"S{i}/USDT") for i in range(count)]
    for group in groups:
        assert pool.open_group(group, [], max_open=max_open) is OpenResult.OPENED
    return groups


@pytest.mark.usefixtures("dynamodb")
def test_replayed_release_frees_one_slot_once():
    pool = PoolStore()
    groups = _open(pool, 3)
    target = groups[0]
    assert pool.release_slot(target.id, target.key) is True
    assert pool.release_slot(target.id, target.key) is False
    count, slots = pool.status()
    assert count == 2 and target.id not in slots
    # the key is free again for a new group
    assert pool.open_group(make_group(symbol=target.symbol), [], max_open=3) is OpenResult.OPENED


@pytest.mark.usefixtures("dynamodb")
def test_release_of_a_group_without_a_slot_changes_nothing():
    pool, groups = PoolStore(), GroupStore()
    holder = _open(pool, 1)[0]
    assert pool.release_slot("ghost", holder.key) is False
    assert pool.count() == 1
    assert groups.get_open_by_key(holder.key) == holder


@pytest.mark.usefixtures("dynamodb")
def test_key_lock_prevents_a_second_open_group_for_one_key():
    pool = PoolStore()
    first = make_group()
    second = make_group()  # same exchange, symbol, timeframe, side -> same key
    assert pool.open_group(first, [], max_open=5) is OpenResult.OPENED
    assert pool.open_group(second, [], max_open=5) is OpenResult.KEY_TAKEN
    assert pool.status() == (1, [first.id])
    assert GroupStore().get(second.id) is None
    # the opposite side is another key
    assert pool.open_group(make_group(side=Side.SHORT), [], max_open=5) is OpenResult.OPENED


@pytest.mark.usefixtures("dynamodb")
def test_replayed_open_is_already_open_and_counts_once():
    pool = PoolStore()
    group = make_group()
    order = make_order(group)
    assert pool.open_group(group, [order], max_open=5) is OpenResult.OPENED
    assert pool.open_group(group, [order], max_open=5) is OpenResult.ALREADY_OPEN
    assert pool.count() == 1


@pytest.mark.usefixtures("dynamodb")
def test_pool_full_writes_nothing():
    pool = PoolStore()
    _open(pool, 2, max_open=2)
    extra = make_group(symbol="X/USDT")
    order = make_order(extra)
    assert pool.open_group(extra, [order], max_open=2) is OpenResult.POOL_FULL
    assert GroupStore().get(extra.id) is None and OrderStore().get(order.id) is None
    assert pool.count() == 2
    assert pool.open_group(extra, [order], max_open=0) is OpenResult.POOL_FULL


@pytest.mark.usefixtures("dynamodb")
def test_open_promoting_a_queue_entry_deletes_it_and_its_key_lock():
    pool, queue = PoolStore(), QueueStore()
    entry = make_queue_entry()
    queue.enqueue(entry)
    group = make_group(symbol=entry.symbol)
    assert pool.open_group(group, [], max_open=5, queue_entry_id=entry.id) is OpenResult.OPENED
    assert queue.get(entry.id) is None and queue.find_by_key(entry.key) is None
    # the key can be queued again
    assert queue.enqueue(make_queue_entry()) is True
    # promoting an entry that is gone opens nothing
    again = make_group(symbol="Z/USDT")
    assert pool.open_group(again, [], max_open=5, queue_entry_id=entry.id) is OpenResult.QUEUE_ENTRY_GONE
    assert pool.count() == 1


@pytest.mark.usefixtures("dynamodb")
@pytest.mark.parametrize("same_key", [False, True], ids=["other-key", "same-key"])
def test_hand_over_moves_the_slot_and_a_replay_changes_nothing(same_key: bool):
    pool, queue, groups = PoolStore(), QueueStore(), GroupStore()
    old = _open(pool, 3)[0]
    entry = make_queue_entry(symbol=old.symbol if same_key else "NEW/USDT", timeframe=old.timeframe)
    assert queue.enqueue(entry) is True
    new = make_group(symbol=entry.symbol)
    legs = [make_order(new)]
    # When the old group's slot is handed to the promoted group
    handed = pool.hand_over_slot(
        old_group_id=old.id, old_key=old.key, new_group=new, new_orders=legs, queue_entry_id=entry.id
    )
    # Then the slot moved, the counter is unchanged and the queue entry is gone
    assert handed is True
    count, slots = pool.status()
    assert count == 3 and new.id in slots and old.id not in slots
    assert queue.get(entry.id) is None and queue.find_by_key(entry.key) is None
    assert groups.get_open_by_key(new.key) == new and new.version == 1 and legs[0].version == 1
    if not same_key:
        assert groups.get_open_by_key(old.key) is None
    # And a replay changes nothing
    other = make_group(symbol="OTHER/USDT")
    replay = pool.hand_over_slot(
        old_group_id=old.id, old_key=old.key, new_group=other, new_orders=[], queue_entry_id=entry.id
    )
    assert replay is False
    assert pool.status() == (count, slots) and groups.get(other.id) is None


@pytest.mark.usefixtures("dynamodb")
def test_hand_over_to_a_taken_key_is_refused_and_writes_nothing():
    pool, queue = PoolStore(), QueueStore()
    old, holder = _open(pool, 2)
    entry = make_queue_entry(symbol=holder.symbol, timeframe=holder.timeframe)
    queue.enqueue(entry)
    new = make_group(symbol=holder.symbol)
    with pytest.raises(HandOverRefused) as refused:
        pool.hand_over_slot(
            old_group_id=old.id, old_key=old.key, new_group=new, new_orders=[], queue_entry_id=entry.id
        )
    assert refused.value.reason is OpenResult.KEY_TAKEN
    assert pool.status() == (2, sorted([old.id, holder.id]))
    assert queue.get(entry.id) == entry
    # the caller then just releases the slot
    assert pool.release_slot(old.id, old.key) is True and pool.count() == 1
