"""Queue rules (DESIGN §3.6): re-queue decisions, replacement, adverse move, promotion order, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.config import QUEUE_RULE_NAMES, QueueRule
from engine.domain.models import QueueEntry, Side
from engine.domain.queue import (
    QueueDecision,
    adverse_move,
    decide_requeue,
    is_expired,
    promotion_order,
    replace_entry,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ALL_RULES = [QueueRule(name=name) for name in QUEUE_RULE_NAMES]


def entry(
    entry_id: str,
    *,
    symbol: str = "BTC/USDT",
    side: Side = Side.LONG,
    entry_price: str = "100",
    candle: int = 1,
    minutes_ago: int = 0,
    replacements: int = 0,
    pyramid: bool = False,
) -> QueueEntry:
    queued_at = T0 - timedelta(minutes=minutes_ago)
    return QueueEntry(
        id=entry_id,
        exchange="binance",
        symbol=symbol,
        timeframe=60,
        side=side,
        entry_price=Decimal(entry_price),
        candle=candle,
        payload={"candle": candle},
        queued_at=queued_at,
        updated_at=queued_at,
        replacement_count=replacements,
        pyramid_continuation=pyramid,
    )


def rules(*spec: str) -> list[QueueRule]:
    """Rules in the given order; a name prefixed with '-' is listed but disabled."""
    return [QueueRule(name=name.lstrip("-"), enabled=not name.startswith("-")) for name in spec]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- re-queue decisions


@pytest.mark.parametrize(
    ("queued_candle", "new_candle", "expected"),
    [
        (None, 5, QueueDecision.NEW),
        (5, 6, QueueDecision.REPLACE),
        (5, 5, QueueDecision.DUPLICATE),
        (5, 4, QueueDecision.DUPLICATE),  # stale, out-of-order signal never overwrites a newer one
    ],
)
def test_decide_requeue(queued_candle: int | None, new_candle: int, expected: QueueDecision) -> None:
    # Given an entry queued for the key in `queued_candle` (or none)
    existing = None if queued_candle is None else entry("q1", candle=queued_candle)
    # When a signal of `new_candle` arrives / Then
    assert decide_requeue(existing, new_candle) is expected


def test_replace_entry_keeps_identity_and_queued_at_and_counts() -> None:
    # Given an entry queued 30 minutes ago, replaced once before
    original = entry("q1", entry_price="100", candle=5, minutes_ago=30, replacements=1, pyramid=True)
    # When a later candle replaces it
    replaced = replace_entry(original, entry_price=Decimal("95"), candle=6, payload={"n": 2}, now=T0)
    # Then price, candle and payload are new, count grows, id and queued_at are kept
    assert replaced.id == "q1"
    assert replaced.entry_price == Decimal("95")
    assert replaced.candle == 6
    assert replaced.payload == {"n": 2}
    assert replaced.replacement_count == 2
    assert replaced.queued_at == original.queued_at
    assert replaced.updated_at == T0
    assert replaced.pyramid_continuation is True
    # and the original is untouched
    assert original.replacement_count == 1 and original.entry_price == Decimal("100")


# --------------------------------------------------------------------------- adverse move


@pytest.mark.parametrize(
    ("side", "entry_price", "price", "expected"),
    [
        (Side.LONG, "100", "90", "-0.1"),
        (Side.LONG, "100", "110", "0"),
        (Side.LONG, "100", "100", "0"),
        (Side.SHORT, "100", "110", "-0.1"),
        (Side.SHORT, "100", "90", "0"),
        (Side.LONG, "0", "90", "0"),
    ],
)
def test_adverse_move_is_a_non_positive_fraction(
    side: Side, entry_price: str, price: str, expected: str
) -> None:
    queued = entry("q", side=side, entry_price=entry_price)
    assert adverse_move(queued, Decimal(price)) == Decimal(expected)


# --------------------------------------------------------------------------- promotion order

# a: pyramid continuation, fresh, no replacement, small loss
# b: deep loss, oldest
# c: most replaced, no loss
SCENARIO = [
    entry("a", symbol="A/USDT", entry_price="100", minutes_ago=10, replacements=0, pyramid=True),
    entry("b", symbol="B/USDT", entry_price="100", minutes_ago=60, replacements=1),
    entry("c", symbol="C/USDT", entry_price="100", minutes_ago=30, replacements=3),
]
SCENARIO_PRICES = {
    ("binance", "A/USDT"): Decimal("99"),
    ("binance", "B/USDT"): Decimal("80"),
    ("binance", "C/USDT"): Decimal("120"),
}


@pytest.mark.parametrize(
    ("rule_spec", "expected"),
    [
        (("pyramid_continuation", "deepest_loss", "replacement_count", "oldest"), ["a", "b", "c"]),
        (("deepest_loss", "pyramid_continuation", "replacement_count", "oldest"), ["b", "a", "c"]),
        (("replacement_count", "deepest_loss", "pyramid_continuation", "oldest"), ["c", "b", "a"]),
        (("oldest", "pyramid_continuation", "deepest_loss", "replacement_count"), ["b", "c", "a"]),
        (("-pyramid_continuation", "deepest_loss", "replacement_count", "oldest"), ["b", "a", "c"]),
        (("-pyramid_continuation", "-deepest_loss", "replacement_count", "oldest"), ["c", "b", "a"]),
        (("-pyramid_continuation", "-deepest_loss", "-replacement_count", "oldest"), ["b", "c", "a"]),
        # everything disabled: the queue id alone decides
        (("-pyramid_continuation", "-deepest_loss", "-replacement_count", "-oldest"), ["a", "b", "c"]),
        ((), ["a", "b", "c"]),
    ],
)
def test_promotion_order_follows_enabled_rules_in_configured_order(
    rule_spec: tuple[str, ...], expected: list[str]
) -> None:
    # Given three queued entries that each win on a different rule
    # When ordered with the rules as configured
    ordered = promotion_order(reversed(SCENARIO), rules(*rule_spec), SCENARIO_PRICES)
    # Then the first enabled rule that differs decides
    assert [e.id for e in ordered] == expected


def test_deepest_loss_treats_a_missing_price_as_no_move() -> None:
    # Given one entry without a price and one slightly under water
    entries = [entry("x", symbol="X/USDT"), entry("y", symbol="Y/USDT")]
    prices = {("binance", "Y/USDT"): Decimal("99.9")}
    # When ordered by deepest loss only / Then the priced loser comes first
    assert [e.id for e in promotion_order(entries, rules("deepest_loss"), prices)] == ["y", "x"]
    # and with no prices at all the id decides
    assert [e.id for e in promotion_order(entries[::-1], rules("deepest_loss"), {})] == ["x", "y"]


def test_deepest_loss_mirrors_for_shorts() -> None:
    # Given a short whose price rose 5 % and a long whose price fell 2 %
    short = entry("s", symbol="S/USDT", side=Side.SHORT, entry_price="100")
    long = entry("l", symbol="L/USDT", side=Side.LONG, entry_price="100")
    prices = {("binance", "S/USDT"): Decimal("105"), ("binance", "L/USDT"): Decimal("98")}
    # Then the short has the deeper adverse move
    assert [e.id for e in promotion_order([long, short], rules("deepest_loss"), prices)] == ["s", "l"]


# Hypothesis: strict total order consistent with the enabled rules

entry_strategy = st.builds(
    lambda i, sym, side, price, minutes, replacements, pyramid: entry(
        f"q{i:03d}",
        symbol=sym,
        side=side,
        entry_price=price,
        minutes_ago=minutes,
        replacements=replacements,
        pyramid=pyramid,
    ),
    st.integers(0, 999),
    st.sampled_from(["A/USDT", "B/USDT", "C/USDT"]),
    st.sampled_from([Side.LONG, Side.SHORT]),
    st.sampled_from(["90", "100", "110"]),
    st.integers(0, 3),
    st.integers(0, 2),
    st.booleans(),
)
entries_strategy = st.lists(entry_strategy, max_size=8, unique_by=lambda e: e.id)
rules_strategy = st.permutations(list(QUEUE_RULE_NAMES)).flatmap(
    lambda names: st.lists(st.booleans(), min_size=4, max_size=4).map(
        lambda flags: [QueueRule(name=n, enabled=f) for n, f in zip(names, flags, strict=True)]
    )
)
prices_strategy = st.fixed_dictionaries(
    {},
    optional={
        ("binance", sym): st.sampled_from([Decimal("85"), Decimal("100"), Decimal("104")])
        for sym in ("A/USDT", "B/USDT", "C/USDT")
    },
)


def _rule_value(rule: str, e: QueueEntry, prices: dict[tuple[str, str], Decimal]) -> object:
    """Independent restatement of each rule: smaller value = promoted first."""
    if rule == "pyramid_continuation":
        return not e.pyramid_continuation
    if rule == "deepest_loss":
        price = prices.get((e.exchange, e.symbol))
        if price is None:
            return Decimal(0)
        move = (price - e.entry_price) / e.entry_price
        if e.side == Side.SHORT:
            move = -move
        return min(move, Decimal(0))
    if rule == "replacement_count":
        return -e.replacement_count
    return e.queued_at


@given(entries=entries_strategy, queue_rules=rules_strategy, prices=prices_strategy, data=st.data())
def test_promotion_order_is_a_strict_total_order_consistent_with_rules(
    entries: list[QueueEntry],
    queue_rules: list[QueueRule],
    prices: dict[tuple[str, str], Decimal],
    data: st.DataObject,
) -> None:
    ordered = promotion_order(entries, queue_rules, prices)
    # Any permutation of the input gives the same order
    shuffled = data.draw(st.permutations(entries))
    assert [e.id for e in promotion_order(shuffled, queue_rules, prices)] == [e.id for e in ordered]
    # For each adjacent pair the first enabled rule that differs decides, else the id
    enabled = [rule.name for rule in queue_rules if rule.enabled]
    for first, second in pairwise(ordered):
        for rule in enabled:
            a, b = _rule_value(rule, first, prices), _rule_value(rule, second, prices)
            if a != b:
                assert a < b  # type: ignore[operator]
                break
        else:
            assert first.id < second.id


# --------------------------------------------------------------------------- expiry


@pytest.mark.parametrize(
    ("age_minutes", "max_age", "expected"),
    [(0, 1440, False), (1439, 1440, False), (1440, 1440, False), (1441, 1440, True), (61, 60, True)],
)
def test_is_expired_after_max_age(age_minutes: int, max_age: int, expected: bool) -> None:
    queued = entry("q", minutes_ago=age_minutes)
    assert is_expired(queued, T0, max_age) is expected


def test_expiry_counts_from_the_latest_replacement() -> None:
    # Given an entry first queued two days ago but replaced a minute ago
    original = entry("q", minutes_ago=2 * 1440, candle=1)
    replaced = replace_entry(
        original, entry_price=Decimal(99), candle=2, payload={}, now=T0 - timedelta(minutes=1)
    )
    # Then its fresh signal is not expired, while the un-replaced one is
    assert is_expired(original, T0, 1440) is True
    assert is_expired(replaced, T0, 1440) is False
