"""Typed state in the store: a group's close reason code and note, an order's wait, and old items."""

from __future__ import annotations

import dataclasses

import pytest

from engine.domain.models import CloseReason, GroupStatus, OrderStatus, OrderWait
from engine.store import GroupStore, OrderStore
from engine.store.convert import group_to_model
from tests.support.builders import T0, make_group, make_order

pytestmark = pytest.mark.usefixtures("dynamodb")


@pytest.mark.parametrize("wait", list(OrderWait))
def test_an_order_wait_round_trips(wait: OrderWait) -> None:
    # Given a pending order that waits on the engine
    order = make_order(wait=wait, reason="not sent yet: rate limit exceeded; will retry")
    store = OrderStore()
    # When it is stored and read back, then its wait is kept as the enum
    assert store.put_new(order) is True
    loaded = store.get(order.id)
    assert loaded == dataclasses.replace(order, version=1)
    assert loaded is not None and loaded.wait is wait


def test_an_order_without_a_wait_reads_back_none() -> None:
    order = make_order(status=OrderStatus.OPEN)
    store = OrderStore()
    store.put_new(order)
    loaded = store.get(order.id)
    assert loaded is not None and loaded.wait is None


def test_a_close_reason_code_and_note_round_trip() -> None:
    # Given a closed group with a code and a note, written as an item and read back
    group = make_group(
        status=GroupStatus.CLOSED,
        close_reason=CloseReason.RISK,
        close_note="risk engine: worst loser",
        closed_at=T0,
    )
    group_to_model(group).save()
    loaded = GroupStore().get(group.id)
    # Then both fields come back, the reason as the enum
    assert loaded is not None
    assert loaded.close_reason is CloseReason.RISK and loaded.close_note == "risk engine: worst loser"


@pytest.mark.parametrize(
    ("stored", "reason", "note"),
    [
        ("exit: exit signal", CloseReason.EXIT, "exit signal"),
        ("tp: aggregate take-profit", CloseReason.TAKE_PROFIT, "aggregate take-profit"),
        ("risk_close: risk engine loser", CloseReason.RISK, "risk engine loser"),
        ("risk_close: risk: worst loser", CloseReason.RISK, "risk: worst loser"),
        ("exit: operator close", CloseReason.OPERATOR, "operator close"),
        ("manual", CloseReason.EXIT, "manual"),
    ],
)
def test_a_group_written_before_the_codes_reads_as_a_code_and_a_note(
    stored: str, reason: CloseReason, note: str
) -> None:
    # Given a group item whose close_reason is the old "<purpose>: <text>" (or any other text)
    group = make_group(status=GroupStatus.CLOSED, closed_at=T0)
    item = group_to_model(group)
    item.close_reason = stored
    item.save()
    # When it is read, then it does not crash: the purpose maps to the code and the text is the note
    loaded = GroupStore().get(group.id)
    assert loaded is not None
    assert (loaded.close_reason, loaded.close_note) == (reason, note)
