"""Queue one-entry-per-key, replacement and removal; schedule claims and once-markers."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest

from engine.domain.models import Side
from engine.store import QueueStore, StateStore
from tests.support.builders import T0, make_queue_entry


@pytest.mark.usefixtures("dynamodb")
def test_queue_holds_one_entry_per_key():
    queue = QueueStore()
    first = make_queue_entry()
    assert queue.enqueue(first) is True
    assert queue.enqueue(make_queue_entry()) is False  # same key, other id
    assert queue.enqueue(first) is False  # replay
    assert queue.enqueue(make_queue_entry(side=Side.SHORT)) is True  # other key
    assert [e.id for e in queue.list_all()].count(first.id) == 1
    assert len(queue.list_all()) == 2


@pytest.mark.usefixtures("dynamodb")
def test_replace_keeps_queued_at_and_requires_the_entry():
    queue = QueueStore()
    entry = make_queue_entry()
    queue.enqueue(entry)
    replaced = dataclasses.replace(
        entry, entry_price=Decimal("2400.5"), replacement_count=1, updated_at=T0 + timedelta(minutes=60)
    )
    assert queue.replace(replaced) is True
    assert queue.find_by_key(entry.key) == replaced
    assert queue.remove(entry.id) is True
    assert queue.replace(replaced) is False
    assert queue.get(entry.id) is None


@pytest.mark.usefixtures("dynamodb")
def test_remove_frees_the_key_and_a_second_remove_is_false():
    queue = QueueStore()
    entry = make_queue_entry()
    queue.enqueue(entry)
    assert queue.remove(entry.id) is True
    assert queue.remove(entry.id) is False
    assert queue.find_by_key(entry.key) is None
    assert queue.enqueue(make_queue_entry()) is True


@pytest.mark.usefixtures("dynamodb")
def test_claim_interval_acts_once_per_interval():
    state = StateStore()
    minute = timedelta(minutes=1)
    assert state.claim_interval("risk", minute, T0) is True
    # repeated and overlapping invocations within the interval do nothing
    assert state.claim_interval("risk", minute, T0) is False
    assert state.claim_interval("risk", minute, T0 + timedelta(seconds=59)) is False
    # another schedule is independent
    assert state.claim_interval("sync", minute, T0) is True
    # once the interval has passed, exactly one more claim succeeds
    assert state.claim_interval("risk", minute, T0 + minute) is True
    assert state.claim_interval("risk", minute, T0 + minute) is False


@pytest.mark.usefixtures("moto_server")
def test_claim_interval_under_concurrent_invocations_acts_once():
    state = StateStore()
    with ThreadPoolExecutor(max_workers=20) as executor:
        claims = list(
            executor.map(lambda _: state.claim_interval("risk", timedelta(minutes=1), T0), range(20))
        )
    assert claims.count(True) == 1


@pytest.mark.usefixtures("dynamodb")
def test_mark_once_is_true_the_first_time_only():
    state = StateStore()
    assert state.mark_once("fill:o1:3", timedelta(days=1), now=T0) is True
    assert state.mark_once("fill:o1:3", timedelta(days=1), now=T0) is False
    assert state.mark_once("fill:o1:4", timedelta(days=1), now=T0) is True


@pytest.mark.usefixtures("dynamodb")
def test_mark_once_treats_an_expired_marker_as_absent():
    state = StateStore()
    assert state.mark_once("m", timedelta(seconds=-10), now=T0) is True  # already expired
    assert state.mark_once("m", timedelta(days=1), now=T0) is True
    assert state.mark_once("m", timedelta(days=1), now=T0) is False
