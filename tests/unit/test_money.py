"""Decimal conversion and rounding to exchange increments."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.money import on_increment, plain, round_down, round_nearest, to_decimal

D = Decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1.50"), D("1.50")),
        ("0.1", D("0.1")),
        (" 42 ", D("42")),
        (7, D("7")),
        (0.1, D("0.1")),  # via str: not 0.1000000000000000055511151231257827
        (64000.5, D("64000.5")),
        ("-3.25", D("-3.25")),
    ],
)
def test_to_decimal_converts_exactly(value, expected):
    # Given a str/int/float/Decimal, When converted, Then the exact decimal comes out
    result = to_decimal(value)
    assert result == expected
    assert isinstance(result, Decimal)


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-Infinity", float("nan"), float("inf"), "abc", "", True, None]
)
def test_to_decimal_rejects_non_finite_and_garbage(value):
    with pytest.raises(ValueError):
        to_decimal(value)


@pytest.mark.parametrize(
    ("value", "increment", "down", "nearest"),
    [
        ("63680.4975", "0.01", "63680.49", "63680.50"),
        ("64000.5", "0.01", "64000.50", "64000.50"),
        ("0.000624995", "0.00001", "0.00062", "0.00062"),
        ("1.25", "0.5", "1.0", "1.5"),  # exact half goes up
        ("1.24", "0.5", "1.0", "1.0"),
        ("64003", "10", "64000", "64000"),
        ("64005", "10", "64000", "64010"),
        ("-1.005", "0.01", "-1.01", "-1.01"),
    ],
)
def test_rounding_table(value, increment, down, nearest):
    assert round_down(D(value), D(increment)) == D(down)
    assert round_nearest(D(value), D(increment)) == D(nearest)


def test_rounded_values_keep_the_increment_decimals():
    # Then stored strings look like prices, never exponents
    assert str(round_down(D("64000"), D("0.01"))) == "64000.00"
    assert str(round_down(D("0.000654"), D("0.00001"))) == "0.00065"


@pytest.mark.parametrize("increment", ["0", "-0.01"])
def test_rounding_rejects_non_positive_increment(increment):
    with pytest.raises(ValueError):
        round_down(D("1"), D(increment))
    with pytest.raises(ValueError):
        round_nearest(D("1"), D(increment))
    with pytest.raises(ValueError):
        on_increment(D("1"), D(increment))


@pytest.mark.parametrize(
    ("value", "increment", "expected"),
    [("64000.50", "0.01", True), ("64000.505", "0.01", False), ("1.5", "0.5", True), ("0", "0.1", True)],
)
def test_on_increment(value, increment, expected):
    assert on_increment(D(value), D(increment)) is expected


@pytest.mark.parametrize(
    ("value", "text"), [(D("-1.0"), "-1"), (D("1E+1"), "10"), (D("0.00010"), "0.0001"), (D("-0"), "0")]
)
def test_plain_formatting(value, text):
    assert plain(value) == text


@given(
    st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8),
    st.sampled_from([D("0.01"), D("0.5"), D("0.00001"), D("1"), D("10")]),
)
def test_round_down_is_the_largest_multiple_not_above(value, increment):
    result = round_down(value, increment)
    assert on_increment(result, increment)
    assert result <= value < result + increment
    nearest = round_nearest(value, increment)
    assert on_increment(nearest, increment)
    assert abs(nearest - value) <= increment / 2
