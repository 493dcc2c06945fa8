"""DCA grid math (DESIGN §3.3)."""

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.config import DcaConfig, DcaLevel, DcaPyramid
from engine.domain.grid import (
    GridRejected,
    LegPlan,
    build_grid,
    pyramid_settings,
    resolve_capital,
    trigger_reached,
)
from engine.domain.models import MarketPrecision, OrderType, Side
from engine.domain.money import on_increment

D = Decimal
BTC = MarketPrecision(
    symbol="BTC/USDT", tick=D("0.01"), step=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5")
)


def level(gap: str, weight: str = "20", tp: str = "0.5") -> DcaLevel:
    return DcaLevel(gap_percent=D(gap), weight_percent=D(weight), tp_percent=D(tp))


def grid(**overrides):
    arguments: dict[str, Any] = {
        "side": Side.LONG,
        "pyramid": 1,
        "entry_price": D("64000.5"),
        "capital_usd": D("200"),
        "levels": DcaConfig().levels,
        "precision": BTC,
        "entry_order_type": OrderType.LIMIT,
    }
    arguments.update(overrides)
    return build_grid(**arguments)


# (leg, price, amount, gap, tp) of the shipped default grid, 200 USD long at 64000.5
DEFAULT_LONG = [
    (1, "64000.50", "0.00062", "0", "1"),  # 40 / 64000.5 = 0.000624995 -> 0.00062
    (2, "63680.49", "0.00062", "-0.5", "0.5"),  # 63680.4975 -> 63680.49
    (3, "63360.49", "0.00063", "-1", "0.5"),  # 63360.495 -> 63360.49
    (4, "62720.49", "0.00063", "-2", "0.5"),
    (5, "61440.48", "0.00065", "-4", "0.5"),
]


def test_default_grid_long_limit_has_exact_legs():
    # Given the shipped default levels, 200 USD at 64000.5 on BTC/USDT
    plan = grid()
    # Then every leg is a limit buy at its rounded-down price and quantity
    assert plan.pyramid == 1
    assert plan.capital_usd == D("200")
    assert [(leg.leg, leg.price, leg.amount, leg.gap_percent, leg.tp_percent) for leg in plan.legs] == [
        (n, D(p), D(a), D(g), D(t)) for n, p, a, g, t in DEFAULT_LONG
    ]
    assert all(leg.type == OrderType.LIMIT and leg.trigger_price is None for leg in plan.legs)
    assert all(leg.weight_percent == D("20") for leg in plan.legs)
    assert plan.total_cost == sum(D(p) * D(a) for _, p, a, _, _ in DEFAULT_LONG)
    assert plan.total_cost == D("198.5295432")
    assert plan.legs[0].notional == D("64000.50") * D("0.00062")


def test_short_grid_mirrors_prices_above_the_entry():
    # Given a short, negative gaps are adverse: above the entry
    plan = grid(side=Side.SHORT)
    assert [(leg.price, leg.amount) for leg in plan.legs] == [
        (D("64000.50"), D("0.00062")),
        (D("64320.51"), D("0.00062")),  # 64000.5 * 1.005 = 64320.5025 -> up: a short sells no lower
        (D("64640.51"), D("0.00061")),  # 64640.505 -> up
        (D("65280.51"), D("0.00061")),
        (D("66560.52"), D("0.00060")),
    ]


def test_market_entry_sends_non_negative_gaps_now_and_triggers_the_rest():
    levels = [level("0.5", "20"), level("0", "40"), level("-1", "40")]
    plan = grid(levels=levels, entry_order_type=OrderType.MARKET)
    assert all(leg.type == OrderType.MARKET for leg in plan.legs)
    # gap >= 0: sent at once, price kept as the cost reference
    assert plan.legs[0].trigger_price is None and plan.legs[0].price == D("64320.50")
    assert plan.legs[1].trigger_price is None and plan.legs[1].price == D("64000.50")
    # gap < 0: waits for the market to reach its computed price
    assert plan.legs[2].trigger_price == plan.legs[2].price == D("63360.49")


def test_short_market_entry_triggers_above():
    plan = grid(side=Side.SHORT, levels=[level("0", "50"), level("-2", "50")], entry_order_type="market")
    assert plan.legs[0].trigger_price is None
    assert plan.legs[1].trigger_price == D("65280.51")


@pytest.mark.parametrize(
    ("overrides", "leg", "reason"),
    [
        (
            {"capital_usd": D("20")},
            1,
            "leg 1 (gap 0%): value 3.84003 is below the minimum notional 5 for BTC/USDT",
        ),
        (
            {
                "capital_usd": D("100"),
                "levels": [level("0", "50"), level("-0.5", "45"), level("-1", "5")],
            },
            3,
            # 5 USD / 63360.49 = 0.0000789 -> 0.00007; 0.00007 * 63360.49 = 4.4352343
            "leg 3 (gap -1%): value 4.4352343 is below the minimum notional 5 for BTC/USDT",
        ),
        (
            {
                "precision": MarketPrecision("BTC/USDT", D("0.01"), D("0.00001"), D("0.0001"), D("0")),
                "capital_usd": D("100"),
                "levels": [level("0", "50"), level("-0.5", "49.5"), level("-1", "0.5")],
            },
            3,
            "leg 3 (gap -1%): quantity 0 is below the minimum 0.0001 for BTC/USDT",
        ),
        (
            {
                "precision": MarketPrecision("BTC/USDT", D("0.01"), D("0.00001"), D("0.0001"), D("0")),
                "capital_usd": D("400"),
                "levels": [level("0", "99"), level("-1", "1")],
            },
            2,
            "leg 2 (gap -1%): quantity 0.00006 is below the minimum 0.0001 for BTC/USDT",
        ),
        (
            {"levels": [level("0", "50"), level("-150", "50")]},
            2,
            "leg 2 (gap -150%): price -32000.25 is not positive",
        ),
        ({"capital_usd": D("0")}, 1, "leg 1 (gap 0%): quantity 0 is below the minimum 0.00001 for BTC/USDT"),
    ],
)
def test_a_leg_under_the_minimums_rejects_the_whole_pyramid_naming_it(overrides, leg, reason):
    with pytest.raises(GridRejected) as caught:
        grid(**overrides)
    assert caught.value.leg == leg
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_grid_without_levels_or_entry_price_is_rejected():
    with pytest.raises(GridRejected):
        grid(levels=[])
    with pytest.raises(GridRejected, match="entry price 0 is not positive"):
        grid(entry_price=D("0"))


