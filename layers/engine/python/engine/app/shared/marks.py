"""Open groups marked to the stored prices, for readers that need a current unrealised PnL.

Groups are not saved on price ticks (:mod:`engine.domain.marks`), so their stored mark is the one of
their last real change; the risk engine, the equity point and the operator views mark them here, from
the prices table (one read per market). A group without a stored price keeps its stored mark; a closed
or failed group keeps the mark it ended with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal

from engine.app.context import Stores
from engine.domain.marks import mark_to_market
from engine.domain.models import Group

__all__ = ["marked", "marked_all"]


def marked_all(stores: Stores, groups: Iterable[Group]) -> list[Group]:
    """``groups`` in order, the open ones with figures marked at their market's stored price."""
    prices: dict[tuple[str, str], Decimal | None] = {}
    result: list[Group] = []
    for group in groups:
        if not group.is_open:
            result.append(group)
            continue
        market = (group.exchange, group.symbol)
        if market not in prices:
            prices[market] = stores.prices.get(*market)
        result.append(_mark(group, prices[market]))
    return result


def marked(stores: Stores, group: Group) -> Group:
    """One group marked like :func:`marked_all`."""
    return marked_all(stores, [group])[0]


def _mark(group: Group, price: Decimal | None) -> Group:
    if price is None:
        return group
    return dataclasses.replace(group, figures=mark_to_market(group.figures, group.side, price))
