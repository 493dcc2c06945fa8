"""Every store writes and reads back domain objects exactly (Decimals, times, enums, documents)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from engine.domain.models import (
    CloseReason,
    ExchangeOrder,
    Fill,
    GroupFigures,
    GroupStatus,
    MarketPrecision,
    OrderSide,
    OrderStatus,
    OrderType,
    utcnow,
)
from engine.store import (
    EquityStore,
    GroupStore,
    MarketStore,
    OrderStore,
    PaperOrderStore,
    PoolStore,
    PriceStore,
    QueueStore,
    RiskActionRecord,
    RiskActionStore,
    SignalAudit,
    StateStore,
)
from engine.store.tables import GroupModel, OrderModel, PaperOrderModel, bind
from tests.support.builders import T0, make_group, make_order, make_pyramid, make_queue_entry

TINY = Decimal("0.000000012345678901234567890123")  # 30 significant digits: a float would lose them
pytestmark = pytest.mark.usefixtures("dynamodb")


def test_order_round_trip_keeps_every_field_exact():
    # Given an order with every optional field set, including a Decimal no float can hold
    order = make_order(
        amount=TINY,
        price=Decimal("27123.4500"),
        status=OrderStatus.PARTIALLY_FILLED,
        filled=Decimal("0.1"),
        average=Decimal("27123.45"),
        cost=Decimal("2712.345"),
        fee_cost=Decimal("0.0001"),
        fee_currency="BTC",
        exchange_order_id="x-1",
        exchange_status="open",
        reason="why not",
        trigger_price=Decimal("26000.5"),
        parent_order_id="o-parent",
        cancel_requested=True,
        last_fill_at=T0 + timedelta(minutes=1),
    )
    store = OrderStore()
    # When it is stored and read back
    assert store.put_new(order) is True
    loaded = store.get(order.id)
    # Then it is equal field by field (version 1 after the first write), Decimal text included
    assert loaded == dataclasses.replace(order, version=1)
    assert loaded is not None and str(loaded.amount) == str(TINY) and str(loaded.price) == "27123.4500"


def test_order_round_trip_keeps_the_fill_ledger_and_fee_usd_exact(dynamodb: Any) -> None:
    # Given an order with a ledger of two fills (one fee in BNB converted, one unconverted) recorded at
    # times in another timezone, and its fee_usd
    plus_two = timezone(timedelta(hours=2))
    fills = [
        Fill(
            Decimal("0.0001"),
            Decimal("27123.4500"),
            T0.astimezone(plus_two),
            Decimal("0.00000001"),
            "BNB",
            Decimal("0.000006"),
        ),
        Fill(
            Decimal("0.00030000"),
            Decimal("27000.1"),
            T0 + timedelta(seconds=3),
            Decimal("0.075"),
            "BNB",
            None,
        ),
    ]
    order = make_order(
        status=OrderStatus.FILLED,
        filled=Decimal("0.0004"),
        average=Decimal("27030.9375"),
        fee_cost=Decimal("0.07500001"),
        fee_currency="BNB",
        fills=fills,
        fee_usd=Decimal("45.0000060"),
    )
    store = OrderStore()
    # When it is stored and read back
    store.put_new(order)
    loaded = store.get(order.id)
    # Then the ledger and fee_usd come back exact: Decimal text kept, times in UTC
    assert loaded == dataclasses.replace(order, version=1)
    assert loaded is not None
    assert [str(f.price) for f in loaded.fills] == ["27123.4500", "27000.1"]
    assert [str(f.quantity) for f in loaded.fills] == ["0.0001", "0.00030000"]
    assert str(loaded.fee_usd) == "45.0000060" and loaded.fills[1].fee_usd is None
    assert all(f.at.tzinfo == UTC for f in loaded.fills) and loaded.fills[0].at == T0
    # And the item stores the numbers as strings (no float on the way)
    raw = dynamodb.get_item(TableName=bind(OrderModel).Meta.table_name, Key={"id": {"S": order.id}})["Item"]
    assert raw["fills"]["L"][0]["M"]["price"] == {"S": "27123.4500"}
    assert raw["fee_usd"] == {"S": "45.0000060"}


def test_order_round_trip_with_optional_fields_absent():
    order = make_order(price=None, pyramid=None, leg=None, tp_percent=None)
    store = OrderStore()
    store.put_new(order)
    assert store.get(order.id) == dataclasses.replace(order, version=1)


def test_put_new_refuses_an_existing_id_and_keeps_the_first():
    store = OrderStore()
    order = make_order()
    assert store.put_new(order) is True
    assert store.put_new(dataclasses.replace(order, amount=Decimal(5))) is False
    stored = store.get(order.id)
    assert stored is not None and stored.amount == order.amount


def test_orders_by_group_oldest_first_and_by_status():
    group = make_group()
    other = make_group()
    late = make_order(group, created_at=T0 + timedelta(seconds=2))
    early = make_order(group, created_at=T0 + timedelta(seconds=1), status=OrderStatus.OPEN)
    foreign = make_order(other, status=OrderStatus.FILLED)
    store = OrderStore()
    assert store.put_many_new([late, early, foreign]) is True
    assert [o.id for o in store.list_for_group(group.id)] == [early.id, late.id]
    by_status = store.list_by_status([OrderStatus.OPEN, OrderStatus.FILLED])
    assert {o.id for o in by_status} == {early.id, foreign.id}


def test_put_many_new_is_all_or_nothing():
    store = OrderStore()
    existing = make_order()
    store.put_new(existing)
    fresh = make_order()
    assert store.put_many_new([fresh, existing]) is False
    assert store.get(fresh.id) is None


def test_group_round_trip_with_pyramids_figures_and_config_versions():
    group = make_group(
        pyramids=[make_pyramid(), make_pyramid(index=1, entry_price=TINY, candle=1_767_003_600)],
        figures=GroupFigures(
            quantity=Decimal("0.004"),
            avg_entry=Decimal("99.875"),
            invested_usd=Decimal("399.5"),
            realized_pnl_usd=Decimal("-1.25"),
            unrealized_pnl_usd=Decimal("0.33"),
            unrealized_pnl_percent=Decimal("-1.5"),
            fees_usd=Decimal("0.4"),
            filled_legs=2,
            total_legs=10,
            last_price=Decimal("100.1"),
            realized_by_day={"2026-01-02": Decimal("-1.25")},
        ),
        risk_timer_started_at=T0,
        risk_blocked=True,
        close_reason=CloseReason.OPERATOR,
        close_note="operator close",
        closed_at=T0 + timedelta(hours=1),
    )
    assert PoolStore().open_group(group, [], max_open=5).value == "opened"
    assert GroupStore().get(group.id) == dataclasses.replace(group, version=1)


def test_group_lists_by_status_and_open():
    pool, groups = PoolStore(), GroupStore()
    live = make_group(symbol="A/USDT")
    active = make_group(symbol="B/USDT", status=GroupStatus.ACTIVE)
    pool.open_group(live, [], max_open=5)
    pool.open_group(active, [], max_open=5)
    active.status = GroupStatus.CLOSED
    groups.save(active, now=T0)
    assert [g.id for g in groups.list_open()] == [live.id]
    assert [g.id for g in groups.list_by_status([GroupStatus.CLOSED])] == [active.id]
    assert groups.get_open_by_key(live.key) == live
    assert groups.get_open_by_key(active.key) is None  # closed, slot not yet released
    assert groups.get("missing") is None


def test_a_group_that_moves_on_while_the_open_groups_are_listed_is_listed_once(monkeypatch):
    # Given a live group, and a fill that moves it to partially_filled right after the "live" query
    pool, groups = PoolStore(), GroupStore()
    group = make_group(symbol="A/USDT")
    pool.open_group(group, [], max_open=5)
    index = type(bind(GroupModel).by_status)
    real_query = index.query
    queried: list[str] = []

    def query_then_fill(self, status, *args, **kwargs):
        items = list(real_query(self, status, *args, **kwargs))
        queried.append(str(status))
        if str(status) == GroupStatus.LIVE:
            moved = groups.get(group.id)
            moved.status = GroupStatus.PARTIALLY_FILLED
            groups.save(moved, now=T0)
        return iter(items)

    monkeypatch.setattr(index, "query", query_then_fill)

    # When the open groups are listed
    listed = groups.list_open()

    # Then the statuses were read in lifecycle order and the group appears once, at its newer version
    assert queried == ["live", "partially_filled", "active", "closing"]
    assert [(g.id, g.status) for g in listed] == [(group.id, GroupStatus.PARTIALLY_FILLED)]


def test_add_pyramid_appends_and_creates_orders():
    pool, groups, orders = PoolStore(), GroupStore(), OrderStore()
    group = make_group()
    pool.open_group(group, [], max_open=5)
    pyramid = make_pyramid(index=1, candle=1_767_003_600)
    legs = [make_order(group, pyramid=1, leg=i) for i in range(3)]
    groups.add_pyramid(group, pyramid, legs, now=T0)
    stored = groups.get(group.id)
    assert stored is not None and stored.pyramids[-1] == pyramid and stored.version == 2
    assert group.version == 2 and all(leg.version == 1 for leg in legs)
    assert len(orders.list_for_group(group.id)) == 3


def test_realized_on_sums_the_day_over_recently_updated_groups():
    pool, groups = PoolStore(), GroupStore()
    day = utcnow().date()
    first = make_group(symbol="A/USDT")
    second = make_group(symbol="B/USDT")
    for g in (first, second):
        pool.open_group(g, [], max_open=5)
    first.figures.realized_by_day = {day.isoformat(): Decimal("1.10"), "2000-01-01": Decimal(99)}
    second.figures.realized_by_day = {day.isoformat(): Decimal("-0.35")}
    groups.save(first, now=utcnow())
    groups.save(second, now=utcnow())
    assert groups.realized_on(day) == Decimal("0.75")


def test_queue_round_trip_keeps_payload_types():
    entry = make_queue_entry(payload={"action": "buy", "price": Decimal("2500.25"), "tf": 60, "x": None})
    store = QueueStore()
    assert store.enqueue(entry) is True
    loaded = store.get(entry.id)
    assert loaded == entry
    assert loaded is not None and isinstance(loaded.payload["tf"], int)
    assert store.find_by_key(entry.key) == entry
    assert store.list_all() == [entry]


def test_signal_audit_records_outcomes_newest_first_without_secrets():
    audit = SignalAudit()
    audit.record(
        signal_id="s1",
        received_at=T0,
        intent="entry",
        outcome="queued",
        key="k",
        queue_id="q1",
        summary={"symbol": "BTC/USDT", "secret": "hunter2", "price": Decimal("1.5")},
    )
    audit.record(signal_id="s2", received_at=T0 + timedelta(seconds=1), intent="exit", outcome="ignored")
    recent = audit.list_recent(10)
    assert [r.signal_id for r in recent] == ["s2", "s1"]
    assert recent[1].summary == {"symbol": "BTC/USDT", "price": Decimal("1.5")}
    assert recent[1].queue_id == "q1" and recent[1].outcome == "queued"
    assert [r.signal_id for r in audit.list_recent(1)] == ["s2"]


def test_risk_actions_round_trip():
    store = RiskActionStore()
    action = RiskActionRecord(
        id="r1",
        at=T0,
        action="close_loser",
        reason="loss -2%",
        group_id="g1",
        related_group_ids=("g2", "g3"),
        amount_usd=TINY,
        details={"offset_usd": Decimal("3.25")},
    )
    store.record(action)
    store.record(dataclasses.replace(action, id="r0", at=T0 - timedelta(minutes=1)))
    assert store.list_recent(5)[0] == action
    assert len(store.list_recent(5)) == 2


def test_equity_points_in_time_order_and_since():
    store = EquityStore()
    for minutes, realized in ((2, "3"), (0, "1"), (1, "2")):
        store.append(T0 + timedelta(minutes=minutes), Decimal(realized), TINY)
    points = store.list()
    assert [p.realized_usd for p in points] == [Decimal(1), Decimal(2), Decimal(3)]
    assert points[0].equity_usd == TINY
    assert [p.realized_usd for p in store.list(since=T0 + timedelta(minutes=1))] == [Decimal(2), Decimal(3)]


def test_markets_and_prices_round_trip():
    markets, prices = MarketStore(), PriceStore()
    btc = MarketPrecision("BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"))
    eth = MarketPrecision("ETH/USDT", Decimal("0.01"), TINY, Decimal("0.0001"), Decimal("10"))
    assert markets.refreshed_at("binance") is None
    markets.put_many("binance", [btc, eth], T0)
    assert markets.get("binance", "BTC/USDT") == btc
    assert markets.get("bybit", "BTC/USDT") is None
    assert markets.list("binance") == [btc, eth]
    assert markets.refreshed_at("binance") == T0
    prices.set("binance", "BTC/USDT", Decimal("27123.45"), at=T0)
    prices.set("binance", "ETH/USDT", TINY, T0)
    assert prices.get("binance", "BTC/USDT") == Decimal("27123.45")
    assert prices.get("binance", "XRP/USDT") is None
    assert prices.all("binance") == {"BTC/USDT": Decimal("27123.45"), "ETH/USDT": TINY}


def test_paper_orders_and_balances_round_trip():
    store = PaperOrderStore()
    resting = ExchangeOrder(
        id="p1",
        client_order_id="c1",
        exchange="binance",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=TINY,
        price=Decimal("99.5"),
        status="open",
        timestamp=T0,
    )
    done = dataclasses.replace(
        resting,
        id="p2",
        client_order_id="c2",
        symbol="ETH/USDT",
        status="closed",
        filled=TINY,
        average=Decimal("99.5"),
        cost=Decimal("1.2"),
        fee_cost=Decimal("0.001"),
        fee_currency="USDT",
        last_trade_at=T0,
    )
    assert store.put(resting, replaces=None) and store.put(done, replaces=None)
    assert store.get_balances("binance") is None
    store.put_balances("binance", {"USDT": Decimal("10000.00"), "BTC": TINY})
    assert store.get("binance", "c1") == resting
    assert store.get("binance", "c2") == done
    assert store.get("binance", "#balance") is None
    assert store.list_all("binance") == [resting, done]
    assert store.list_open("binance") == [resting]
    assert store.list_open("binance", "ETH/USDT") == []
    assert store.get_balances("binance") == {"USDT": Decimal("10000.00"), "BTC": TINY}
    # put overwrites the version it replaces
    assert store.put(dataclasses.replace(resting, status="canceled"), replaces=resting)
    assert store.list_open("binance") == []


def test_state_documents_round_trip():
    store = StateStore()
    assert store.get("risk") is None
    store.put("risk", {"last": "g1", "amount": TINY, "n": 3, "f": 0.1, "at": T0, "nested": {"a": [1, "b"]}})
    assert store.get("risk") == {
        "last": "g1",
        "amount": TINY,
        "n": 3,
        "f": Decimal("0.1"),
        "at": "2026-01-02T03:04:05.123456Z",
        "nested": {"a": [1, "b"]},
    }


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        PriceStore().set("binance", "BTC/USDT", Decimal(1), at=datetime(2026, 1, 1))


def test_times_come_back_as_utc():
    from zoneinfo import ZoneInfo

    at = datetime(2026, 1, 2, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    PriceStore().set("binance", "BTC/USDT", Decimal(1), at=at)
    EquityStore().append(at, Decimal(0), Decimal(0))
    point = EquityStore().list()[0]
    assert point.at == at and point.at.tzinfo == UTC


def _paper_order(client_order_id: str, symbol: str, status: str = "open") -> ExchangeOrder:
    return ExchangeOrder(
        id=f"p-{client_order_id}",
        client_order_id=client_order_id,
        exchange="bybit",
        symbol=symbol,
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=Decimal("1"),
        price=Decimal("10"),
        status=status,
        timestamp=T0,
    )


def test_a_symbol_of_the_paper_open_book_is_read_alone():
    # Given open orders on three symbols and a closed one
    store = PaperOrderStore()
    symbols = ["BTC/USDT", "ETH/USDT", "BTC/USDT", "SOL/USDT"]
    orders = [_paper_order(f"c{n}", symbol) for n, symbol in enumerate(symbols)]
    for order in orders:
        store.put(order, replaces=None)
    store.put(_paper_order("gone", "BTC/USDT", status="closed"), replaces=None)
    read: list[int] = []
    original = PaperOrderModel.query

    def counted(*args: Any, **kwargs: Any) -> Any:
        items = list(original(*args, **kwargs))
        read.append(len(items))
        return iter(items)

    # And the whole open book listed once (the balance check's read; an account's first also builds it)
    assert sorted(o.client_order_id for o in store.list_open("bybit")) == ["c0", "c1", "c2", "c3"]

    # When one symbol's open orders are listed, then only its part of the book is read
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PaperOrderModel, "query", counted)
        btc = store.list_open("bybit", "BTC/USDT")
    assert btc == [orders[0], orders[2]] and read == [2]


def test_a_paper_book_in_the_earlier_layout_is_rebuilt_once():
    # Given an account written when the open copies were keyed by the bare client order id
    from engine.store.paper import _to_model

    old = [
        _paper_order("a1", "BTC/USDT"),
        _paper_order("a2", "ETH/USDT"),
        _paper_order("a3", "ETH/USDT", "closed"),
    ]
    for order in old:
        _to_model(order).save()
    for order in old[:2]:
        copy = _to_model(order)
        copy.exchange = "bybit#open"
        copy.save()
    PaperOrderModel(exchange="bybit", client_order_id="#open-index").save()

    # When a store lists the open orders
    store = PaperOrderStore()
    listed = store.list_open("bybit")

    # Then each open order is listed once with its own id, by symbol too, and the closed one not at all
    assert sorted(o.client_order_id for o in listed) == ["a1", "a2"]
    assert [o.client_order_id for o in store.list_open("bybit", "ETH/USDT")] == ["a2"]
    assert "#open-index" not in {o.client_order_id for o in store.list_all("bybit")}


def test_the_paper_reservation_ledger_moves_with_the_order_write_and_never_for_a_stale_one():
    # Given an account without a ledger yet
    store = PaperOrderStore()
    assert store.get_reserved("bybit") is None
    store.put_reserved("bybit", {"USDT:buy": Decimal("10")})
    assert store.get_reserved("bybit") == {"USDT:buy": Decimal("10")}

    # When an order is placed with its reservation, then the ledger moves in the same write
    order = _paper_order("l1", "BTC/USDT")
    assert store.put(order, replaces=None, reserved={"USDT:buy": Decimal("10.125")})
    assert store.get_reserved("bybit") == {"USDT:buy": Decimal("20.125")}

    # When the same client id is placed again, then nothing is written
    assert not store.put(order, replaces=None, reserved={"USDT:buy": Decimal("10.125")})

    # When one caller fills it and another, holding the version it read before, cancels it
    filled = dataclasses.replace(order, status="closed", filled=Decimal("1"))
    assert store.put(filled, replaces=order, reserved={"USDT:buy": Decimal("-10.125")})
    stale_cancel = dataclasses.replace(order, status="canceled")
    assert not store.put(stale_cancel, replaces=order, reserved={"USDT:buy": Decimal("-10.125")})

    # Then the fill stands, the ledger moved once, and the ledger items are no orders
    assert store.get("bybit", "l1") == filled
    assert store.get_reserved("bybit") == {"USDT:buy": Decimal("10.000")}
    assert [o.client_order_id for o in store.list_all("bybit")] == ["l1"]