def test_pyramid_settings_use_overrides_per_pyramid():
    own_levels = [level("0", "50", "2"), level("-3", "50", "1")]
    dca = DcaConfig(
        pyramids=[DcaPyramid(capital_usd=D("50")), DcaPyramid(levels=own_levels), DcaPyramid()],
    )
    default_levels = dca.levels
    # pyramid 1: capital override only
    assert pyramid_settings(dca, 1) == (default_levels, D("50"))
    # pyramid 2: own levels, no capital override
    assert pyramid_settings(dca, 2) == (own_levels, None)
    # pyramid 3: empty override; pyramid 4: none configured
    assert pyramid_settings(dca, 3) == (default_levels, None)
    assert pyramid_settings(dca, 4) == (default_levels, None)
    with pytest.raises(ValueError):
        pyramid_settings(dca, 0)


def test_pyramid_override_levels_build_their_own_grid():
    dca = DcaConfig(
        pyramids=[DcaPyramid(), DcaPyramid(levels=[level("0", "50", "2"), level("-3", "50", "1")])]
    )
    levels, _ = pyramid_settings(dca, 2)
    plan = grid(pyramid=2, levels=levels, entry_price=D("100"), capital_usd=D("100"))
    assert plan.pyramid == 2
    assert [(leg.price, leg.amount, leg.tp_percent) for leg in plan.legs] == [
        (D("100.00"), D("0.5"), D("2")),
        (D("97.00"), D("0.51546"), D("1")),
    ]


@pytest.mark.parametrize(
    ("signal", "override", "default", "headroom", "expected"),
    [
        ("300", "50", "200", "10000", "300"),  # signal wins
        (None, "50", "200", "10000", "50"),  # then the pyramid override
        (None, None, "200", "10000", "200"),  # then the document default
        ("300", None, "200", "120", "120"),  # shrunk to the headroom
        (None, None, "200", "-5", "0"),  # never negative
    ],
)
def test_resolve_capital_precedence_and_headroom(signal, override, default, headroom, expected):
    capital = resolve_capital(
        signal_capital=None if signal is None else D(signal),
        override_capital=None if override is None else D(override),
        default_capital=D(default),
        headroom_usd=D(headroom),
    )
    assert capital == D(expected)


@pytest.mark.parametrize(
    ("side", "trigger", "price", "reached"),
    [
        (Side.LONG, "100", "100", True),
        (Side.LONG, "100", "99.99", True),
        (Side.LONG, "100", "100.01", False),
        (Side.SHORT, "100", "100", True),
        (Side.SHORT, "100", "100.01", True),
        (Side.SHORT, "100", "99.99", False),
    ],
)
def test_trigger_reached(side, trigger, price, reached):
    assert trigger_reached(side, D(trigger), D(price)) is reached


def test_leg_plan_is_frozen():
    leg = LegPlan(1, D("1"), D("2"), D("0"), D("100"), D("1"), OrderType.LIMIT)
    with pytest.raises(AttributeError):
        leg.price = D("3")  # type: ignore[misc]


@st.composite
def grids(draw):
    count = draw(st.integers(min_value=1, max_value=6))
    cuts = sorted(draw(st.lists(st.integers(1, 9999), min_size=count - 1, max_size=count - 1, unique=True)))
    bounds = [0, *cuts, 10000]
    weights = [D(b - a) / 100 for a, b in itertools.pairwise(bounds)]
    gaps = draw(st.lists(st.decimals(D("-50"), D("10"), places=2), min_size=count, max_size=count))
    levels = [
        DcaLevel(gap_percent=g, weight_percent=w, tp_percent=D("1"))
        for g, w in zip(gaps, weights, strict=True)
    ]
    return {
        "side": draw(st.sampled_from(list(Side))),
        "entry_price": draw(st.decimals(D("0.01"), D("100000"), places=2)),
        "capital_usd": draw(st.decimals(D("1"), D("100000"), places=2)),
        "levels": levels,
        "precision": MarketPrecision(
            "X/USDT",
            draw(st.sampled_from([D("0.01"), D("0.5"), D("0.0001")])),
            draw(st.sampled_from([D("0.00001"), D("0.001"), D("1")])),
            D("0"),
            D("0"),
        ),
        "entry_order_type": draw(st.sampled_from(list(OrderType))),
    }


@given(grids())
def test_property_grid_never_costs_more_than_its_capital_and_sits_on_increments(arguments):
    try:
        plan = grid(**arguments)
    except GridRejected as rejected:
        assert rejected.leg is not None and f"leg {rejected.leg} " in rejected.reason
        return
    precision = arguments["precision"]
    assert plan.total_cost <= arguments["capital_usd"]
    for leg in plan.legs:
        assert leg.price > 0 and leg.amount > 0
        assert on_increment(leg.price, precision.tick)
        assert on_increment(leg.amount, precision.step)
        assert leg.notional <= arguments["capital_usd"] * leg.weight_percent / 100
