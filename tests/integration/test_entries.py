"""Given live config and stored state, when an entry is planned (engine.app.intake.entries), then the group,
its pyramid and its legs follow DESIGN §3.3/§3.7, and refusals say why (moto)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, engine_context
from engine.app.intake import EntryRefused, EntryRequest, evaluate_new_group, plan_pyramid
from engine.app.shared.markets import market_precision
from engine.config import load_config
from engine.domain.models import (
    GroupStatus,
    MarketPrecision,
    OrderSide,
    OrderType,
    QueueEntry,
    Side,
)
from engine.store import OpenResult
from tests.support.scenario import engine_env, entry_request, open_group, set_document

D = Decimal
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def st(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Stores:
    return engine_env(monkeypatch).stores


def _request(**fields: Any) -> EntryRequest:
    base = entry_request(price="50000")
    values = {**base.__dict__, **fields}
    return EntryRequest(**values)


def _legs(decision_orders: list[Any]) -> list[tuple[Decimal | None, Decimal]]:
    return [(o.price, o.amount) for o in sorted(decision_orders, key=lambda o: o.leg)]


def test_accepted_entry_is_planned_not_written(st: Stores) -> None:
    decision = evaluate_new_group(
        engine_context(), _request(group_id="g1", signal_id="s1"), load_config(), NOW
    )
    assert decision.action == "accept" and decision.plan is not None
    group, orders = decision.plan.group, decision.plan.orders
    assert (group.id, group.status, group.pyramid_count) == ("g1", GroupStatus.LIVE, 1)
    assert group.figures.total_legs == 5
    assert group.pyramids[0].signal_id == "s1" and group.pyramids[0].candle == 1
    assert group.config_versions["dca/default"] == 1
    assert [o.id for o in orders] == [f"g1-p1-l{n}" for n in range(1, 6)]
    # Nothing was stored: the caller's pool transaction writes the plan
    assert st.groups.get("g1") is None and st.pool.count() == 0


def test_signal_capital_beats_the_configured_capital(st: Stores) -> None:
    decision = evaluate_new_group(engine_context(), _request(signal_capital=D("500")), load_config(), NOW)
    assert decision.plan is not None
    assert decision.plan.group.pyramids[0].capital_usd == D("500")
    assert _legs(decision.plan.orders)[0] == (D("50000.00"), D("0.00200"))


def test_capital_shrinks_to_the_exposure_headroom(st: Stores) -> None:
    # Given an open group that committed its pyramid's capital (the account counter), and a cap of 300 USD
    group, _ = open_group(st, price="100", symbol="ETH/USDT")
    set_document("engine", max_total_exposure_usd=300)
    committed = st.counters.get("acct#binance").exposure_usd
    assert committed == group.pyramids[0].capital_usd == D("200")
    # When a 200 USD entry is planned, then its capital shrinks to what is left under the cap
    decision = evaluate_new_group(engine_context(), _request(), load_config(), NOW)
    assert decision.action == "accept" and decision.plan is not None
    assert decision.plan.group.pyramids[0].capital_usd == D("300") - committed
    assert "shrunk" in decision.reason


def test_a_leg_under_the_minimums_rejects_the_entry_naming_the_leg(st: Stores) -> None:
    decision = evaluate_new_group(engine_context(), _request(signal_capital=D("10")), load_config(), NOW)
    assert decision.action == "reject" and decision.plan is None
    assert decision.reason.startswith("leg 1 (gap 0%)")
    assert "minimum notional" in decision.reason


@pytest.mark.parametrize(
    ("slot_available", "pool_max", "counter", "action"),
    [
        (None, 1, 0, "accept"),
        (None, 1, 1, "queue"),
        (False, 10, 0, "queue"),
        (True, 1, 1, "accept"),
    ],
)
def test_slot_availability(
    st: Stores, slot_available: bool | None, pool_max: int, counter: int, action: str
) -> None:
    set_document("pool", max_open_groups=pool_max)
    if counter:
        open_group(st, symbol="ETH/USDT", price="2000")
    decision = evaluate_new_group(
        engine_context(), _request(), load_config(), NOW, slot_available=slot_available
    )
    assert decision.action == action
    if action == "queue":
        assert decision.reason.startswith("pool full")


def test_market_entries_send_the_first_leg_and_trigger_the_others(st: Stores) -> None:
    set_document("dca/default", entry_order_type="market")
    decision = evaluate_new_group(engine_context(), _request(), load_config(), NOW)
    assert decision.plan is not None
    orders = sorted(decision.plan.orders, key=lambda o: o.leg or 0)
    assert all(o.type == OrderType.MARKET for o in orders)
    assert orders[0].trigger_price is None
    assert [o.trigger_price for o in orders[1:]] == [o.price for o in orders[1:]]
    assert orders[1].trigger_price == D("49750.00")


def test_a_short_on_a_swap_account_sells_above_the_entry(st: Stores) -> None:
    set_document("engine", accounts={"bybit": {"mode": "paper", "market_type": "swap"}})
    decision = evaluate_new_group(
        engine_context(), _request(exchange="bybit", side=Side.SHORT), load_config(), NOW
    )
    assert decision.plan is not None
    orders = sorted(decision.plan.orders, key=lambda o: o.leg or 0)
    assert all(o.side == OrderSide.SELL for o in orders)
    expected = ("50000.00", "50250.00", "50500.00", "51000.00", "52000.00")
    assert [o.price for o in orders] == [D(price) for price in expected]


def test_plan_pyramid_uses_the_pyramid_override(st: Stores) -> None:
    group, _ = open_group(st, price="50000")
    set_document(
        "dca/default",
        pyramids=[
            {},
            {
                "capital_usd": 400,
                "levels": [
                    {"gap_percent": 0, "weight_percent": 50, "tp_percent": 1},
                    {"gap_percent": -2, "weight_percent": 50, "tp_percent": 1},
                ],
            },
        ],
    )
    pyramid, orders = plan_pyramid(
        engine_context(), group, _request(entry_price=D("48000"), candle=2), load_config(), NOW
    )
    assert (pyramid.index, pyramid.entry_price, pyramid.capital_usd) == (2, D("48000"), D("400"))
    assert pyramid.leg_count == 2
    assert [o.id for o in orders] == [f"{group.id}-p2-l1", f"{group.id}-p2-l2"]
    assert _legs(orders) == [(D("48000.00"), D("0.00416")), (D("47040.00"), D("0.00425"))]


@pytest.mark.parametrize(
    ("document", "fields", "reason"),
    [
        ("engine", {"paused": True}, "engine paused"),
        ("dca/default", {"max_pyramids": 1}, "pyramid cap reached: 1 of max_pyramids 1"),
    ],
)
def test_plan_pyramid_refusals(st: Stores, document: str, fields: dict[str, Any], reason: str) -> None:
    group, _ = open_group(st, price="50000")
    set_document(document, **fields)
    with pytest.raises(EntryRefused) as refused:
        plan_pyramid(engine_context(), group, _request(candle=2), load_config(), NOW)
    assert refused.value.reason == reason


def test_a_queued_entry_becomes_a_request_with_its_capital(st: Stores) -> None:
    original = _request(signal_capital=D("150"), signal_id="sig-9", payload={"signal": {"a": "1"}})
    entry = QueueEntry(
        id="q1",
        exchange=original.exchange,
        symbol=original.symbol,
        timeframe=original.timeframe,
        side=original.side,
        entry_price=original.entry_price,
        candle=original.candle,
        payload=original.queue_payload(),
    )
    assert st.queue.enqueue(entry)
    stored = st.queue.get("q1")
    assert stored is not None
    request = EntryRequest.from_queue(stored)
    assert (request.signal_capital, request.signal_id, request.group_id) == (D("150"), "sig-9", "q1")
    assert (request.key, request.entry_price, request.candle) == (original.key, original.entry_price, 1)
    # And a promotion from it opens a group whose id is the queue entry's
    decision = evaluate_new_group(engine_context(), request, load_config(), NOW)
    assert decision.plan is not None and decision.plan.group.id == "q1"
    opened = st.pool.open_group(decision.plan.group, decision.plan.orders, max_open=10, queue_entry_id="q1")
    assert opened == OpenResult.OPENED
    assert st.queue.get("q1") is None


def test_market_precision_sources(st: Stores) -> None:
    config = load_config()
    # Paper account: the built-in paper table
    paper = market_precision(st, "binance", "BTC/USDT", config)
    assert paper is not None and paper.tick == D("0.01")
    # The markets table wins over the paper table
    stored = MarketPrecision("BTC/USDT", D("0.1"), D("0.001"), D("0.001"), D("10"))
    st.markets.put_many("binance", [stored], NOW)
    assert market_precision(st, "BINANCE", "BTC/USDT", config) == stored
    # Extra paper markets from engine.paper.markets
    set_document("engine", paper={"markets": {"FOO/USDT": {"tick": "0.1", "step": "1"}}})
    config = load_config()
    extra = market_precision(st, "bybit", "FOO/USDT", config)
    assert extra is not None and (extra.tick, extra.step) == (D("0.1"), D("1"))
    # A live account knows only the markets table
    set_document("engine", accounts={"okx": {"mode": "live"}})
    assert market_precision(st, "okx", "BTC/USDT", load_config()) is None
