"""Per-account counters (DESIGN §1 "Cost per signal is constant"): what one group counts, and deltas.

Counter items (keys built here, stored by ``engine.store.counters``):

- ``acct#<account>``: open groups and committed exposure (USD) of the account;
- ``sym#<account>#<symbol>``: open groups of the account on that symbol (the per-symbol limit, §3.7);
- ``day#<account>#<UTC date>``: realised PnL booked to that UTC day (the daily loss breaker).

A group's :class:`Counted` is what it adds to those counters: while open (live / partially_filled /
active / closing) one open group and the capital of every accepted pyramid (``Pyramid.capital_usd``:
committed when accepted, released when the group closes or fails); always, its realised PnL per UTC day
of the fills (``figures.realized_by_day``). Every write that changes a group adds
:func:`counter_deltas` ``(counted as read, counted as written)`` to the counters in the same
version-checked transaction, so a replay (whose figures are already the stored ones) adds zero.

Decisions written down here:

- The account of a group is its exchange name (lower case): DESIGN §3.10 "account name = exchange
  name" for single-account configurations; a group's own account field slots in here later.
- Exposure is the committed capital, not what is held: partial closes (take-profits, a risk winner's
  partial close) keep the group's exposure until it closes, as a slot is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.models import OPEN_GROUP_STATUSES, ZERO, Counted, Group, GroupStatus

ACCOUNT_PREFIX = "acct#"
SYMBOL_PREFIX = "sym#"
DAY_PREFIX = "day#"

__all__ = [
    "Counted",
    "CounterDelta",
    "account_of",
    "account_pk",
    "counted_of",
    "counter_deltas",
    "day_pk",
    "merge_deltas",
    "recount",
    "symbol_pk",
]


def account_of(exchange: str) -> str:
    """The account a group of ``exchange`` belongs to (single-account: the exchange name, lower case)."""
    return exchange.strip().lower()


def account_pk(account: str) -> str:
    """Counter item of ``account``: open groups and committed exposure."""
    return f"{ACCOUNT_PREFIX}{account}"


def symbol_pk(account: str, symbol: str) -> str:
    """Counter item of ``account``'s open groups on ``symbol`` (any timeframe, either side)."""
    return f"{SYMBOL_PREFIX}{account}#{symbol}"


def day_pk(account: str, day: str) -> str:
    """Counter item of ``account``'s realised PnL booked on UTC ``day`` (``YYYY-MM-DD``)."""
    return f"{DAY_PREFIX}{account}#{day}"


def counted_of(group: Group) -> Counted:
    """The counters' share of ``group`` as it is now (see the module doc)."""
    is_open = GroupStatus(group.status) in OPEN_GROUP_STATUSES
    exposure = sum((p.capital_usd for p in group.pyramids), ZERO) if is_open else ZERO
    return Counted(
        account=account_of(group.exchange),
        symbol=group.symbol,
        open_groups=1 if is_open else 0,
        exposure_usd=exposure,
        realized_by_day={day: value for day, value in group.figures.realized_by_day.items() if value},
    )


@dataclass(frozen=True)
class CounterDelta:
    """A change to one counter item (zero fields change nothing)."""

    open_groups: int = 0
    exposure_usd: Decimal = ZERO
    realized_usd: Decimal = ZERO

    def __add__(self, other: CounterDelta) -> CounterDelta:
        return CounterDelta(
            self.open_groups + other.open_groups,
            self.exposure_usd + other.exposure_usd,
            self.realized_usd + other.realized_usd,
        )

    def __neg__(self) -> CounterDelta:
        return CounterDelta(-self.open_groups, -self.exposure_usd, -self.realized_usd)

    @property
    def is_zero(self) -> bool:
        """True when applying it changes nothing."""
        return self.open_groups == 0 and self.exposure_usd == ZERO and self.realized_usd == ZERO


def _items(counted: Counted) -> dict[str, CounterDelta]:
    items = {
        account_pk(counted.account): CounterDelta(counted.open_groups, counted.exposure_usd),
        symbol_pk(counted.account, counted.symbol): CounterDelta(open_groups=counted.open_groups),
    }
    for day, value in counted.realized_by_day.items():
        items[day_pk(counted.account, day)] = CounterDelta(realized_usd=value)
    return items


def merge_deltas(parts: Iterable[Mapping[str, CounterDelta]]) -> dict[str, CounterDelta]:
    """Sum deltas per counter item (a transaction may touch an item once: net deltas), zeros dropped."""
    merged: dict[str, CounterDelta] = {}
    for part in parts:
        for pk, delta in part.items():
            merged[pk] = merged.get(pk, CounterDelta()) + delta
    return {pk: delta for pk, delta in merged.items() if not delta.is_zero}


def counter_deltas(old: Counted | None, new: Counted | None) -> dict[str, CounterDelta]:
    """Per counter item, new - old (None = the group did not exist / is gone); zero deltas omitted."""
    parts: list[dict[str, CounterDelta]] = []
    if new is not None:
        parts.append(_items(new))
    if old is not None:
        parts.append({pk: -delta for pk, delta in _items(old).items()})
    return merge_deltas(parts)


def recount(groups: Iterable[Group], day: str) -> dict[str, CounterDelta]:
    """Counter values recomputed from ``groups``: every account/symbol item they open, and ``day``'s.

    ``groups`` must hold the open book plus every group that realised PnL on ``day``; values of other
    days are left out (the reconciliation checks today's item only).
    """
    parts: list[dict[str, CounterDelta]] = []
    for group in groups:
        counted = counted_of(group)
        parts.append(
            {
                pk: delta
                for pk, delta in _items(counted).items()
                if not pk.startswith(DAY_PREFIX) or pk == day_pk(counted.account, day)
            }
        )
    totals: dict[str, CounterDelta] = {}
    for part in parts:
        for pk, delta in part.items():
            totals[pk] = totals.get(pk, CounterDelta()) + delta
    return totals
