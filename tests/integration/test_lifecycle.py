"""THE lifecycle, through real event shapes only, on the paper exchange (moto):

TradingView alert (API Gateway event) → webhook → order_executor (orders stream) places the legs →
price moves → order_sync (scheduled event) records fills → position_update places TPs from the fill
prices → price up → TPs fill → group closed → slot_release (groups stream) frees the slot → the signal
queued meanwhile (pool of 1) is promoted at once and its legs are placed.

Stream events are built from moto's own stream records, in order (tests/support/streams.py); every
handler is the real ``functions/<name>/handler.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, stores
from engine.domain.models import GroupStatus, OrderPurpose, OrderSide, OrderStatus, OrderType, utcnow
from engine.local.events import scheduled_event
from tests.support.scenario import group_of, set_document
from tests.support.streams import Streams, deliver, drain, load_function
from tests.support.webhook import WebhookClient, alert, prepare_webhook

BTC = "BTC/USDT"
ETH = "ETH/USDT"


class Engine:
    """The deployed functions, fed by the streams until quiet."""

    def __init__(self, client: WebhookClient) -> None:
        self.client = client
        self.stores: Stores = stores()
        self.streams = Streams()
        self.executor = load_function("order_executor")
        self.position_update = load_function("position_update")
        self.slot_release = load_function("slot_release")
        self.order_sync = load_function("order_sync")

    def settle(self, replay: int = 1) -> None:
        """Deliver every stream record to its consumers until nothing new is written."""
        drain(
            self.streams,
            {
                "orders": [self.executor, self.position_update],
                "groups": [self.slot_release],
            },
            replay=replay,
        )

    def alert(self, **fields: Any) -> dict[str, Any]:
        status, body = self.client.post(alert(**fields))
        assert status == 202, body
        self.settle()
        return body

    def price(self, symbol: str, price: str) -> None:
        self.stores.prices.set("binance", symbol, Decimal(price), utcnow())

    def tick(self) -> dict[str, Any]:
        """EventBridge's every-minute schedule (forced, like the local tick), then the streams."""
        summary = deliver(self.order_sync, scheduled_event("order-sync", "us-east-1", force=True))
        self.settle()
        return dict(summary)

    def orders(self, group_id: str, purpose: OrderPurpose) -> list[Any]:
        found = [o for o in self.stores.orders.list_for_group(group_id) if o.purpose == purpose]
        return sorted(found, key=lambda o: (o.pyramid or 0, o.leg or 0, o.id))

    def on_exchange(self, order: Any) -> Any:
        """The paper exchange's record of one of our orders (by client order id)."""
        return self.stores.paper.get("binance", order.client_order_id)


@pytest.fixture
def engine(dynamodb: object, monkeypatch: pytest.MonkeyPatch) -> Engine:
    client = prepare_webhook(monkeypatch)
    set_document("pool", max_open_groups=1)
    return Engine(client)


