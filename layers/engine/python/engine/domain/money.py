"""Exact money arithmetic: conversion to ``Decimal`` and rounding to exchange increments.

Prices, quantities and USD amounts are ``Decimal`` everywhere in the engine. Floats are converted through
their shortest ``str`` form (``0.1`` becomes ``Decimal("0.1")``, not the binary expansion).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["on_increment", "plain", "round_down", "round_nearest", "round_up", "to_decimal"]


def to_decimal(value: Decimal | str | int | float) -> Decimal:
    """Convert ``value`` to a finite ``Decimal``.

    Accepts ``Decimal``, ``str``, ``int`` and ``float`` (floats go through ``str`` so ``0.1`` stays
    ``0.1``). Booleans, NaN, infinities and unparsable strings raise ``ValueError``.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as error:
            raise ValueError(f"not a number: {value!r}") from error
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _check_increment(increment: Decimal) -> None:
    if not increment.is_finite() or increment <= 0:
        raise ValueError(f"increment must be a positive finite number, got {increment}")


def _to_multiple(multiple: Decimal, increment: Decimal) -> Decimal:
    """``multiple * increment`` written with the increment's decimals (``64000.50``, never ``6.40005E+4``)."""
    exponent = min(int(increment.normalize().as_tuple().exponent), 0)
    return (multiple * increment).quantize(Decimal(1).scaleb(exponent))


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    """Round ``value`` down (towards negative infinity) to a multiple of ``increment``.

    Used for leg prices and quantities: never more than asked for, e.g.
    ``round_down(Decimal("63680.4975"), Decimal("0.01")) == Decimal("63680.49")``.
    """
    _check_increment(increment)
    return _to_multiple((value / increment).to_integral_value(rounding=ROUND_FLOOR), increment)


def round_up(value: Decimal, increment: Decimal) -> Decimal:
    """Round ``value`` up (towards positive infinity) to a multiple of ``increment``.

    Used where falling short costs money: a short's entry leg price, a take-profit price, a risk
    winner's close quantity, e.g. ``round_up(Decimal("8.2"), Decimal("1")) == Decimal("9")``.
    """
    _check_increment(increment)
    return _to_multiple((value / increment).to_integral_value(rounding=ROUND_CEILING), increment)


def round_nearest(value: Decimal, increment: Decimal) -> Decimal:
    """Round ``value`` to the nearest multiple of ``increment``; exact halves go away from zero."""
    _check_increment(increment)
    return _to_multiple((value / increment).to_integral_value(rounding=ROUND_HALF_UP), increment)


def on_increment(value: Decimal, increment: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``increment``."""
    _check_increment(increment)
    return value % increment == 0


def plain(value: Decimal) -> str:
    """``value`` as plain text without trailing zeros or exponent (``-1.0`` -> ``-1``, ``1E+1`` -> ``10``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
