"""Which order states ask the executor for something (``engine.app.execution.asks_for_action``): the
executor skips every other stream record without reading the table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.app.execution import asks_for_action
from engine.domain.models import OrderStatus
from tests.support.builders import make_order

S = OrderStatus

CASES = [
    # (status, cancel requested, price trigger, asks)
    (S.PENDING, False, None, True),  # to send
    (S.PENDING, False, Decimal("95"), False),  # waits for its trigger (the sync fires it: a new write)
    (S.PENDING, True, None, True),  # cancel before sending
    (S.PENDING, True, Decimal("95"), True),
    (S.OPEN, False, None, False),  # resting
    (S.OPEN, True, None, True),  # cancel on the exchange
    (S.PARTIALLY_FILLED, False, None, False),
    (S.PARTIALLY_FILLED, True, None, True),
    (S.FILLED, False, None, False),
    (S.FILLED, True, None, False),  # nothing left to cancel
    (S.CANCELLED, True, None, False),
    (S.REJECTED, False, None, False),
    (S.UNKNOWN, False, None, False),  # the sync reconciles it
    (S.UNKNOWN, True, None, False),
]


@pytest.mark.parametrize(("status", "cancel", "trigger", "asks"), CASES)
def test_an_order_asks_for_action_only_when_there_is_something_to_send_or_cancel(
    status: OrderStatus, cancel: bool, trigger: Decimal | None, asks: bool
) -> None:
    order = make_order(status=status, cancel_requested=cancel, trigger_price=trigger)
    assert asks_for_action(order) is asks