def test_alert_to_closed_position_and_the_queued_signal_promoted(engine: Engine) -> None:
    st = engine.stores
    engine.price(BTC, "49990")
    engine.price(ETH, "2000")

    # 1. A buy alert opens a group; the executor places its five legs on the paper exchange.
    #    Leg 1 (limit 50000.00) is marketable and fills at once at the market price, 49990.
    opened = engine.alert(entry_price="50000")
    assert opened["outcome"] == "opened"
    group_id = opened["group_id"]
    legs = engine.orders(group_id, OrderPurpose.ENTRY)
    assert [leg.price for leg in legs] == [
        Decimal("50000.00"),
        Decimal("49750.00"),
        Decimal("49500.00"),
        Decimal("49000.00"),
        Decimal("48000.00"),
    ]
    assert [leg.status for leg in legs] == [OrderStatus.FILLED] + [OrderStatus.OPEN] * 4
    assert all(engine.on_exchange(leg) is not None for leg in legs)
    assert legs[0].average == Decimal("49990")

    # 2. position_update placed leg 1's TP from its REAL fill (49990 * 1.01 = 50489.90, not 50500.00)
    #    and the executor sent it.
    (tp1,) = engine.orders(group_id, OrderPurpose.TP)
    assert (tp1.price, tp1.amount, tp1.side, tp1.type) == (
        Decimal("50489.90"),
        legs[0].amount,
        OrderSide.SELL,
        OrderType.LIMIT,
    )
    assert tp1.status is OrderStatus.OPEN and engine.on_exchange(tp1).status == "open"
    group = group_of(st, group_id)
    assert group.status is GroupStatus.PARTIALLY_FILLED
    assert (group.figures.quantity, group.figures.avg_entry) == (legs[0].amount, Decimal("49990"))

    # 3. The pool (size 1) is full: an ETH alert is queued.
    queued = engine.alert(symbol="ETHUSDT", entry_price="2000")
    assert queued["outcome"] == "queued"
    assert st.pool.status() == (1, [group_id])

    # 4. The price falls through every leg: order_sync records the fills, each leg gets its TP.
    engine.price(BTC, "47900")
    engine.tick()
    legs = engine.orders(group_id, OrderPurpose.ENTRY)
    assert all(leg.status is OrderStatus.FILLED for leg in legs)
    assert [leg.average for leg in legs[1:]] == [leg.price for leg in legs[1:]]
    tps = engine.orders(group_id, OrderPurpose.TP)
    assert [tp.parent_order_id for tp in tps] == [leg.id for leg in legs]
    assert [tp.price for tp in tps] == [
        Decimal("50489.90"),  # 49990 * 1.01
        Decimal("49998.75"),  # 49750 * 1.005
        Decimal("49747.50"),  # 49500 * 1.005
        Decimal("49245.00"),  # 49000 * 1.005
        Decimal("48240.00"),  # 48000 * 1.005
    ]
    assert all(tp.status is OrderStatus.OPEN for tp in tps)
    group = group_of(st, group_id)
    assert group.status is GroupStatus.ACTIVE
    assert group.figures.quantity == sum(leg.amount for leg in legs)

    # 5. The price rises above every TP: they fill, the group is closed and flat, in profit.
    engine.price(BTC, "50600")
    engine.tick()
    assert all(tp.status is OrderStatus.FILLED for tp in engine.orders(group_id, OrderPurpose.TP))
    group = group_of(st, group_id)
    assert group.status is GroupStatus.CLOSED
    assert group.closed_at is not None
    assert group.figures.quantity == 0
    assert group.figures.realized_pnl_usd > 0

    # 6. slot_release handed the slot to the queued ETH signal at once; its legs are on the exchange.
    promoted_id = queued["queue_id"]
    assert st.pool.status() == (1, [promoted_id])
    assert st.queue.list_all() == []
    promoted = group_of(st, promoted_id)
    assert (promoted.symbol, promoted.status) == (ETH, GroupStatus.PARTIALLY_FILLED)
    eth_legs = engine.orders(promoted_id, OrderPurpose.ENTRY)
    assert len(eth_legs) == 5
    assert all(engine.on_exchange(leg) is not None for leg in eth_legs)
    assert [leg.status for leg in eth_legs] == [OrderStatus.FILLED] + [OrderStatus.OPEN] * 4


def test_replaying_every_stream_batch_twice_ends_in_the_same_state(engine: Engine) -> None:
    st = engine.stores
    engine.price(BTC, "49990")
    engine.price(ETH, "2000")
    opened = engine.alert(entry_price="50000")
    queued = engine.alert(symbol="ETHUSDT", entry_price="2000")
    group_id = opened["group_id"]
    # When every batch from here on is delivered twice
    engine.price(BTC, "47900")
    deliver(engine.order_sync, scheduled_event("order-sync", "us-east-1", force=True))
    engine.settle(replay=2)
    engine.price(BTC, "50600")
    deliver(engine.order_sync, scheduled_event("order-sync", "us-east-1", force=True))
    engine.settle(replay=2)
    # And the whole history of both streams is replayed once more from the start
    drain(
        Streams(),
        {"orders": [engine.executor, engine.position_update], "groups": [engine.slot_release]},
    )
    # Then: one TP per leg, closed once, one slot handed over once, no extra exchange order
    assert len(engine.orders(group_id, OrderPurpose.TP)) == 5
    assert group_of(st, group_id).status is GroupStatus.CLOSED
    assert st.pool.status() == (1, [queued["queue_id"]])
    assert len(engine.orders(queued["queue_id"], OrderPurpose.ENTRY)) == 5
    ours = st.orders.list_for_group(group_id) + st.orders.list_for_group(queued["queue_id"])
    on_exchange = sorted(order.client_order_id for order in st.paper.list_all("binance"))
    assert on_exchange == sorted(order.client_order_id for order in ours)
    assert len(on_exchange) == 5 + 5 + 5 + 1  # BTC legs and TPs, ETH legs and the TP of its filled leg 1
