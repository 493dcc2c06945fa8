"""Counter deltas (engine.domain.counters): new - old per counter item, so a replay adds zero."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from engine.domain.counters import CounterDelta, counted_of, counter_deltas, recount
from engine.domain.models import GroupFigures, GroupStatus
from tests.support.builders import make_group, make_pyramid

D = Decimal


def test_opening_adds_the_group_and_its_capital_and_a_replay_adds_nothing() -> None:
    # Given an open group with two pyramids of 200 and 100 USD
    group = make_group(
        exchange="Binance",
        symbol="BTC/USDT",
        status=GroupStatus.LIVE,
        pyramids=[make_pyramid(index=1, capital_usd=D(200)), make_pyramid(index=2, capital_usd=D(100))],
    )
    # When it is created, then the account and symbol counters take it
    assert counter_deltas(None, counted_of(group)) == {
        "acct#binance": CounterDelta(1, D(300)),
        "sym#binance#BTC/USDT": CounterDelta(open_groups=1),
    }
    # And writing the same figures again (a replay) changes nothing
    assert counter_deltas(counted_of(group), counted_of(group)) == {}


def test_closing_releases_the_capital_and_books_realised_pnl_per_day() -> None:
    # Given an open group that realised 5 USD yesterday
    before = make_group(
        status=GroupStatus.ACTIVE,
        pyramids=[make_pyramid(capital_usd=D(200))],
        figures=GroupFigures(realized_by_day={"2026-03-01": D(5)}),
    )
    # When it closes with a further 2 USD realised today
    after = dataclasses.replace(
        before,
        status=GroupStatus.CLOSED,
        figures=GroupFigures(realized_by_day={"2026-03-01": D(5), "2026-03-02": D(2)}),
    )
    deltas = counter_deltas(counted_of(before), counted_of(after))
    # Then it leaves the open counters, and only today's day counter moves
    account = counted_of(before).account
    assert deltas == {
        f"acct#{account}": CounterDelta(-1, D(-200)),
        f"sym#{account}#{before.symbol}": CounterDelta(open_groups=-1),
        f"day#{account}#2026-03-02": CounterDelta(realized_usd=D(2)),
    }
    # And a recount of the day sees both groups' shares of that day only
    assert recount([after], "2026-03-02")[f"day#{account}#2026-03-02"] == CounterDelta(realized_usd=D(2))
