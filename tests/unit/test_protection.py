"""Protections (DESIGN §3.9), pure: price paths that pin the exact tick each rule fires on.

Each row walks a price path one observed price at a time, feeding the state forward as the sync passes
do, and names the index of the price that fires (None = never) and the close reason. Long and short are
separate rows (short levels are mirrored by hand: the trailing rules are relative to the best price, not
to the average, so a reflected path would not pin the same tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.domain.config import ConfigError, ProtectionConfig, parse_document
from engine.domain.models import CloseReason, ProtectionState, Side
from engine.domain.protection import ProtectionInputs, breakeven_price, evaluate

D = Decimal
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LONG, SHORT = Side.LONG, Side.SHORT
SL, TTP, TS, BE, TL, TP = (
    CloseReason.STOP_LOSS,
    CloseReason.TRAILING_TAKE_PROFIT,
    CloseReason.TRAILING_STOP,
    CloseReason.BREAKEVEN_STOP,
    CloseReason.TIME_LIMIT,
    CloseReason.TAKE_PROFIT,
)


def inputs(side: Side = LONG, price: str | None = "100", **overrides: Any) -> ProtectionInputs:
    base: dict[str, Any] = {
        "side": side,
        "price": None if price is None else D(price),
        "now": T0,
        "created_at": T0,
        "holds": True,
        "avg_entry": D(100),
        "first_entry": D(100),
        "any_fill": True,
        "all_legs_filled": True,
        "leg_tps_filled": 0,
        "pyramid_count": 1,
        "tick": D("0.01"),
        "fee_rate": D(0),
    }
    base.update(overrides)
    return ProtectionInputs(**base)


@dataclass
class Walk:
    fired_at: int | None
    reason: CloseReason | None
    states: list[ProtectionState] = field(default_factory=list)
    note: str = ""


def walk(
    cfg: ProtectionConfig,
    path: list[str],
    *,
    side: Side = LONG,
    state: ProtectionState | None = None,
    **overrides: Any,
) -> Walk:
    """Feed ``path`` price by price; stop at the first trigger."""
    current = state or ProtectionState()
    states = []
    for index, price in enumerate(path):
        result = evaluate(cfg, current, inputs(side, price, **overrides))
        current = result.state
        states.append(current)
        if result.trigger is not None:
            return Walk(index, result.trigger.reason, states, result.trigger.note)
    return Walk(None, None, states)


def cfg(**fields: Any) -> ProtectionConfig:
    return ProtectionConfig.model_validate(fields)


STOP5 = {"stop_loss_percent": "5"}
TTP_2_05 = {"trailing_take_profit": {"activation_percent": "2", "deviation_percent": "0.5"}}
TS_3 = {"trailing_stop": {"distance_percent": "3"}}
TS_3_ACT_2 = {"trailing_stop": {"distance_percent": "3", "activation_percent": "2"}}

# (id, side, config, path, fired_at, reason, extra inputs)
ROWS: list[tuple[str, Side, dict[str, Any], list[str], int | None, CloseReason | None, dict[str, Any]]] = [
    # stop-loss on the average: 95.00 long, 105.00 short
    ("sl-avg-long", LONG, STOP5, ["100", "97", "95.01", "95.00", "90"], 3, SL, {}),
    ("sl-avg-short", SHORT, STOP5, ["100", "103", "104.99", "105.00", "110"], 3, SL, {}),
    ("sl-avg-long-gap", LONG, STOP5, ["100", "96", "94"], 2, SL, {}),
    ("sl-avg-long-never", LONG, STOP5, ["100", "95.01", "99", "120"], None, None, {}),
    # basis first_entry: the first leg filled at 100, the average is 97 (deeper legs) -> stop 95, not 92.15
    (
        "sl-first-long",
        LONG,
        {**STOP5, "stop_loss_basis": "first_entry"},
        ["97", "95.5", "95"],
        2,
        SL,
        {"avg_entry": D(97)},
    ),
    (
        "sl-first-short",
        SHORT,
        {**STOP5, "stop_loss_basis": "first_entry"},
        ["103", "104.5", "105"],
        2,
        SL,
        {"avg_entry": D(103)},
    ),
    ("sl-avg-long-basis-avg97", LONG, STOP5, ["97", "95", "92.16", "92.15"], 3, SL, {"avg_entry": D(97)}),
    # stop-loss armed only after all legs: nothing fires while a leg rests
    (
        "sl-all-legs-unarmed-short",
        SHORT,
        {**STOP5, "stop_loss_after": "all_legs_filled"},
        ["106", "110"],
        None,
        None,
        {"all_legs_filled": False},
    ),
    (
        "sl-all-legs-armed-short",
        SHORT,
        {**STOP5, "stop_loss_after": "all_legs_filled"},
        ["104.99", "105"],
        1,
        SL,
        {},
    ),
    (
        "sl-all-legs-unarmed",
        LONG,
        {**STOP5, "stop_loss_after": "all_legs_filled"},
        ["94", "90"],
        None,
        None,
        {"all_legs_filled": False},
    ),
    # trailing take-profit: arms at 102.00, high 104.00 -> trail 103.48
    ("ttp-long", LONG, TTP_2_05, ["101", "101.99", "102", "103", "104", "103.49", "103.48"], 6, TTP, {}),
    (
        "ttp-long-rising-stays-open",
        LONG,
        TTP_2_05,
        ["101", "102", "103", "104", "105", "106"],
        None,
        None,
        {},
    ),
    # below activation a fall never fires
    ("ttp-long-never-armed", LONG, TTP_2_05, ["101", "101.99", "100", "99"], None, None, {}),
    # short: arms at 98.00, low 96.00 -> trail 96.48
    ("ttp-short", SHORT, TTP_2_05, ["99", "98.01", "98", "97", "96", "96.47", "96.48"], 6, TTP, {}),
    # trailing stop, activation 0: armed at once at 97.00; follows 110 -> 106.70; never moves down
    ("ts-long", LONG, TS_3, ["100", "110", "108", "106.71", "106.70"], 4, TS, {}),
    ("ts-long-first-tick", LONG, TS_3, ["100", "97.01", "97"], 2, TS, {}),
    ("ts-short", SHORT, TS_3, ["100", "90", "92", "92.69", "92.70"], 4, TS, {}),
    # trailing stop with activation 2 %: nothing before 102; then 3 % under the best
    ("ts-act-long", LONG, TS_3_ACT_2, ["100", "96", "90", "102", "99", "98.94"], 5, TS, {}),
    ("ts-act-short", SHORT, TS_3_ACT_2, ["100", "104", "110", "98", "100.93", "100.94"], 5, TS, {}),
    # the higher stop rules: fixed 95, trailing 3 % under 110 = 106.70 -> trailing_stop
    ("higher-stop-trailing", LONG, {**STOP5, **TS_3}, ["100", "110", "106.70"], 2, TS, {}),
    # ... and at the start the fixed stop is higher (95 vs 97 - no: trailing 97 is higher) -> trailing
    ("higher-stop-start", LONG, {"stop_loss_percent": "2", **TS_3}, ["100", "98"], 1, SL, {}),
    # break-even after 1 leg TP: fee 0.1 % -> 100.2002...; fires at 100.20, not 100.21
    (
        "be-long",
        LONG,
        {"breakeven_after_tp_legs": 1},
        ["101", "100.21", "100.20"],
        2,
        BE,
        {"leg_tps_filled": 1, "fee_rate": D("0.001")},
    ),
    (
        "be-short",
        SHORT,
        {"breakeven_after_tp_legs": 1},
        ["99", "99.79", "99.81"],
        2,
        BE,
        {"leg_tps_filled": 1, "fee_rate": D("0.001")},
    ),
    (
        "be-not-yet",
        LONG,
        {"breakeven_after_tp_legs": 2},
        ["101", "100.2", "99"],
        None,
        None,
        {"leg_tps_filled": 1, "fee_rate": D("0.001")},
    ),
    # break-even above the percent stop rules once reached
    (
        "be-over-sl",
        LONG,
        {**STOP5, "breakeven_after_tp_legs": 1},
        ["101", "100"],
        1,
        BE,
        {"leg_tps_filled": 1},
    ),
    # nothing held: no price rule fires
    ("nothing-held", LONG, {**STOP5, **TS_3}, ["100", "50"], None, None, {"holds": False}),
]


@pytest.mark.parametrize(
    ("side", "config", "path", "fired_at", "reason", "extra"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_price_paths_fire_on_the_exact_tick(side, config, path, fired_at, reason, extra):
    outcome = walk(cfg(**config), path, side=side, **extra)
    assert (outcome.fired_at, outcome.reason) == (fired_at, reason), outcome.note


@pytest.mark.parametrize(
    ("side", "path", "fired_at"),
    [
        (LONG, ["100", "99", "90.01", "90", "80"], 3),
        (SHORT, ["100", "101", "109.99", "110", "120"], 3),
    ],
)
def test_the_alert_stop_wins_over_the_percent(side, path, fired_at):
    # Given 5 % on the average (95 / 105) and the alert's absolute stop (90 / 110)
    alert = D(90) if side is LONG else D(110)
    outcome = walk(cfg(**STOP5), path, side=side, state=ProtectionState(alert_stop=alert))
    assert (outcome.fired_at, outcome.reason) == (fired_at, SL)
    assert "risk.stop_loss" in outcome.note


@pytest.mark.parametrize(
    ("side", "path", "fired_at"),
    [(LONG, ["100", "104.99", "105"], 2), (SHORT, ["100", "95.01", "95"], 2)],
)
def test_the_alert_take_profit_fires_at_its_price(side, path, fired_at):
    target = D(105) if side is LONG else D(95)
    outcome = walk(cfg(), path, side=side, state=ProtectionState(alert_take_profit=target))
    assert (outcome.fired_at, outcome.reason) == (fired_at, TP)


def test_an_armed_stop_stays_armed_when_a_new_pyramid_adds_resting_legs():
    rule = cfg(**STOP5, stop_loss_after="all_legs_filled")
    armed = evaluate(rule, ProtectionState(), inputs(price="100")).state
    assert armed.stop_armed
    # a new pyramid: resting legs again, avg now 98 -> stop 93.10
    later = evaluate(rule, armed, inputs(price="93.10", all_legs_filled=False, avg_entry=D(98)))
    assert later.trigger is not None and later.trigger.reason is SL
    assert later.state.stop_price == D(98) * D("0.95")


def test_an_average_stop_follows_the_new_lots():
    rule = cfg(**STOP5)
    first = evaluate(rule, ProtectionState(), inputs(price="99", avg_entry=D(100))).state
    assert first.stop_price == D("95.00")
    second = evaluate(rule, first, inputs(price="96", avg_entry=D(96)))
    assert second.trigger is None and second.state.stop_price == D("91.20")


def test_the_trailing_stop_never_moves_down_and_is_kept_on_the_tick():
    rule = cfg(**TS_3)
    outcome = walk(rule, ["100", "110", "108", "107.33"], side=LONG)
    stops = [s.trailing_stop for s in outcome.states]
    assert stops == [D("97.00"), D("106.70"), D("106.70"), D("106.70")]


def test_the_high_moves_only_by_whole_ticks():
    rule = cfg(**TTP_2_05)
    outcome = walk(rule, ["102", "102.004", "102.009", "102.01"], side=LONG)
    assert [s.high for s in outcome.states] == [D("102.00"), D("102.00"), D("102.00"), D("102.01")]
    # so a sub-tick move changes nothing that would be saved
    assert outcome.states[1] == outcome.states[0]


def test_a_new_pyramid_disarms_the_trailing_take_profit():
    rule = cfg(**TTP_2_05)
    armed = walk(rule, ["102", "104"]).states[-1]
    assert armed.trailing_armed and armed.high == D(104)
    # pyramid 2 fills lower: avg 99 -> activation 100.98; at 101 it re-arms from 101, no close at 101
    after = evaluate(rule, armed, inputs(price="101", pyramid_count=2, avg_entry=D(99)))
    assert after.trigger is None
    assert after.state.trailing_armed and after.state.high == D(101) and after.state.trailing_pyramids == 2


def test_with_trail_and_stop_both_crossed_the_higher_level_wins():
    rule = cfg(**TTP_2_05, stop_loss_percent="1")
    outcome = walk(rule, ["102", "104", "90"])
    assert (outcome.fired_at, outcome.reason) == (2, TTP)


@pytest.mark.parametrize("side", [LONG, SHORT])
@pytest.mark.parametrize("held", [True, False])
def test_the_time_limit_fires_at_created_at_plus_minutes(held, side):
    rule = cfg(time_limit_minutes=60)
    early = T0 + timedelta(minutes=59, seconds=59)
    before = evaluate(rule, ProtectionState(), inputs(side, now=early, holds=held))
    at = evaluate(rule, before.state, inputs(side, now=T0 + timedelta(minutes=60), holds=held))
    assert before.trigger is None and before.state.expires_at == T0 + timedelta(minutes=60)
    assert at.trigger is not None and at.trigger.reason is TL


def test_the_time_limit_fires_without_a_price():
    rule = cfg(time_limit_minutes=1)
    result = evaluate(rule, ProtectionState(), inputs(price=None, now=T0 + timedelta(minutes=1)))
    assert result.trigger is not None and result.trigger.reason is TL


def test_a_stop_fires_before_the_time_limit_on_the_same_tick():
    rule = cfg(**STOP5, time_limit_minutes=1)
    result = evaluate(rule, ProtectionState(), inputs(price="90", now=T0 + timedelta(minutes=5)))
    assert result.trigger is not None and result.trigger.reason is SL


def test_no_rules_no_state_change():
    state = ProtectionState()
    for price in ("100", "50", "200"):
        result = evaluate(cfg(), state, inputs(price=price))
        assert result.trigger is None and result.state == state


def test_breakeven_price_covers_both_fees():
    f = D("0.001")
    long_stop = breakeven_price(LONG, D(100), f)
    # selling everything at the stop pays back the buy and both fees
    assert long_stop * (1 - f) == pytest.approx(D(100) * (1 + f))
    short_stop = breakeven_price(SHORT, D(100), f)
    assert short_stop * (1 + f) == pytest.approx(D(100) * (1 - f))


# --------------------------------------------------------------------------- config documents


def dca(**fields: Any) -> str:
    import json

    return json.dumps(fields)


def test_the_default_document_has_every_protection_off():
    model = parse_document("dca/default", "{}")
    assert model.protection == ProtectionConfig()  # type: ignore[attr-defined]
    assert not model.protection.any_rule  # type: ignore[attr-defined]


def test_a_full_protection_object_parses():
    model = parse_document(
        "dca/binance/BTCUSDT/60",
        dca(
            protection={
                "stop_loss_percent": 5,
                "stop_loss_basis": "first_entry",
                "stop_loss_after": "all_legs_filled",
                "trailing_take_profit": {"activation_percent": 2, "deviation_percent": "0.5"},
                "trailing_stop": {"distance_percent": 3, "activation_percent": 0},
                "breakeven_after_tp_legs": 1,
                "time_limit_minutes": 1440,
            },
            tp_mode="per_leg",
        ),
    )
    protection = model.protection  # type: ignore[attr-defined]
    assert protection.stop_loss_percent == D(5) and protection.time_limit_minutes == 1440


@pytest.mark.parametrize(
    ("document", "field_part", "reason_part"),
    [
        (
            {"protection": {"trailing_take_profit": {"activation_percent": 1, "deviation_percent": 1}}},
            "protection.trailing_take_profit",
            "must be below activation_percent",
        ),
        ({"tp_mode": "aggregate", "protection": {"breakeven_after_tp_legs": 1}}, "", "per_leg or hybrid"),
        ({"tp_mode": "pyramid_aggregate", "protection": {"breakeven_after_tp_legs": 1}}, "", "per_leg"),
        ({"protection": {"stop_loss_percent": 0}}, "protection.stop_loss_percent", "greater than 0"),
        ({"protection": {"stop_loss_basis": "last"}}, "protection.stop_loss_basis", ""),
        ({"protection": {"stop_loss_after": "never"}}, "protection.stop_loss_after", ""),
        ({"protection": {"time_limit_minutes": 0}}, "protection.time_limit_minutes", ""),
        ({"protection": {"stop": 5}}, "protection.stop", "unknown field"),
        ({"protection": {"trailing_stop": {"activation_percent": 1}}}, "protection.trailing_stop", "missing"),
    ],
)
def test_invalid_protection_is_refused_naming_the_field(document, field_part, reason_part):
    with pytest.raises(ConfigError) as error:
        parse_document("dca/default", dca(**document))
    problem = error.value
    assert problem.field.startswith(field_part), str(problem)
    assert reason_part in str(problem)


def test_breakeven_with_hybrid_is_accepted():
    model = parse_document("dca/default", dca(tp_mode="hybrid", protection={"breakeven_after_tp_legs": 2}))
    assert model.protection.breakeven_after_tp_legs == 2  # type: ignore[attr-defined]


def test_state_equality_is_what_decides_a_save():
    # the evaluation returns an equal state for an unchanged position: nothing to save
    rule = cfg(**STOP5, **TS_3)
    first = evaluate(rule, ProtectionState(), inputs(price="100")).state
    again = evaluate(rule, replace(first), inputs(price="99.5")).state
    assert again == first


# --------------------------------------------------------------------------- slippage


@pytest.mark.parametrize(
    ("buying", "current", "refused"),
    [
        (True, "101", False),
        (True, "101.01", True),
        (True, "90", False),
        (False, "99", False),
        (False, "98.99", True),
        (False, "110", False),
    ],
)
def test_slippage_refuses_only_a_worse_price_beyond_the_limit(buying, current, refused):
    from engine.domain.protection import slippage_refusal

    reason = slippage_refusal(buying, D(100), D(current), D(1))
    assert (reason is not None) == refused
    if reason is not None:
        assert current in reason and "100" in reason and "max_slippage_percent 1" in reason
