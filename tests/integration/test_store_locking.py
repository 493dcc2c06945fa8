"""Optimistic locking: a save based on a stale version is refused and changes nothing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from engine.domain.models import GroupStatus, OrderStatus, utcnow
from engine.store import AlreadyExists, ConcurrentUpdate, GroupStore, OrderStore, PoolStore, StaleWrite
from tests.support.builders import make_group, make_order, make_pyramid

pytestmark = pytest.mark.usefixtures("dynamodb")


def test_order_save_conflict_is_stale_write_and_keeps_the_winner():
    store = OrderStore()
    order = make_order()
    store.put_new(order)
    # Given two readers of version 1
    first, second = store.get(order.id), store.get(order.id)
    assert first is not None and second is not None
    # When the first saves, then the second saves from the same version
    first.status = OrderStatus.OPEN
    store.save(first, now=utcnow())
    second.status = OrderStatus.REJECTED
    with pytest.raises(StaleWrite):
        store.save(second, now=utcnow())
    # Then the winner stays, the loser's object is untouched, versions advanced once
    stored = store.get(order.id)
    assert stored is not None and stored.status == OrderStatus.OPEN and stored.version == 2
    assert first.version == 2 and second.version == 1


def test_order_save_with_version_zero_creates_only_when_absent():
    store = OrderStore()
    order = make_order()
    store.save(order, now=utcnow())
    assert order.version == 1
    with pytest.raises(ConcurrentUpdate):
        store.save(dataclasses.replace(order, version=0), now=utcnow())


def test_group_save_conflict_is_stale_write():
    pool, groups = PoolStore(), GroupStore()
    group = make_group()
    pool.open_group(group, [], max_open=3)
    stale = dataclasses.replace(group)
    group.status = GroupStatus.PARTIALLY_FILLED
    groups.save(group, now=utcnow())
    stale.status = GroupStatus.CLOSING
    with pytest.raises(StaleWrite):
        groups.save(stale, now=utcnow())
    stored = groups.get(group.id)
    assert stored is not None and stored.status == GroupStatus.PARTIALLY_FILLED and stored.version == 2


def test_add_pyramid_on_stale_group_writes_nothing():
    pool, groups, orders = PoolStore(), GroupStore(), OrderStore()
    group = make_group()
    pool.open_group(group, [], max_open=3)
    stale = dataclasses.replace(group, pyramids=list(group.pyramids))
    groups.save(group, now=utcnow())
    leg = make_order(group, pyramid=1)
    with pytest.raises(StaleWrite):
        groups.add_pyramid(stale, make_pyramid(index=1), [leg], now=utcnow())
    assert orders.get(leg.id) is None
    assert stale.pyramid_count == 1 and stale.version == 1
    stored = groups.get(group.id)
    assert stored is not None and stored.pyramid_count == 1


def test_add_pyramid_with_an_existing_order_id_writes_nothing():
    pool, groups, orders = PoolStore(), GroupStore(), OrderStore()
    group = make_group()
    pool.open_group(group, [], max_open=3)
    existing = make_order(group, amount=Decimal(1))
    orders.put_new(existing)
    with pytest.raises(AlreadyExists):
        groups.add_pyramid(
            group, make_pyramid(index=1), [dataclasses.replace(existing, amount=Decimal(2))], now=utcnow()
        )
    stored = groups.get(group.id)
    assert stored is not None and stored.version == 1 and stored.pyramid_count == 1
    assert group.version == 1
