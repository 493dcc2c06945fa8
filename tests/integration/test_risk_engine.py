"""The risk engine's decisions (DESIGN §3.8) on stored groups: offset or not, blocked, skip-once,
timers (start in every mode, expiry, reset on recovery and on a new pyramid), interval and guard.

Groups are stored with figures computed by the domain (``tests.support.trading.stored_group``) and no
stored price, so only the risk engine observes them here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.app.context import Stores, engine_context, stores
from engine.app.risk import guard_marker, run_risk, set_blocked, skip_once
from engine.domain.models import CloseReason, GroupStatus, OrderPurpose, OrderStatus, Pyramid
from tests.support.trading import entry_order, reprice, stored_group

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
EXPIRED = T0 + timedelta(minutes=16)
ONE_PYRAMID = {"timer_start": "after_all_dca_filled", "post_full_wait_minutes": 15}


@pytest.fixture
def the_stores(dynamodb: Any) -> Stores:
    return stores()


def _configure(**risk: Any) -> dict[str, int]:
    from tests.support.trading import configure

    return configure(risk={**ONE_PYRAMID, **risk})


def _loser(s: Stores) -> str:
    """AAA: 10 held at 100, price 88: -120 USD, -12 %."""
    return stored_group(s, "AAA/USDT", [[("100", "10")]], price="88", now=T0).id


def _winner(s: Stores, symbol: str = "BBB/USDT", qty: str = "20", price: str = "110") -> str:
    """``qty`` held at 100, priced at ``price``."""
    return stored_group(s, symbol, [[("100", qty)]], price=price, now=T0).id


def _risk_closes(s: Stores, group_id: str) -> list[Any]:
    return [o for o in s.orders.list_for_group(group_id) if o.purpose == OrderPurpose.RISK_CLOSE]


def _status(s: Stores, group_id: str) -> GroupStatus:
    group = s.groups.get(group_id)
    assert group is not None
    return group.status


def test_expired_loser_is_closed_and_winner_partially_closed(the_stores: Stores) -> None:
    # Given a loser -120 and a winner +200 (20 at 100, price 110)
    _configure()
    loser, winner = _loser(the_stores), _winner(the_stores)
    # When the risk engine starts the timer, then runs once it expired
    first = run_risk(engine_context(), T0, force=True)
    assert first.timers_started == [loser] and first.action is None
    summary = run_risk(engine_context(), EXPIRED, force=True)
    # Then the loser is closing (a risk close) and the winner has one market close of 13:
    # (120 loss + 0.88 loser fee) / (10 profit - 0.11 fee per unit) = 12.2, rounded up to the step
    # (rounding down would leave the offset short of the loss and fees)
    assert summary.action is not None
    assert _status(the_stores, loser) == GroupStatus.CLOSING
    loser_group = the_stores.groups.get(loser)
    assert loser_group is not None and loser_group.close_reason is CloseReason.RISK
    assert loser_group.close_note == "risk engine: worst loser"
    closes = _risk_closes(the_stores, winner)
    assert [(c.amount, c.status) for c in closes] == [(Decimal(13), OrderStatus.PENDING)]
    assert _status(the_stores, winner) == GroupStatus.ACTIVE


def test_no_offset_when_winners_cannot_cover_loss_and_fees(the_stores: Stores) -> None:
    # Given a loser -120 and a single winner +50 (10 at 100, price 105)
    _configure()
    loser, winner = _loser(the_stores), _winner(the_stores, qty="10", price="105")
    run_risk(engine_context(), T0, force=True)
    # When the risk engine runs with the loser's timer expired
    summary = run_risk(engine_context(), EXPIRED, force=True)
    # Then nothing is closed and nothing recorded; the plan says why
    assert summary.action is None
    assert summary.plan is not None and not summary.plan.actionable
    assert "does not cover" in summary.reason
    assert _status(the_stores, loser) == GroupStatus.ACTIVE
    assert _risk_closes(the_stores, winner) == []
    assert the_stores.risk_actions.list_recent() == []


@pytest.mark.parametrize("blocked", ["loser", "winner"])
def test_blocked_groups_are_neither_loser_nor_winner(the_stores: Stores, blocked: str) -> None:
    # Given a loser and a sufficient winner, one of them blocked by the operator
    _configure()
    ids = {"loser": _loser(the_stores), "winner": _winner(the_stores)}
    set_blocked(engine_context(), ids[blocked], True, T0)
    run_risk(engine_context(), T0, force=True)
    # When the risk engine runs with the timer expired
    summary = run_risk(engine_context(), EXPIRED, force=True)
    # Then nothing is closed
    assert summary.action is None
    assert _status(the_stores, ids["loser"]) == GroupStatus.ACTIVE
    assert _risk_closes(the_stores, ids["winner"]) == []
    if blocked == "loser":
        assert summary.plan is None
    else:
        assert summary.plan is not None and summary.plan.winners == []


def test_skip_once_spares_the_loser_for_one_run_then_it_is_closed(the_stores: Stores) -> None:
    # Given an expired loser marked skip-once and a sufficient winner
    _configure()
    loser, winner = _loser(the_stores), _winner(the_stores)
    run_risk(engine_context(), T0, force=True)
    skip_once(engine_context(), loser, T0)
    # When the risk engine runs, then the loser is spared and its skip flag cleared
    spared = run_risk(engine_context(), EXPIRED, force=True)
    assert spared.action is None and spared.skip_once_cleared == [loser]
    group = the_stores.groups.get(loser)
    assert group is not None and not group.risk_skip_once and group.status == GroupStatus.ACTIVE
    # When it runs again, then the loser is closed
    acted = run_risk(engine_context(), EXPIRED + timedelta(minutes=1), force=True)
    assert acted.action is not None and acted.action.group_id == loser
    assert len(_risk_closes(the_stores, winner)) == 1


def test_skip_once_is_kept_until_the_group_would_be_picked(the_stores: Stores) -> None:
    # Given a loser marked skip-once whose timer has not expired
    _configure()
    loser = _loser(the_stores)
    skip_once(engine_context(), loser, T0)
    # When the risk engine runs, then the flag stays (it was not honoured yet)
    summary = run_risk(engine_context(), T0, force=True)
    assert summary.skip_once_cleared == []
    group = the_stores.groups.get(loser)
    assert group is not None and group.risk_skip_once


# Setups: "partial" = one pyramid with a filled leg and a resting (open) limit leg; "full" = every leg
# filled; "two_pyramids" = two pyramids, all filled.
@pytest.mark.parametrize(
    ("timer_start", "setup", "starts"),
    [
        ("after_pyramids", "partial", False),
        ("after_pyramids", "full", False),
        ("after_pyramids", "two_pyramids", True),
        ("after_all_dca_submitted", "partial", True),
        ("after_all_dca_submitted", "full", True),
        ("after_all_dca_filled", "partial", False),
        ("after_all_dca_filled", "full", True),
    ],
)
def test_timer_start_modes(the_stores: Stores, timer_start: str, setup: str, starts: bool) -> None:
    # Given a group at -12 % in the given stage, and the timer start mode (2 pyramids required)
    _configure(timer_start=timer_start, required_pyramids=2)
    if setup == "partial":
        group = stored_group(
            the_stores, "AAA/USDT", [[("100", "10")]], price="88", now=T0, resting=[("80", "5")]
        )
    elif setup == "full":
        group = stored_group(the_stores, "AAA/USDT", [[("100", "10")]], price="88", now=T0)
    else:
        group = stored_group(the_stores, "AAA/USDT", [[("100", "5")], [("100", "5")]], price="88", now=T0)
    # When the risk engine observes it
    summary = run_risk(engine_context(), T0, force=True)
    # Then the timer starts exactly when the mode's stage is reached
    stored = the_stores.groups.get(group.id)
    assert stored is not None
    assert (stored.risk_timer_started_at == T0) is starts
    assert (summary.timers_started == [group.id]) is starts


def test_timer_needs_the_loss_threshold(the_stores: Stores) -> None:
    # Given a filled group at -1 % (threshold -1.5 %)
    _configure()
    group = stored_group(the_stores, "AAA/USDT", [[("100", "10")]], price="99", now=T0)
    # When observed, then no timer; at -1.5 % it starts
    run_risk(engine_context(), T0, force=True)
    assert the_stores.groups.get(group.id).risk_timer_started_at is None  # type: ignore[union-attr]
    reprice(the_stores, group.id, "98.5")
    run_risk(engine_context(), T0 + timedelta(minutes=1), force=True)
    started = the_stores.groups.get(group.id)
    assert started is not None and started.risk_timer_started_at == T0 + timedelta(minutes=1)


def test_timer_expires_after_the_post_full_wait(the_stores: Stores) -> None:
    # Given a loser whose timer started at T0 and a sufficient winner
    _configure()
    loser = _loser(the_stores)
    _winner(the_stores)
    run_risk(engine_context(), T0, force=True)
    # When the risk engine runs just before the wait is over, then the loser is not eligible
    early = run_risk(engine_context(), T0 + timedelta(minutes=15) - timedelta(seconds=1), force=True)
    assert early.plan is None and early.action is None
    # When it runs when the wait is over, then it acts
    due = run_risk(engine_context(), T0 + timedelta(minutes=15), force=True)
    assert due.action is not None and due.action.group_id == loser


def test_timer_resets_when_the_group_recovers(the_stores: Stores) -> None:
    # Given a running timer
    _configure()
    loser = _loser(the_stores)
    run_risk(engine_context(), T0, force=True)
    # When the price recovers to break-even, then the timer resets
    reprice(the_stores, loser, "100")
    summary = run_risk(engine_context(), T0 + timedelta(minutes=5), force=True)
    assert summary.timers_reset == [loser]
    assert the_stores.groups.get(loser).risk_timer_started_at is None  # type: ignore[union-attr]
    # When the loss comes back, then it restarts from then (the old start is forgotten)
    reprice(the_stores, loser, "88")
    later = T0 + timedelta(minutes=10)
    run_risk(engine_context(), later, force=True)
    assert the_stores.groups.get(loser).risk_timer_started_at == later  # type: ignore[union-attr]
    assert run_risk(engine_context(), T0 + timedelta(minutes=16), force=True).plan is None


def test_a_loss_above_zero_keeps_a_running_timer(the_stores: Stores) -> None:
    # Given a running timer, when the loss shrinks to -1 % (above the threshold, below 0)
    _configure()
    loser = _loser(the_stores)
    run_risk(engine_context(), T0, force=True)
    reprice(the_stores, loser, "99")
    run_risk(engine_context(), T0 + timedelta(minutes=5), force=True)
    # Then the timer keeps running from T0
    assert the_stores.groups.get(loser).risk_timer_started_at == T0  # type: ignore[union-attr]


def test_timer_resets_on_a_new_pyramid(the_stores: Stores) -> None:
    # Given a running timer on a group of one filled pyramid
    _configure()
    loser = _loser(the_stores)
    run_risk(engine_context(), T0, force=True)
    # When a new pyramid arrives (filled) after the timer started
    group = the_stores.groups.get(loser)
    assert group is not None
    arrived = T0 + timedelta(minutes=3)
    pyramid = Pyramid(
        index=2, entry_price=Decimal(90), capital_usd=Decimal(450), candle=2, leg_count=1, created_at=arrived
    )
    order = entry_order(
        group, 2, 1, amount=Decimal(5), price=Decimal(90), now=arrived, status=OrderStatus.FILLED
    )
    the_stores.groups.add_pyramid(group, pyramid, [order], now=T0)
    reprice(the_stores, loser, "85")
    # Then the next run resets it, and the run after restarts it from then
    reset = run_risk(engine_context(), T0 + timedelta(minutes=4), force=True)
    assert reset.timers_reset == [loser]
    restarted_at = T0 + timedelta(minutes=5)
    restarted = run_risk(engine_context(), restarted_at, force=True)
    assert restarted.timers_started == [loser]
    assert the_stores.groups.get(loser).risk_timer_started_at == restarted_at  # type: ignore[union-attr]


def test_the_interval_is_read_live_and_claimed_once(the_stores: Stores) -> None:
    # Given an interval of 5 minutes
    _configure(interval_minutes=5)
    # When the schedule fires every minute, then only the run at T0 and T0+5 act
    ran = [run_risk(engine_context(), T0 + timedelta(minutes=m)).ran for m in range(6)]
    assert ran == [True, False, False, False, False, True]
    # When the interval is changed to 1 minute, then the next minute runs
    _configure(interval_minutes=1)
    assert run_risk(engine_context(), T0 + timedelta(minutes=6)).ran


def test_two_runs_in_the_same_minute_act_once(the_stores: Stores) -> None:
    # Given an expired loser and a winner
    _configure()
    loser, winner = _loser(the_stores), _winner(the_stores)
    run_risk(engine_context(), T0, force=True)
    # When the schedule fires twice in the same minute, and a forced run follows
    first = run_risk(engine_context(), EXPIRED)
    second = run_risk(engine_context(), EXPIRED + timedelta(seconds=30))
    forced = run_risk(engine_context(), EXPIRED + timedelta(seconds=40), force=True)
    # Then only the first acted: one action, one risk close on the winner
    assert first.action is not None
    assert not second.ran
    assert forced.action is None
    assert len(the_stores.risk_actions.list_recent()) == 1
    assert len(_risk_closes(the_stores, winner)) == 1
    assert _status(the_stores, loser) == GroupStatus.CLOSING


def test_a_group_version_already_acted_on_is_not_acted_on_again(the_stores: Stores) -> None:
    # Given an overlapping run already holding the loser's guard for its current version
    _configure()
    loser, winner = _loser(the_stores), _winner(the_stores)
    run_risk(engine_context(), T0, force=True)
    group = the_stores.groups.get(loser)
    assert group is not None
    assert the_stores.state.mark_once(guard_marker(loser, group.version), timedelta(minutes=15), now=EXPIRED)
    # When this run plans the same close
    summary = run_risk(engine_context(), EXPIRED, force=True)
    # Then it does not act
    assert summary.plan is not None and summary.plan.actionable
    assert summary.action is None and "another run" in summary.reason
    assert _status(the_stores, loser) == GroupStatus.ACTIVE
    assert _risk_closes(the_stores, winner) == []


def test_a_winner_with_a_risk_close_in_flight_is_not_used_again(the_stores: Stores) -> None:
    # Given a first action that left a pending risk close on the only winner, and a second loser
    _configure()
    _loser(the_stores)
    winner = _winner(the_stores, qty="100", price="110")
    run_risk(engine_context(), T0, force=True)
    assert run_risk(engine_context(), EXPIRED, force=True).action is not None
    second = stored_group(the_stores, "DDD/USDT", [[("100", "10")]], price="88", now=T0)
    run_risk(engine_context(), EXPIRED, force=True)
    # When the second loser expires while the winner's close has not filled yet
    summary = run_risk(engine_context(), EXPIRED + timedelta(minutes=16), force=True)
    # Then the winner is not used (its figures do not show the first close yet)
    assert summary.plan is not None and summary.plan.loser.group_id == second.id
    assert summary.plan.winners == [] and summary.action is None
    assert len(_risk_closes(the_stores, winner)) == 1


def test_the_scheduled_handler_runs_when_due_or_forced(the_stores: Stores) -> None:
    # Given the risk_engine function and its EventBridge events (the local tick forces a run)
    from engine.local.events import scheduled_event
    from tests.support.streams import deliver, load_function

    _configure(interval_minutes=60)
    handler = load_function("risk_engine")
    # When the schedule fires twice, then the first runs and the second waits for the interval
    first = deliver(handler, scheduled_event("risk-schedule", "us-east-1"))
    second = deliver(handler, scheduled_event("risk-schedule", "us-east-1"))
    assert first["ran"] is True and second["ran"] is False
    # When the local tick forces it, then it runs anyway and answers JSON-ready data
    forced = deliver(handler, scheduled_event("risk-schedule", "us-east-1", force=True))
    assert forced["ran"] is True and forced["reason"] == "no eligible loser"


def test_no_action_without_a_valid_risk_document(the_stores: Stores) -> None:
    # Given an expired loser of three filled pyramids (eligible under the default settings too) and a
    # winner, and a risk document whose only version is invalid
    import boto3

    from engine.config import clear_cache
    from engine.config.settings import config_prefix

    _configure()
    pyramids = [[("100", "4")], [("100", "3")], [("100", "3")]]
    loser = stored_group(the_stores, "AAA/USDT", pyramids, price="88", now=T0).id
    winner = _winner(the_stores)
    run_risk(engine_context(), T0, force=True)
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.delete_parameter(Name=config_prefix() + "risk")
    ssm.put_parameter(Name=config_prefix() + "risk", Value='{"fee_percent": -5}', Type="String")
    clear_cache()
    # When the risk engine runs, then it does not act on stand-in defaults
    summary = run_risk(engine_context(), EXPIRED, force=True)
    assert summary.ran and summary.action is None and "no valid version" in summary.reason
    assert _status(the_stores, loser) == GroupStatus.ACTIVE
    assert _risk_closes(the_stores, winner) == []


@pytest.mark.parametrize(
    "how", ["figures", "price"], ids=["stored-figures-recovered", "latest-price-recovered"]
)
def test_a_loser_that_recovered_above_the_threshold_is_not_closed_when_its_timer_expires(
    the_stores: Stores, how: str
) -> None:
    # Given issue 12 finding 6: a loser at -12 % (threshold -5 %) whose timer starts, and a sufficient winner
    _configure(loss_threshold_percent="-5")
    loser, winner = _loser(the_stores), _winner(the_stores)
    assert run_risk(engine_context(), T0, force=True).timers_started == [loser]
    # When it recovers to -2 % (98; still a loss, so its timer keeps running) before the timer expires,
    # seen by position_update (stored figures) or only in the latest price
    if how == "figures":
        reprice(the_stores, loser, "98")
    else:
        the_stores.prices.set("binance", "AAA/USDT", Decimal("98"), T0)
    summary = run_risk(engine_context(), EXPIRED, force=True)
    # Then the risk engine re-checks the threshold at the moment of acting and leaves both groups alone
    assert summary.action is None
    assert "recovered to -2.00%" in summary.reason and "left open" in summary.reason
    assert _status(the_stores, loser) == GroupStatus.ACTIVE
    assert _risk_closes(the_stores, winner) == []
    # And why is recorded
    (record,) = the_stores.risk_actions.list_recent()
    assert (record.action, record.group_id) == ("risk_skipped", loser)
    assert record.details["unrealized_pnl_percent"] == Decimal("-2")
