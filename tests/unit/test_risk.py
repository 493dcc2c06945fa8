"""Risk engine rules (DESIGN §3.8): timers, eligibility, loser/winner selection and the offset plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.config import RiskConfig
from engine.domain.models import Group, GroupFigures, GroupStatus, MarketPrecision, Pyramid, Side
from engine.domain.risk import (
    RiskCandidate,
    eligible,
    evaluate,
    next_timer,
    plan_offset,
    select_loser,
    select_winners,
    still_losing,
    timer_condition_met,
    timer_expired,
)

D = Decimal
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NO_FEES = RiskConfig(fee_percent=D(0))


def candidate(
    group_id: str,
    *,
    side: Side = Side.LONG,
    qty: str = "10",
    avg: str = "100",
    price: str | None = "90",
    pnl_usd: str | None = None,
    pnl_pct: str | None = None,
    status: GroupStatus = GroupStatus.ACTIVE,
    age_minutes: int = 120,
    timer_minutes: int | None = 30,
    blocked: bool = False,
    skip_once: bool = False,
    pyramids: int = 3,
    pyramids_filled: int | None = None,
    submitted: bool = True,
    filled: bool = True,
    step: str = "1",
) -> RiskCandidate:
    """A group whose unrealised PnL follows from qty/avg/price unless given explicitly."""
    quantity, avg_entry = D(qty), D(avg)
    last_price = None if price is None else D(price)
    unit = (
        D(0)
        if last_price is None
        else (last_price - avg_entry if side == Side.LONG else avg_entry - last_price)
    )
    usd = D(pnl_usd) if pnl_usd is not None else quantity * unit
    pct = D(pnl_pct) if pnl_pct is not None else (unit / avg_entry * 100 if avg_entry else D(0))
    group = Group(
        id=group_id,
        exchange="binance",
        symbol=f"{group_id.upper()}/USDT",
        timeframe=60,
        side=side,
        status=status,
        pyramids=[
            Pyramid(index=i + 1, entry_price=avg_entry, capital_usd=D(200), candle=i, leg_count=5)
            for i in range(pyramids)
        ],
        figures=GroupFigures(
            quantity=quantity,
            avg_entry=avg_entry,
            unrealized_pnl_usd=usd,
            unrealized_pnl_percent=pct,
            last_price=last_price,
        ),
        created_at=NOW - timedelta(minutes=age_minutes),
        risk_timer_started_at=None if timer_minutes is None else NOW - timedelta(minutes=timer_minutes),
        risk_blocked=blocked,
        risk_skip_once=skip_once,
    )
    return RiskCandidate(
        group=group,
        precision=MarketPrecision(
            symbol=group.symbol, tick=D("0.01"), step=D(step), min_qty=D(step), min_notional=D(5)
        ),
        pyramids_filled=pyramids if pyramids_filled is None else pyramids_filled,
        all_dca_submitted=submitted,
        all_dca_filled=filled,
    )


# --------------------------------------------------------------------------- timer condition


@pytest.mark.parametrize(
    ("mode", "fields", "expected"),
    [
        ("after_pyramids", {"pyramids": 3, "pyramids_filled": 3, "pnl_pct": "-1.5"}, True),
        ("after_pyramids", {"pyramids": 4, "pyramids_filled": 3, "pnl_pct": "-2"}, True),
        ("after_pyramids", {"pyramids": 3, "pyramids_filled": 2, "pnl_pct": "-2"}, False),
        ("after_pyramids", {"pyramids": 2, "pyramids_filled": 2, "pnl_pct": "-2"}, False),
        ("after_pyramids", {"pyramids": 3, "pyramids_filled": 3, "pnl_pct": "-1.49"}, False),
        (
            "after_all_dca_submitted",
            {"pyramids": 1, "submitted": True, "filled": False, "pnl_pct": "-2"},
            True,
        ),
        (
            "after_all_dca_submitted",
            {"pyramids": 1, "submitted": False, "filled": False, "pnl_pct": "-2"},
            False,
        ),
        ("after_all_dca_submitted", {"pyramids": 1, "submitted": True, "pnl_pct": "-1"}, False),
        ("after_all_dca_filled", {"pyramids": 1, "submitted": True, "filled": True, "pnl_pct": "-2"}, True),
        ("after_all_dca_filled", {"pyramids": 1, "submitted": True, "filled": False, "pnl_pct": "-2"}, False),
        ("after_all_dca_filled", {"pyramids": 1, "filled": True, "pnl_pct": "-1"}, False),
    ],
)
def test_timer_condition_per_start_mode(mode: str, fields: dict[str, Any], expected: bool) -> None:
    cfg = RiskConfig(timer_start=mode, required_pyramids=3)  # type: ignore[arg-type]
    assert timer_condition_met(candidate("g", **fields), cfg) is expected


def test_required_pyramids_is_configurable() -> None:
    group = candidate("g", pyramids=1, pyramids_filled=1, pnl_pct="-2")
    assert timer_condition_met(group, RiskConfig(required_pyramids=1)) is True
    assert timer_condition_met(group, RiskConfig(required_pyramids=2)) is False


# --------------------------------------------------------------------------- timer start / reset

STARTED = NOW - timedelta(minutes=5)


@pytest.mark.parametrize(
    ("case", "fields", "flags", "cfg_fields", "expected"),
    [
        ("starts when condition met", {"timer_minutes": None, "pnl_pct": "-2"}, {}, {}, NOW),
        ("stays off above threshold", {"timer_minutes": None, "pnl_pct": "-1"}, {}, {}, None),
        ("running timer kept", {"timer_minutes": 5, "pnl_pct": "-2"}, {}, {}, STARTED),
        ("kept while loss is under the threshold", {"timer_minutes": 5, "pnl_pct": "-0.5"}, {}, {}, STARTED),
        ("resets on recovery to 0", {"timer_minutes": 5, "pnl_pct": "0"}, {}, {}, None),
        ("resets on profit", {"timer_minutes": 5, "pnl_pct": "0.3"}, {}, {}, None),
        ("resets on a new pyramid", {"timer_minutes": 5, "pnl_pct": "-2"}, {"new_pyramid": True}, {}, None),
        (
            "new pyramid does not start it",
            {"timer_minutes": None, "pnl_pct": "-2"},
            {"new_pyramid": True},
            {},
            None,
        ),
        (
            "replacement ignored by default",
            {"timer_minutes": 5, "pnl_pct": "-2"},
            {"replacement": True},
            {},
            STARTED,
        ),
        (
            "replacement resets when configured",
            {"timer_minutes": 5, "pnl_pct": "-2"},
            {"replacement": True},
            {"reset_timer_on_replacement": True},
            None,
        ),
        (
            "terminal group has no timer",
            {"timer_minutes": 5, "pnl_pct": "-2", "status": GroupStatus.CLOSED},
            {},
            {},
            None,
        ),
    ],
)
def test_next_timer(
    case: str,
    fields: dict[str, Any],
    flags: dict[str, bool],
    cfg_fields: dict[str, Any],
    expected: datetime | None,
) -> None:
    result = next_timer(candidate("g", **fields), RiskConfig(**cfg_fields), NOW, **flags)
    assert result == expected, case


@pytest.mark.parametrize(
    ("timer_minutes", "wait", "expected"),
    [(None, 15, False), (14, 15, False), (15, 15, True), (16, 15, True), (0, 0, True)],
)
def test_timer_expired_after_post_full_wait(timer_minutes: int | None, wait: int, expected: bool) -> None:
    group = candidate("g", timer_minutes=timer_minutes).group
    assert timer_expired(group, RiskConfig(post_full_wait_minutes=wait), NOW) is expected


# --------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize(
    ("case", "fields", "cfg_fields", "expected"),
    [
        ("expired timer, at a loss", {}, {}, True),
        ("blocked", {"blocked": True}, {}, False),
        ("skip once", {"skip_once": True}, {}, False),
        ("timer not started", {"timer_minutes": None}, {}, False),
        ("timer still running", {"timer_minutes": 10}, {}, False),
        ("age filter off", {"age_minutes": 1}, {"min_age_minutes": 0}, True),
        ("younger than min age", {"age_minutes": 30}, {"min_age_minutes": 60}, False),
        ("exactly min age", {"age_minutes": 60}, {"min_age_minutes": 60}, True),
        ("older than min age", {"age_minutes": 90}, {"min_age_minutes": 60}, True),
        ("holds nothing", {"qty": "0", "pnl_usd": "-5", "pnl_pct": "-2"}, {}, False),
        ("holds less than a step", {"qty": "0.5", "step": "1"}, {}, False),
        ("in profit", {"price": "110"}, {}, False),
        ("no price", {"price": None, "pnl_usd": "-5", "pnl_pct": "-2"}, {}, False),
        ("closing", {"status": GroupStatus.CLOSING}, {}, False),
        ("closed", {"status": GroupStatus.CLOSED}, {}, False),
        ("partially filled", {"status": GroupStatus.PARTIALLY_FILLED}, {}, True),
    ],
)
def test_eligible(case: str, fields: dict[str, Any], cfg_fields: dict[str, Any], expected: bool) -> None:
    assert eligible(candidate("g", **fields), RiskConfig(**cfg_fields), NOW) is expected, case


# --------------------------------------------------------------------------- loser selection


@pytest.mark.parametrize(
    ("case", "groups", "expected"),
    [
        (
            "highest loss percent wins",
            [
                candidate("a", pnl_usd="-50", pnl_pct="-3"),
                candidate("b", pnl_usd="-500", pnl_pct="-2"),
            ],
            "a",
        ),
        (
            "then highest USD loss",
            [
                candidate("a", pnl_usd="-50", pnl_pct="-3"),
                candidate("b", pnl_usd="-80", pnl_pct="-3"),
            ],
            "b",
        ),
        (
            "then the oldest",
            [
                candidate("a", pnl_usd="-80", pnl_pct="-3", age_minutes=100),
                candidate("b", pnl_usd="-80", pnl_pct="-3", age_minutes=200),
            ],
            "b",
        ),
        (
            "then the id",
            [
                candidate("b", pnl_usd="-80", pnl_pct="-3"),
                candidate("a", pnl_usd="-80", pnl_pct="-3"),
            ],
            "a",
        ),
        (
            "ineligible deeper loser is passed over",
            [
                candidate("a", pnl_usd="-500", pnl_pct="-9", blocked=True),
                candidate("b", pnl_usd="-500", pnl_pct="-8", skip_once=True),
                candidate("c", pnl_usd="-500", pnl_pct="-7", timer_minutes=None),
                candidate("d", pnl_usd="-10", pnl_pct="-1"),
            ],
            "d",
        ),
    ],
)
def test_select_loser(case: str, groups: list[RiskCandidate], expected: str) -> None:
    loser = select_loser(groups, RiskConfig(), NOW)
    assert loser is not None and loser.group.id == expected, case


def test_select_loser_none_when_nothing_eligible() -> None:
    assert (
        select_loser([candidate("a", price="110"), candidate("b", blocked=True)], RiskConfig(), NOW) is None
    )


# --------------------------------------------------------------------------- winner selection


def test_select_winners_best_first_capped_and_filtered() -> None:
    # Given a loser and a mix of candidates
    loser = candidate("loser")
    groups = [
        loser,
        candidate("w10", price="101"),  # +10
        candidate("w50", price="105"),  # +50
        candidate("w30", price="103"),  # +30
        candidate("w20", price="102"),  # +20
        candidate("blocked", price="150", blocked=True),
        candidate("closing", price="150", status=GroupStatus.CLOSING),
        candidate("flat", price="100"),
        candidate("loss", price="99"),
        candidate("noprice", price=None, pnl_usd="100", pnl_pct="5"),
        candidate("skipper", price="104", skip_once=True),  # +40, skip-once applies to losers only
    ]
    # When winners are chosen with the default cap of 3
    winners = select_winners(groups, loser, RiskConfig())
    # Then the three largest USD profits, best first
    assert [w.group.id for w in winners] == ["w50", "skipper", "w30"]
    assert [w.group.id for w in select_winners(groups, loser, RiskConfig(max_winners_to_combine=5))] == [
        "w50",
        "skipper",
        "w30",
        "w20",
        "w10",
    ]


def test_select_winners_excludes_the_loser_even_if_profitable_in_usd() -> None:
    loser = candidate("x", pnl_usd="10", pnl_pct="-2")
    assert select_winners([loser], loser, RiskConfig()) == []


# --------------------------------------------------------------------------- offset plan


def worked_example() -> tuple[RiskCandidate, list[RiskCandidate]]:
    """DESIGN §3.8: loser -120; W1 +80 (avg 100, price 110, holds 8); W2 +50 (avg 50, price 55, holds 10)."""
    loser = candidate("loser", qty="20", avg="100", price="94")  # -120
    w1 = candidate("w1", qty="8", avg="100", price="110")  # +80
    w2 = candidate("w2", qty="10", avg="50", price="55")  # +50
    return loser, [w1, w2]


def test_worked_example_without_fees_realises_exactly_the_loss() -> None:
    loser, winners = worked_example()
    plan = plan_offset(loser, winners, NO_FEES)
    assert plan.actionable and plan.reason == ""
    assert (plan.loser.group_id, plan.loser.qty, plan.loser.loss_usd) == ("loser", D(20), D(120))
    assert [(w.group_id, w.qty, w.realized_usd) for w in plan.winners] == [
        ("w1", D(8), D(80)),
        ("w2", D(8), D(40)),
    ]
    assert plan.covered_usd == plan.needed_usd == D(120)
    assert plan.fees_usd == 0


def test_worked_example_with_default_fees_closes_9_of_w2() -> None:
    # Given fee 0.1 % on every close / When planned (8 of 10 would realise -4.40 net)
    loser, winners = worked_example()
    plan = plan_offset(loser, winners, RiskConfig())
    # Then W1 closes all 8 and W2 9 of 10: the fees grow what is needed and the step rounds up
    assert [(w.group_id, w.qty) for w in plan.winners] == [("w1", D(8)), ("w2", D(9))]
    assert plan.actionable
    # fees: loser 20*94, W1 8*110, W2 9*55 at 0.1 %
    assert plan.fees_usd == D("1.88") + D("0.88") + D("0.495")
    assert plan.needed_usd == D(120) + plan.fees_usd
    # and the plan, net of every close's fee, does not lose money
    assert plan.covered_usd - plan.needed_usd >= 0
    assert plan.covered_usd - plan.needed_usd < D(5) - D("0.055")


def test_fees_make_a_finer_step_take_more() -> None:
    # Given W2 trades in 0.001 steps, the fee share is taken from it too
    loser = candidate("loser", qty="20", avg="100", price="94")
    w1 = candidate("w1", qty="8", avg="100", price="110")
    w2 = candidate("w2", qty="10", avg="50", price="55", step="0.001")
    plan = plan_offset(loser, [w1, w2], RiskConfig())
    w2_close = plan.winners[1]
    assert D(8) < w2_close.qty < D(9)
    assert 0 <= plan.covered_usd - plan.needed_usd < D("0.001") * (D(5) - D("0.055"))


def test_a_plan_short_after_rounding_to_holdings_does_not_act() -> None:
    # Given fees, W2 holds only 8.6 (step 1 -> 8 closable): it cannot cover the 121.88 + fees
    loser, (w1, _) = worked_example()
    w2 = candidate("w2", qty="8.6", avg="50", price="55")
    plan = plan_offset(loser, [w1, w2], RiskConfig())
    assert [(w.group_id, w.qty) for w in plan.winners] == [("w1", D(8)), ("w2", D(8))]
    assert not plan.actionable and "does not cover" in plan.reason


def test_still_losing_rechecks_the_threshold_at_action() -> None:
    cfg = RiskConfig()
    assert still_losing(candidate("l", pnl_usd="-20", pnl_pct="-2"), cfg)
    assert not still_losing(candidate("l", pnl_usd="-10", pnl_pct="-1"), cfg)  # recovered above -1.5
    assert not still_losing(candidate("l", pnl_usd="5", pnl_pct="1"), cfg)


def test_not_covered_is_not_actionable() -> None:
    loser = candidate("loser", qty="20", avg="100", price="90")  # -200
    winners = [candidate("w1", qty="8", avg="100", price="110")]  # +80
    plan = plan_offset(loser, winners, NO_FEES)
    assert not plan.actionable
    assert "does not cover" in plan.reason and "120 USD short" in plan.reason
    assert [w.qty for w in plan.winners] == [D(8)]
    assert plan.covered_usd == D(80)


def test_no_winners_is_not_actionable() -> None:
    plan = plan_offset(candidate("loser"), [], RiskConfig())
    assert not plan.actionable and "no winner" in plan.reason and plan.winners == []


def test_winner_under_min_close_notional_is_skipped_and_next_one_used() -> None:
    # Given a loser of -4 and two winners; the first would only close 1 unit worth 5 USD
    loser = candidate("loser", qty="4", avg="10", price="9")  # -4
    small = candidate("small", qty="10", avg="1", price="5")  # +40 but 4 USD needs 1 unit = 5 USD notional
    big = candidate("big", qty="10", avg="50", price="54")  # +40, 1 unit = 54 USD notional
    plan = plan_offset(loser, [small, big], NO_FEES)
    assert [s.group_id for s in plan.skipped] == ["small"]
    assert "minimum close notional 10" in plan.skipped[0].reason
    assert [(w.group_id, w.qty) for w in plan.winners] == [("big", D(1))]
    assert plan.actionable


def test_only_winner_under_min_close_notional_leaves_plan_not_actionable() -> None:
    loser = candidate("loser", qty="4", avg="10", price="9")
    small = candidate("small", qty="10", avg="1", price="5")
    plan = plan_offset(loser, [small], NO_FEES)
    assert not plan.actionable and plan.winners == [] and plan.covered_usd == 0
    # and a zero minimum lets the same close through
    assert plan_offset(loser, [small], RiskConfig(fee_percent=D(0), min_close_notional=D(0))).actionable


def test_short_winner_is_mirrored() -> None:
    # Given a short winner entered at 100, now 90 (+10 per unit), holding 5
    loser = candidate("loser", qty="10", avg="100", price="97")  # -30
    short = candidate("short", side=Side.SHORT, qty="5", avg="100", price="90")  # +50
    plan = plan_offset(loser, [short], NO_FEES)
    assert [(w.group_id, w.side, w.qty, w.realized_usd) for w in plan.winners] == [
        ("short", Side.SHORT, D(3), D(30))
    ]


def test_winner_never_closes_more_than_it_holds_with_dust() -> None:
    # Given a winner holding 8.37 with step 1 (fees paid in base left dust)
    loser = candidate("loser", qty="20", avg="100", price="90")  # -200
    w1 = candidate("w1", qty="8.37", avg="100", price="110")
    plan = plan_offset(loser, [w1], NO_FEES)
    assert plan.winners[0].qty == D(8) and not plan.actionable


def test_winner_whose_fee_eats_its_profit_is_skipped() -> None:
    loser = candidate("loser", qty="10", avg="100", price="99")
    thin = candidate("thin", qty="100", avg="100", price="100.05")  # 0.05/unit < 0.1 % fee of 100.05
    plan = plan_offset(loser, [thin], RiskConfig())
    assert [s.group_id for s in plan.skipped] == ["thin"] and not plan.actionable


def test_plan_rejects_a_loser_without_price() -> None:
    with pytest.raises(ValueError, match="no last price"):
        plan_offset(candidate("loser", price=None, pnl_usd="-5", pnl_pct="-2"), [], RiskConfig())


# --------------------------------------------------------------------------- evaluate


def test_evaluate_none_without_an_eligible_loser() -> None:
    assert (
        evaluate([candidate("a", price="110"), candidate("b", timer_minutes=None)], RiskConfig(), NOW) is None
    )


def test_evaluate_runs_the_worked_example_end_to_end() -> None:
    loser, winners = worked_example()
    # an extra, deeper loser that is blocked must not be chosen
    blocked = candidate("blocked", qty="10", avg="100", price="50", blocked=True)
    plan = evaluate([winners[1], blocked, loser, winners[0]], RiskConfig(), NOW)
    assert plan is not None and plan.actionable
    assert plan.loser.group_id == "loser"
    assert [(w.group_id, w.qty) for w in plan.winners] == [("w1", D(8)), ("w2", D(9))]


# --------------------------------------------------------------------------- properties

money = st.decimals(min_value=D("0.5"), max_value=D(500), places=2)
steps = st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D(1)])


@st.composite
def winner_strategy(draw: st.DrawFn, index: int) -> RiskCandidate:
    side = draw(st.sampled_from([Side.LONG, Side.SHORT]))
    avg = draw(money)
    gain = draw(st.decimals(min_value=D("0.01"), max_value=avg, places=2))
    price = avg + gain if side == Side.LONG else avg - gain
    if price <= 0:
        price = avg + gain
        side = Side.LONG
    step = draw(steps)
    qty = draw(st.integers(1, 5000)) * step
    return candidate(f"w{index}", side=side, qty=str(qty), avg=str(avg), price=str(price), step=str(step))


@st.composite
def offset_case(draw: st.DrawFn) -> tuple[RiskCandidate, list[RiskCandidate], RiskConfig]:
    loss = draw(st.decimals(min_value=D("0.01"), max_value=D(2000), places=2))
    loser = candidate("loser", qty="1", avg=str(loss + 100), price="100")  # loses exactly `loss`
    count = draw(st.integers(0, 4))
    winners = [draw(winner_strategy(i)) for i in range(count)]
    cfg = RiskConfig(
        fee_percent=draw(st.sampled_from([D(0), D("0.05"), D("0.1")])),
        min_close_notional=draw(st.sampled_from([D(0), D(10)])),
    )
    return loser, winners, cfg


@settings(max_examples=300, deadline=None)
@given(case=offset_case())
def test_offset_plan_never_overcloses_and_covers_by_at_most_one_step(
    case: tuple[RiskCandidate, list[RiskCandidate], RiskConfig],
) -> None:
    loser, winners, cfg = case
    plan = plan_offset(loser, winners, cfg)
    by_id = {w.group.id: w for w in winners}
    fee_rate = cfg.fee_percent / 100
    for close in plan.winners:
        source = by_id[close.group_id]
        # never more than the winner holds, always on its step, never under the minimum notional
        assert 0 < close.qty <= source.group.figures.quantity
        assert close.qty % source.precision.step == 0
        assert close.qty * close.price >= cfg.min_close_notional
    assert plan.needed_usd == plan.loser.loss_usd + plan.fees_usd
    assert plan.covered_usd == sum((c.realized_usd for c in plan.winners), D(0))
    if plan.actionable:
        # realises the needed amount to within one step's worth of the last winner used
        last = plan.winners[-1]
        one_step = by_id[last.group_id].precision.step * (
            abs(last.price - last.avg_entry) - last.price * fee_rate
        )
        # (winners round up: the plan covers the loss and every fee, by less than one step's worth)
        assert 0 <= plan.covered_usd - plan.needed_usd < one_step
    else:
        assert plan.reason
        # not actionable only when the usable winners' profit (net of close fees) falls short
        usable = sum(
            (
                min(w.closable_quantity * u, w.group.figures.unrealized_pnl_usd) * (u - p * fee_rate) / u
                for w in winners
                for p in [w.group.figures.last_price or D(0)]
                for u in [abs(p - w.group.figures.avg_entry)]
                if u - p * fee_rate > 0
            ),
            D(0),
        )
        assert usable < plan.loser.loss_usd + plan.loser.fee_usd or plan.skipped
