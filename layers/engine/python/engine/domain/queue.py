"""Queue rules (DESIGN §3.6): re-queue decisions, replacement, promotion order and expiry.

Pure functions over :class:`~engine.domain.models.QueueEntry`; storage lives in ``engine.store``.

Decisions written down here:

- A signal for a key whose queued entry carries a *later* candle replaces it; the *same* candle is a
  duplicate. A signal from an *earlier* candle than the queued one (delivered out of order) is stale and
  also reported as :attr:`QueueDecision.DUPLICATE` (ignored): it must never overwrite a newer signal.
- :func:`adverse_move` is a **fraction** (``-0.05`` = the price moved 5 % against the entry), never
  positive: a favourable move counts as 0.
- :func:`promotion_order` is a strict total order: the enabled rules in configured order, then the
  queue id. Entries without a known price count as adverse move 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from engine.domain.config import QueueRule
from engine.domain.models import ZERO, QueueEntry, Side


class QueueDecision(StrEnum):
    """What to do with an entry signal that cannot get a pool slot."""

    #: Nothing queued for the key yet: queue it.
    NEW = "new"
    #: A queued entry from an earlier candle exists: replace its price and payload.
    REPLACE = "replace"
    #: Same candle (or a stale, older candle) as the queued entry: ignore the signal.
    DUPLICATE = "duplicate"


def decide_requeue(existing: QueueEntry | None, candle: int) -> QueueDecision:
    """Decide how a new signal of ``candle`` relates to the entry already queued for its key.

    ``None`` -> NEW; later candle -> REPLACE; same or earlier candle -> DUPLICATE (see module doc).
    """
    if existing is None:
        return QueueDecision.NEW
    if candle > existing.candle:
        return QueueDecision.REPLACE
    return QueueDecision.DUPLICATE


def replace_entry(
    existing: QueueEntry,
    *,
    entry_price: Decimal,
    candle: int,
    payload: dict[str, object],
    now: datetime,
) -> QueueEntry:
    """A copy of ``existing`` carrying the newer signal.

    Entry price, candle and payload are replaced, ``replacement_count`` grows by one and
    ``updated_at`` becomes ``now``; the id, key and original ``queued_at`` are kept (so a replaced
    signal keeps its place under the ``oldest`` rule).
    """
    return replace(
        existing,
        entry_price=entry_price,
        candle=candle,
        payload=dict(payload),
        updated_at=now,
        replacement_count=existing.replacement_count + 1,
    )


def adverse_move(entry: QueueEntry, price: Decimal) -> Decimal:
    """How far ``price`` has moved against the queued entry price, as a fraction (≤ 0).

    Long: ``(price - entry) / entry``; short: ``(entry - price) / entry``. Only a move against the
    position counts, so a favourable move (or an entry price ≤ 0, which has no meaning) returns 0.
    """
    if entry.entry_price <= ZERO:
        return ZERO
    change = (price - entry.entry_price) / entry.entry_price
    if entry.side == Side.SHORT:
        change = -change
    return min(change, ZERO)


def _rule_keys(
    prices: Mapping[tuple[str, str], Decimal],
) -> dict[str, Callable[[QueueEntry], Any]]:
    """Sort key of each rule: a smaller key means promoted earlier."""

    def deepest_loss(entry: QueueEntry) -> Decimal:
        price = prices.get((entry.exchange, entry.symbol))
        return ZERO if price is None else adverse_move(entry, price)

    return {
        "pyramid_continuation": lambda entry: 0 if entry.pyramid_continuation else 1,
        "deepest_loss": deepest_loss,
        "replacement_count": lambda entry: -entry.replacement_count,
        "oldest": lambda entry: entry.queued_at,
    }


def promotion_key(
    rules: Sequence[QueueRule],
    prices: Mapping[tuple[str, str], Decimal],
) -> Callable[[QueueEntry], tuple[Any, ...]]:
    """The sort key implementing :func:`promotion_order` (one component per enabled rule, then id)."""
    keys = _rule_keys(prices)
    enabled = [keys[rule.name] for rule in rules if rule.enabled]

    def key(entry: QueueEntry) -> tuple[Any, ...]:
        return (*(rule_key(entry) for rule_key in enabled), entry.id)

    return key


def promotion_order(
    entries: Iterable[QueueEntry],
    rules: Sequence[QueueRule],
    prices: Mapping[tuple[str, str], Decimal],
) -> list[QueueEntry]:
    """Queued entries, best candidate for promotion first.

    The enabled ``rules`` apply in their configured order; the first rule on which two entries differ
    decides:

    - ``pyramid_continuation``: entries extending an open group first;
    - ``deepest_loss``: most negative :func:`adverse_move` first, priced from ``prices`` keyed by
      ``(exchange, symbol)`` (a missing price counts as 0);
    - ``replacement_count``: most replaced first;
    - ``oldest``: earliest ``queued_at`` first.

    The queue id breaks remaining ties, so the result does not depend on the input order.
    """
    return sorted(entries, key=promotion_key(rules, prices))


def is_expired(entry: QueueEntry, now: datetime, max_age_minutes: int) -> bool:
    """True when the entry's signal is *older* than ``max_age_minutes``.

    Age counts from ``updated_at``, the time of the latest signal (the first one, or the latest
    replacement): a replacement carries a fresh price and payload, so it is not stale, while
    ``queued_at`` stays the original time for the ``oldest`` promotion rule. An entry exactly
    ``max_age_minutes`` old is not yet expired.
    """
    return now - entry.updated_at > timedelta(minutes=max_age_minutes)
