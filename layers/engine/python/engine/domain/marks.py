"""Marking a group to the market, and telling a real change of a group from price noise (DESIGN §1).

A group is saved only when something other than its mark changed: the mark is the unrealised PnL (USD
and percent) and the price it was computed at (``last_price``). Those move on every price tick, so
saving them would put price noise on the groups stream; readers that need a current mark (the risk
engine, the equity point, the operator views) recompute it with :func:`mark_to_market` from the
stored price instead.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from engine.domain.models import ZERO, Group, GroupFigures, Side

__all__ = ["MARK_FIELDS", "mark_to_market", "materially_changed"]

#: The figures that follow the price alone.
MARK_FIELDS = ("unrealized_pnl_usd", "unrealized_pnl_percent", "last_price")

_HUNDRED = Decimal(100)


def mark_to_market(figures: GroupFigures, side: Side, price: Decimal | None) -> GroupFigures:
    """``figures`` with the unrealised PnL recomputed at ``price`` (unchanged when ``price`` is None).

    Same formula as :func:`engine.domain.accounting.compute_figures`: sign * (price - avg) * held, and
    the percent of the invested amount.
    """
    if price is None:
        return figures
    held = figures.quantity
    unrealized = ZERO
    if held > 0:
        sign = Decimal(1) if side is Side.LONG else Decimal(-1)
        unrealized = sign * (price - figures.avg_entry) * held
    invested = figures.invested_usd
    percent = unrealized / invested * _HUNDRED if invested > 0 else ZERO
    return dataclasses.replace(
        figures, unrealized_pnl_usd=unrealized, unrealized_pnl_percent=percent, last_price=price
    )


def _without_mark(group: Group) -> Group:
    figures = dataclasses.replace(
        group.figures, unrealized_pnl_usd=ZERO, unrealized_pnl_percent=ZERO, last_price=None
    )
    return dataclasses.replace(group, figures=figures)


def materially_changed(before: Group, after: Group) -> bool:
    """True when ``after`` differs from ``before`` in anything but the mark (:data:`MARK_FIELDS`)."""
    if before == after:
        return False
    return _without_mark(before) != _without_mark(after)
