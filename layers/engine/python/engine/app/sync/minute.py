"""order_sync's minute pass: the work that needs doing once a minute, not every fast tick (DESIGN §1).

:func:`run_minute_pass`, in order (each step's failure is logged and reported, never stops the next):

1. market precision of every configured account, refreshed when older than :data:`MARKETS_MAX_AGE`
   (one attempt per :data:`MARKETS_RETRY` through ``claim_interval("markets:<account>")``, so a failing
   exchange is retried soon while a refreshed one waits an hour);
2. ``sweep_queue`` (expiry, promotion into free slots, breaker reset), after migrating a legacy single
   pool counter into per-account counters (``PoolStore.migrate_legacy_counter``, a no-op once done);
3. the per-account counters recomputed from the book, drift corrected (``reconcile_counters``);
4. the equity point and the metrics (:mod:`engine.app.sync.figures`);
5. every configuration problem (a document without a valid version, an account not traded) recorded in
   the event log once per distinct problem (id ``config#<document>#<digest of the text>``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from engine.app.context import EngineContext
from engine.app.pool import reconcile_counters, sweep_queue
from engine.app.sync.figures import emit_metrics, measure, record_equity
from engine.app.sync.summary import SyncSummary
from engine.domain.config import ConfigSnapshot
from engine.domain.events import KIND_CONFIG, Event

__all__ = ["MARKETS_MAX_AGE", "MARKETS_RETRY", "record_config_problems", "run_minute_pass"]

logger = Logger(child=True)

#: Market precision older than this is refreshed.
MARKETS_MAX_AGE = timedelta(hours=1)
#: At most one market refresh attempt per account in this time.
MARKETS_RETRY = timedelta(minutes=5)


def run_minute_pass(ctx: EngineContext, now: datetime, cfg: ConfigSnapshot, summary: SyncSummary) -> None:
    """The minute pass (module docstring) into ``summary``."""
    summary.minute = True
    for exchange in cfg.engine.accounts:
        _refresh_markets(ctx, exchange, now, cfg, summary)
    try:
        # The single pool counter of before the per-account pools becomes per-account counters, once.
        ctx.stores.pool.migrate_legacy_counter()
        summary.promoted = list(sweep_queue(ctx, cfg, now))
    except Exception as exc:
        logger.exception("queue sweep failed")
        summary.failures["queue"] = f"{type(exc).__name__}: {exc}"
    try:
        reconcile_counters(ctx)
    except Exception as exc:
        logger.exception("counter reconciliation failed")
        summary.failures["counters"] = f"{type(exc).__name__}: {exc}"
    figures = measure(ctx.stores, cfg)
    record_equity(ctx.stores, figures, now)
    emit_metrics(figures)
    summary.figures = figures
    try:
        record_config_problems(ctx, cfg, now)
    except Exception as exc:
        logger.exception("recording configuration problems failed")
        summary.failures["config_events"] = f"{type(exc).__name__}: {exc}"


def record_config_problems(ctx: EngineContext, cfg: ConfigSnapshot, now: datetime) -> int:
    """Record each configuration problem of ``cfg`` once (SSM read failures are transient: left out)."""
    written = 0
    for problem in cfg.problems:
        if problem.unreadable:
            continue
        digest = hashlib.sha256(problem.text.encode()).hexdigest()[:16]
        event = Event(
            id=f"config#{problem.document}#{digest}",
            at=now,
            kind=KIND_CONFIG,
            name="config_invalid",
            reason=problem.text,
            account=problem.account,
            data={"document": problem.document},
        )
        written += int(ctx.stores.events.record(event))
    return written


def _refresh_markets(
    ctx: EngineContext, exchange: str, now: datetime, cfg: ConfigSnapshot, summary: SyncSummary
) -> None:
    stores = ctx.stores
    refreshed_at = stores.markets.refreshed_at(exchange)
    if refreshed_at is not None and now - refreshed_at < MARKETS_MAX_AGE:
        return
    if not stores.state.claim_interval(f"markets:{exchange}", MARKETS_RETRY, now):
        return
    try:
        markets = ctx.gateways(exchange, cfg).load_markets()
        stores.markets.put_many(exchange, markets, now)
    except Exception as exc:
        logger.exception("market refresh failed", exchange=exchange)
        summary.failures[f"markets:{exchange}"] = f"{type(exc).__name__}: {exc}"
        return
    summary.markets_refreshed.append(exchange)
