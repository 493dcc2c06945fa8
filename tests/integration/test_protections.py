"""Protections (DESIGN §3.9) through the real flow: the fast sync pass evaluates them, a trigger closes the
group like an exit (paper exchange, orders stream -> executor + position_update, groups stream ->
slot_release), and the interaction rules with the risk engine, pyramids and the daily breaker.

Markets: the step-1 paper markets of ``tests.support.trading`` (AAA..EEE/USDT, fee 0.1 %).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import engine_context
from engine.app.intake.entries import pyramid_breaker
from engine.app.positions import refresh_group
from engine.app.risk.candidates import fresh_snapshot
from engine.app.risk.orders import place_winner_close
from engine.app.shared.closing import new_close_order
from engine.app.sync import run_sync
from engine.domain.models import (
    CloseReason,
    Group,
    GroupStatus,
    Order,
    OrderPurpose,
    OrderStatus,
    utcnow,
)
from engine.domain.risk import WinnerClose
from tests.support.trading import TradingWorld, configure

D = Decimal


@pytest.fixture
def world(dynamodb: Any) -> TradingWorld:
    return TradingWorld()


def protect(**protection: Any) -> dict[str, int]:
    return configure(extra={"dca/default": {"protection": protection}})


def sync(world: TradingWorld, now: Any, price: str | None = None, symbol: str = "AAA/USDT") -> None:
    """Set the paper price, run one forced order_sync (fast pass) at ``now``, deliver the streams."""
    if price is not None:
        world.set_price(symbol, price)
    run_sync(engine_context(), now, force=True)
    world.drain()


def closes(world: TradingWorld, group_id: str) -> list[Order]:
    return [o for o in world.orders(group_id) if o.id.startswith(f"{group_id}-close-")]


def of(world: TradingWorld, group_id: str, purpose: OrderPurpose) -> list[Order]:
    return [o for o in world.orders(group_id) if o.purpose == purpose]


def protection_events(world: TradingWorld, group_id: str) -> list[Any]:
    return [
        a
        for a in world.stores.risk_actions.list_recent(50)
        if a.action == "protection" and a.group_id == group_id
    ]


def sold(world: TradingWorld, group_id: str) -> Decimal:
    return sum(
        (
            o.filled
            for o in world.orders(group_id)
            if o.purpose in (OrderPurpose.EXIT, OrderPurpose.RISK_CLOSE)
        ),
        D(0),
    )


def test_a_stop_loss_closes_the_group_like_an_exit_and_frees_its_slot(world: TradingWorld) -> None:
    # Given a 5 % stop on the average and a group holding 10 at 100 with a resting leg TP
    versions = protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="50")
    pool_before = world.stores.pool.count()
    # When the price is one tick above the stop: nothing happens; the stop shows on the group
    sync(world, base, "95.01")
    stored = world.group(group.id)
    assert stored.status is GroupStatus.ACTIVE
    assert (stored.protection.stop_price, stored.protection.stop_rule) == (D(95), "stop_loss")
    # When it reaches the stop
    sync(world, base, "95")
    # Then the TP was cancelled, one market sell closed the 10 held, the group is closed stop_loss
    stored = world.group(group.id)
    assert stored.status is GroupStatus.CLOSED
    assert stored.close_reason is CloseReason.STOP_LOSS and "95" in (stored.close_note or "")
    assert [o.status for o in of(world, group.id, OrderPurpose.TP)] == [OrderStatus.CANCELLED]
    (close,) = closes(world, group.id)
    assert (close.purpose, close.filled, close.status) == (OrderPurpose.EXIT, D(10), OrderStatus.FILLED)
    assert stored.figures.realized_pnl_usd < 0
    # And the slot is free, the protection event recorded with the document's version
    assert world.stores.pool.count() == pool_before - 1
    (event,) = protection_events(world, group.id)
    assert event.details["rule"] == "stop_loss" and event.details["config_version"] == versions["dca/default"]


def test_a_replayed_sync_batch_never_sends_two_closes(world: TradingWorld) -> None:
    protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    world.set_price("AAA/USDT", "94")
    # When the same pass runs twice, and position_update refreshes the group on top, before anything is sent
    ctx = engine_context()
    run_sync(ctx, base, force=True)
    run_sync(ctx, base, force=True)
    refresh_group(ctx, group.id, base)
    # Then one close order exists
    assert len(closes(world, group.id)) == 1
    # When every stream record is delivered twice
    world.drain(replay=2)
    run_sync(ctx, base, force=True)
    world.drain(replay=2)
    stored = world.group(group.id)
    assert stored.status is GroupStatus.CLOSED and stored.close_reason is CloseReason.STOP_LOSS
    assert len(closes(world, group.id)) == 1 and sold(world, group.id) == D(10)
    assert len(protection_events(world, group.id)) == 1


def test_a_stale_pass_loses_the_version_check_and_does_not_close_again(world: TradingWorld) -> None:
    protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    world.set_price("AAA/USDT", "94")
    stale = world.group(group.id)
    # One pass closes; a second one working from the version it read before is refused and re-reads
    refresh_group(engine_context(), group.id, base)
    from engine.store import StaleWrite

    with pytest.raises(StaleWrite):
        world.stores.groups.save(stale, now=base)
    refresh_group(engine_context(), group.id, base)
    assert len(closes(world, group.id)) == 1


def test_the_time_limit_closes_under_a_simulated_clock(world: TradingWorld) -> None:
    protect(time_limit_minutes=60)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="50")
    # A minute before: open, the expiry shown
    sync(world, base + timedelta(minutes=59), "101")
    stored = world.group(group.id)
    assert stored.status is GroupStatus.ACTIVE
    assert stored.protection.expires_at == stored.created_at + timedelta(minutes=60)
    # At created_at + 60 minutes: closed at market
    sync(world, base + timedelta(minutes=60), "101")
    stored = world.group(group.id)
    assert (stored.status, stored.close_reason) == (GroupStatus.CLOSED, CloseReason.TIME_LIMIT)
    assert sold(world, group.id) == D(10)


def test_a_trailing_take_profit_replaces_the_fixed_tps_and_closes_after_the_pullback(
    world: TradingWorld,
) -> None:
    protect(trailing_take_profit={"activation_percent": 2, "deviation_percent": 0.5})
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="1")
    # No leg TP is placed while it is set, even above the leg's 1 %
    sync(world, base, "101.99")
    assert of(world, group.id, OrderPurpose.TP) == []
    assert world.group(group.id).protection.trailing_armed is False
    # Rising past the activation arms it; it follows the high, saved only when it moves by a tick
    sync(world, base, "102")
    armed = world.group(group.id)
    assert armed.protection.trailing_armed and armed.protection.high == D(102)
    sync(world, base, "102")
    sync(world, base, "101.6")
    assert world.group(group.id).version == armed.version
    sync(world, base, "104")
    assert world.group(group.id).protection.high == D(104)
    # A restart reads the trail back from the group: a fresh context continues it
    from engine.app.context import live_context

    fresh = live_context()
    assert fresh.stores.groups.get(group.id).protection.high == D(104)  # type: ignore[union-attr]
    sync(world, base, "103.49")
    assert world.group(group.id).status is GroupStatus.ACTIVE
    # Falling by the deviation from the high closes it above the average
    sync(world, base, "103.48")
    stored = world.group(group.id)
    assert (stored.status, stored.close_reason) == (GroupStatus.CLOSED, CloseReason.TRAILING_TAKE_PROFIT)
    assert stored.figures.realized_pnl_usd > 0


def test_a_protection_close_while_a_risk_close_is_in_flight_sells_nothing_twice(world: TradingWorld) -> None:
    protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    # Given a risk partial close of 4 written for it and not yet sent
    risk_close = new_close_order(
        world.group(group.id),
        order_id=f"{group.id}-risk-x",
        purpose=OrderPurpose.RISK_CLOSE,
        quantity=D(4),
        now=base,
    )
    assert world.stores.orders.put_new_unless_closing(risk_close) is True
    # When the stop triggers in the same pass
    world.set_price("AAA/USDT", "94")
    run_sync(engine_context(), base, force=True)
    # Then the group is closing but waits for the risk close (no second sale of the same coins)
    assert world.group(group.id).status is GroupStatus.CLOSING
    assert closes(world, group.id) == []
    world.drain()
    # And once it filled, the close sells only the remaining 6
    stored = world.group(group.id)
    assert (stored.status, stored.close_reason) == (GroupStatus.CLOSED, CloseReason.STOP_LOSS)
    (close,) = closes(world, group.id)
    assert close.filled == D(6) and sold(world, group.id) == D(10)


def _winner_close(group: Group, qty: str) -> WinnerClose:
    return WinnerClose(
        group_id=group.id,
        side=group.side,
        qty=D(qty),
        price=D(110),
        avg_entry=group.figures.avg_entry,
        realized_usd=D(0),
        fee_usd=D(0),
    )


def test_a_risk_winner_close_is_refused_once_a_protection_closes_the_group(world: TradingWorld) -> None:
    protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    config = engine_context().config.snapshot()
    snapshot = fresh_snapshot(world.stores, group.id, config)  # the risk run's view, taken first
    assert snapshot is not None and snapshot.candidate is not None
    # When the protection wins the race
    world.set_price("AAA/USDT", "94")
    run_sync(engine_context(), base, force=True)
    # Then the risk engine's partial close is not written
    done = place_winner_close(
        world.stores, snapshot, snapshot.candidate.precision, _winner_close(group, "4"), "ra1", base
    )
    assert done["placed"] is False and done["refused"] == "the group is closing"
    assert of(world, group.id, OrderPurpose.RISK_CLOSE) == []
    world.drain()
    assert sold(world, group.id) == D(10)


def test_a_protected_risk_winner_keeps_its_stop_and_its_tps_are_resized(world: TradingWorld) -> None:
    protect(stop_loss_percent=5)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="50")
    sync(world, base, "110")
    assert world.group(group.id).protection.stop_price == D(95)
    config = engine_context().config.snapshot()
    snapshot = fresh_snapshot(world.stores, group.id, config)
    assert snapshot is not None and snapshot.candidate is not None
    # When the risk engine closes 4 of the winner
    place_winner_close(
        world.stores, snapshot, snapshot.candidate.precision, _winner_close(group, "4"), "ra2", base
    )
    world.drain()
    sync(world, base, "110")
    # Then its TP offers the 6 left and its stop is unchanged
    live_tps = [o for o in of(world, group.id, OrderPurpose.TP) if o.is_live]
    assert sum((o.remaining for o in live_tps), D(0)) == D(6)
    stored = world.group(group.id)
    assert stored.protection.stop_price == D(95) and stored.protection.stop_armed
    # And the stop still closes the rest
    sync(world, base, "95")
    stored = world.group(group.id)
    assert (stored.status, stored.close_reason) == (GroupStatus.CLOSED, CloseReason.STOP_LOSS)
    assert sold(world, group.id) == D(10)


def test_an_average_stop_follows_the_lots_of_a_later_pyramid(world: TradingWorld) -> None:
    protect(stop_loss_percent=15)
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    sync(world, base, "99")
    assert world.group(group.id).protection.stop_price == D(85)
    # When a second pyramid fills 10 at 90: the average is 95, the stop 80.75
    world.add_pyramid(group.id, [("90", "10")], now=base)
    sync(world, base, "80.76")
    stored = world.group(group.id)
    assert stored.status is GroupStatus.ACTIVE and stored.protection.stop_price == D("80.75")
    sync(world, base, "80.75")
    stored = world.group(group.id)
    assert (stored.status, stored.close_reason) == (GroupStatus.CLOSED, CloseReason.STOP_LOSS)
    assert sold(world, group.id) == D(20)


def test_the_daily_breaker_counts_a_protection_loss(world: TradingWorld) -> None:
    configure(
        engine={"max_daily_loss_usd": 40}, extra={"dca/default": {"protection": {"stop_loss_percent": 5}}}
    )
    base = utcnow().replace(microsecond=0)
    ctx = engine_context()
    config = ctx.config.snapshot()
    assert pyramid_breaker(world.stores, config, base, "binance") is None
    group = world.open_group("AAA/USDT", [("100", "10")], now=base)
    # When the stop closes 10 at 95: -50 and fees
    sync(world, base, "95")
    assert world.group(group.id).close_reason is CloseReason.STOP_LOSS
    # Then the account's realised loss of the day holds the breaker
    reason = pyramid_breaker(world.stores, ctx.config.snapshot(), base, "binance")
    assert reason is not None and "daily" in reason.lower()


def test_a_document_without_protection_changes_nothing_on_price_ticks(world: TradingWorld) -> None:
    configure()
    base = utcnow().replace(microsecond=0)
    group = world.open_group("AAA/USDT", [("100", "10")], now=base, tp_percent="50")
    version = world.group(group.id).version
    for price in ("90", "120", "60"):
        sync(world, base, price)
    stored = world.group(group.id)
    assert stored.version == version and stored.status is GroupStatus.ACTIVE


def test_the_alerts_stop_is_recorded_on_the_group_and_a_pyramid_alert_replaces_it(
    client: Any, st: Any
) -> None:
    from tests.support.webhook import alert, minute_times

    first_at, second_at, third_at = minute_times(3)
    body = alert(timeframe="1", entry_price="50000", timestamp=first_at)
    body["risk"] = {"stop_loss": "45000", "take_profit": "60000", "max_slippage_percent": "1"}
    status, opened = client.post(body)
    assert (status, opened["outcome"]) == (202, "opened"), opened
    group = st.groups.get(opened["group_id"])
    assert (group.protection.alert_stop, group.protection.alert_take_profit) == (D(45000), D(60000))
    assert group.protection.alert_pyramid == 1 and group.protection.alert_config_version is not None
    assert group.pyramids[0].max_slippage_percent == D(1)
    # A pyramid alert without a stop keeps it; one with a stop replaces it (its take-profit stays)
    _, second = client.post(alert(timeframe="1", entry_price="49000", timestamp=second_at))
    assert second["outcome"] == "pyramided", second
    assert st.groups.get(group.id).protection.alert_stop == D(45000)
    body = alert(timeframe="1", entry_price="48000", timestamp=third_at)
    body["risk"] = {"stop_loss": "44000"}
    _, third = client.post(body)
    assert third["outcome"] == "pyramided", third
    stored = st.groups.get(group.id)
    assert (stored.protection.alert_stop, stored.protection.alert_take_profit) == (D(44000), D(60000))
    assert stored.protection.alert_pyramid == 3


def _slipping_group(world: TradingWorld, price: str) -> Group:
    from tests.support.trading import entry_order, new_group

    base = utcnow().replace(microsecond=0)
    group = new_group("AAA/USDT", now=base)
    group.pyramids[0].max_slippage_percent = D(1)
    world.set_price("AAA/USDT", price)
    order = entry_order(group, 1, 1, amount=D(10), price=None, now=base)
    world.stores.pool.open_group(group, [order], max_open=100)
    world.drain()
    return world.group(group.id)


def test_a_market_entry_beyond_the_alerts_slippage_is_rejected_with_both_prices(world: TradingWorld) -> None:
    configure()
    group = _slipping_group(world, "101.50")
    (leg,) = of(world, group.id, OrderPurpose.ENTRY)
    assert leg.status is OrderStatus.REJECTED and leg.filled == 0
    assert (
        "101.5" in (leg.reason or "")
        and "100" in (leg.reason or "")
        and "max_slippage_percent 1" in (leg.reason or "")
    )
    assert world.group(group.id).status is GroupStatus.FAILED


def test_within_the_slippage_the_entry_fills_and_closes_are_never_blocked(world: TradingWorld) -> None:
    from engine.app.positions import request_close

    configure()
    group = _slipping_group(world, "100.90")
    (leg,) = of(world, group.id, OrderPurpose.ENTRY)
    assert leg.status is OrderStatus.FILLED
    world.set_price("AAA/USDT", "80")
    request_close(engine_context(), group.id, reason=CloseReason.EXIT, note="exit signal", now=utcnow())
    world.drain()
    assert world.group(group.id).status is GroupStatus.CLOSED and sold(world, group.id) == D(10)


def test_an_invalid_protection_edit_keeps_the_last_valid_version(world: TradingWorld) -> None:
    versions = protect(stop_loss_percent=5)
    # When an edit sets a deviation that is not below the activation
    protect(stop_loss_percent=5, trailing_take_profit={"activation_percent": 1, "deviation_percent": 1})
    # Then the engine keeps using the last valid version (and its stop)
    selection = engine_context().config.dca("binance", "AAA/USDT", 60)
    assert selection.version == versions["dca/default"] and selection.problem is None
    assert selection.config.protection.stop_loss_percent == D(5)
    assert selection.config.protection.trailing_take_profit is None


def test_a_queued_entry_keeps_its_alerts_stop_when_promoted(world: TradingWorld) -> None:
    from engine.app.intake import EntryRequest, evaluate_new_group
    from engine.domain.models import QueueEntry, Side

    configure()
    entry = QueueEntry(
        id="q-stop",
        exchange="binance",
        symbol="AAA/USDT",
        timeframe=60,
        side=Side.LONG,
        entry_price=D(100),
        candle=1,
        payload={
            "signal": {"stop_loss": "90", "take_profit": "130"},
            "signal_id": "s1",
            "signal_capital": "500",
        },
    )
    ctx = engine_context()
    decision = evaluate_new_group(ctx, EntryRequest.from_queue(entry), ctx.config.snapshot(), utcnow())
    assert decision.plan is not None, decision.reason
    protection = decision.plan.group.protection
    assert (protection.alert_stop, protection.alert_take_profit, protection.alert_pyramid) == (
        D(90),
        D(130),
        1,
    )
