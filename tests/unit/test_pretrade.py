"""Pre-trade checks (DESIGN §3.7): each branch, its order, and the exposure shrink."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.domain.config import EngineConfig
from engine.domain.pretrade import PreTradeDecision, breaker_tripped, check_entry, exposure_headroom

D = Decimal


def run(**overrides: Any) -> PreTradeDecision:
    """check_entry with a healthy baseline (new group, room everywhere), overridden per case."""
    engine_fields = overrides.pop("engine", {})
    arguments: dict[str, Any] = {
        "engine": EngineConfig(**engine_fields),
        "is_pyramid": False,
        "pool_bypass": True,
        "pool_open": 0,
        "pool_max": 10,
        "open_on_symbol": 0,
        "open_exposure_usd": D(0),
        "requested_capital_usd": D(200),
        "realized_today_usd": D(0),
        "config_problem": None,
    }
    arguments.update(overrides)
    return check_entry(**arguments)


@pytest.mark.parametrize(
    ("case", "overrides", "action", "reason_part", "capital"),
    [
        ("healthy new group", {}, "accept", "ok", "200"),
        (
            "config problem",
            {"config_problem": "configuration invalid, no valid version of: risk"},
            "reject",
            "no valid version of: risk",
            "200",
        ),
        ("paused", {"engine": {"paused": True}}, "reject", "engine paused", "200"),
        (
            "paused pyramid",
            {"engine": {"paused": True}, "is_pyramid": True},
            "reject",
            "engine paused",
            "200",
        ),
        ("zero capital", {"requested_capital_usd": D(0)}, "reject", "capital must be positive", "0"),
        ("symbol limit", {"open_on_symbol": 3}, "reject", "per symbol reached (3/3)", "200"),
        ("below symbol limit", {"open_on_symbol": 2}, "accept", "ok", "200"),
        ("pyramid skips symbol limit", {"open_on_symbol": 5, "is_pyramid": True}, "accept", "ok", "200"),
        (
            "daily loss breaker",
            {"realized_today_usd": D(-500)},
            "queue",
            "daily loss breaker: realised today -500.00 USD <= -500.00 USD limit",
            "200",
        ),
        ("loss under the limit", {"realized_today_usd": D("-499.99")}, "accept", "ok", "200"),
        (
            "pyramid rejected by the breaker",
            {"realized_today_usd": D(-900), "is_pyramid": True},
            "reject",
            "daily loss breaker: realised today -900.00 USD <= -500.00 USD limit",
            "200",
        ),
        ("pool full", {"pool_open": 10}, "queue", "pool full (10/10)", "200"),
        ("pool has room", {"pool_open": 9}, "accept", "ok", "200"),
        ("pyramid bypasses full pool", {"pool_open": 10, "is_pyramid": True}, "accept", "ok", "200"),
        (
            "pyramid without bypass waits",
            {"pool_open": 10, "is_pyramid": True, "pool_bypass": False},
            "queue",
            "pool full (10/10)",
            "200",
        ),
        (
            "exposure shrinks capital",
            {"open_exposure_usd": D(9900)},
            "accept",
            "capital shrunk from 200.00 to 100.00 USD",
            "100",
        ),
        ("exactly at headroom", {"open_exposure_usd": D(9800)}, "accept", "ok", "200"),
        (
            "no headroom",
            {"open_exposure_usd": D(10000)},
            "reject",
            "no exposure headroom (open 10000.00 of 10000.00 USD max)",
            "200",
        ),
        ("over the cap", {"open_exposure_usd": D(12000)}, "reject", "no exposure headroom", "200"),
        (
            "pyramid shrinks too",
            {"open_exposure_usd": D(9950), "is_pyramid": True},
            "accept",
            "capital shrunk",
            "50",
        ),
    ],
)
def test_check_entry_branches(
    case: str, overrides: dict[str, Any], action: str, reason_part: str, capital: str
) -> None:
    # Given the baseline with one condition changed / When checked
    decision = run(**overrides)
    # Then the action, reason and capital are as the rule says
    assert decision.action == action, case
    assert reason_part in decision.reason, case
    assert decision.capital_usd == D(capital), case
    assert decision.accepted is (action == "accept")


@pytest.mark.parametrize(
    ("case", "overrides", "reason_part"),
    [
        # config problem beats everything
        (
            "config before paused",
            {"config_problem": "bad config", "engine": {"paused": True}, "open_on_symbol": 9},
            "bad config",
        ),
        ("paused before symbol limit", {"engine": {"paused": True}, "open_on_symbol": 9}, "engine paused"),
        # a signal that can never open is rejected, not queued
        (
            "symbol limit before breaker and pool",
            {"open_on_symbol": 3, "realized_today_usd": D(-600), "pool_open": 10},
            "per symbol",
        ),
        ("breaker before pool", {"realized_today_usd": D(-600), "pool_open": 10}, "daily loss breaker"),
        ("pool before exposure", {"pool_open": 10, "open_exposure_usd": D(10000)}, "pool full"),
    ],
)
def test_check_entry_order_of_checks(case: str, overrides: dict[str, Any], reason_part: str) -> None:
    # Given several failing conditions at once / Then the earliest check in the documented order wins
    assert reason_part in run(**overrides).reason, case


def test_pool_limit_reads_the_configured_maximum() -> None:
    decision = run(pool_open=3, pool_max=3)
    assert (decision.action, decision.reason) == ("queue", "pool full (3/3)")


def test_symbol_limit_reads_the_engine_config() -> None:
    assert run(open_on_symbol=1, engine={"max_open_per_symbol": 1}).action == "reject"
    assert run(open_on_symbol=0, engine={"max_open_per_symbol": 1}).action == "accept"


@pytest.mark.parametrize(
    ("max_total", "open_exposure", "expected"),
    [("10000", "0", "10000"), ("10000", "9800", "200"), ("10000", "10000", "0"), ("10000", "12000", "0")],
)
def test_exposure_headroom_never_negative(max_total: str, open_exposure: str, expected: str) -> None:
    assert exposure_headroom(D(max_total), D(open_exposure)) == D(expected)


@pytest.mark.parametrize(
    ("limit", "realized", "expected"),
    [
        ("500", "0", False),
        ("500", "-499.99", False),
        ("500", "-500", True),
        ("500", "-501", True),
        ("500", "300", False),
        ("0", "0", False),  # a zero limit trips on a loss, not on a flat day
        ("0", "-0.01", True),
    ],
)
def test_breaker_tripped(limit: str, realized: str, expected: bool) -> None:
    engine = EngineConfig(max_daily_loss_usd=D(limit))
    assert breaker_tripped(engine, D(realized)) is expected


@pytest.mark.parametrize(
    ("document_paused", "operator_paused", "reason"),
    [
        (False, False, None),
        (True, False, "engine paused"),
        (False, True, "engine paused by the operator"),
        (True, True, "engine paused"),
    ],
)
def test_the_operator_pause_refuses_like_the_document(
    document_paused: bool, operator_paused: bool, reason: str | None
) -> None:
    # Given the engine document's pause and the operator's control item, when an entry or a pyramid
    # is checked, then either pause rejects it (the document's reason first).
    for pyramid in (False, True):
        decision = run(
            engine={"paused": document_paused}, operator_paused=operator_paused, is_pyramid=pyramid
        )
        if reason is None:
            assert decision.action == "accept"
        else:
            assert (decision.action, decision.reason) == ("reject", reason)
