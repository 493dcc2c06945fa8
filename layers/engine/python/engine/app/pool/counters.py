"""Reconciliation of the per-account counters (DESIGN §1), run by order_sync's minute pass.

The counters change in the transactions that change what they count (``engine.store.counters``); this
is the safety net. :func:`reconcile_counters` recomputes every ``acct#``/``sym#`` counter from the open
book (GSI ``by_status``) and today's ``day#`` counters from the open book plus the groups closed today
(GSI ``by_closed_day``), and sets each counter that drifted — under the counter version it read first,
so a change committed meanwhile wins and the next pass looks again. Missing counters (a book from
before the counters) are created: that is the backfill. Each correction is logged and counted in the
``CounterDrift`` metric (dimension ``Counter``: ``acct``/``sym``/``day``).

Decisions written down here:

- A counter changed within :data:`SETTLE` is left for the next pass: the indexes read here are
  eventually consistent and may not show the write that changed it yet.
- Only today's day counter is reconciled (the daily loss breaker reads today's only); yesterday's
  stays as its last transaction left it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, timedelta

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.config.reporting import emit_dimensioned_metric
from engine.domain.counters import CounterDelta, recount
from engine.domain.models import Group
from engine.metric_names import COUNTER_DIMENSION, COUNTER_DRIFT
from engine.store import CounterValue

__all__ = ["SETTLE", "CounterReport", "reconcile_counters"]

logger = Logger()

#: A counter changed more recently than this is not corrected in this pass (index lag).
SETTLE = timedelta(seconds=10)


@dataclass
class CounterReport:
    """What one reconciliation did: the counters it corrected (or created) and those it left alone."""

    corrected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _stored(value: CounterValue) -> CounterDelta:
    return CounterDelta(value.open_groups, value.exposure_usd, value.realized_usd)


def _drifted(value: CounterValue, target: CounterDelta) -> bool:
    return not value.exists or _stored(value) != target


def reconcile_counters(ctx: EngineContext) -> CounterReport:
    """Recompute the counters from the book and correct those that drifted (module doc)."""
    stores = ctx.stores
    now = ctx.now()
    today = now.astimezone(UTC).date()
    day = today.isoformat()
    # Counters first, then the book: a group write landing in between moves a counter's version.
    stored = {value.pk: value for value in stores.counters.list_open_counters()}
    books: dict[str, Group] = {group.id: group for group in stores.groups.list_open()}
    for group in stores.groups.list_closed_on(today):
        books.setdefault(group.id, group)
    targets = recount(books.values(), day)
    for pk in stored:
        targets.setdefault(pk, CounterDelta())  # counted something, counts nothing now
    report = CounterReport()
    for pk, target in sorted(targets.items()):
        value = stored.get(pk) or stores.counters.get(pk)
        if not _drifted(value, target):
            continue
        if value.counted_at is not None and now - value.counted_at < SETTLE:
            report.skipped.append(pk)
            continue
        if not stores.counters.correct(value, target, now):
            report.skipped.append(pk)
            continue
        report.corrected.append(pk)
        kind = pk.split("#", 1)[0]
        logger.warning(
            "counter drift corrected",
            counter=pk,
            stored={
                "open_groups": value.open_groups,
                "exposure_usd": str(value.exposure_usd),
                "realized_usd": str(value.realized_usd),
                "exists": value.exists,
            },
            recomputed={
                "open_groups": target.open_groups,
                "exposure_usd": str(target.exposure_usd),
                "realized_usd": str(target.realized_usd),
            },
        )
        try:
            emit_dimensioned_metric(COUNTER_DRIFT, 1, COUNTER_DIMENSION, kind)
        except Exception:  # a metric must never break the reconciliation
            logger.exception("could not emit the CounterDrift metric", counter=pk)
    return report
