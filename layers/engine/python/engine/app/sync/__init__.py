"""Sync: poll the exchange for fills and prices, fire triggers, reconcile, sweep the queue, measure.

Two passes (:mod:`engine.app.sync.run`, :mod:`engine.app.sync.minute`) and, in AWS, the loop that runs
the fast pass every ``engine.sync_interval_seconds`` while anything is live (:mod:`engine.app.sync.loop`).
"""

from engine.app.sync.entry import handle_sync_event
from engine.app.sync.minute import run_minute_pass
from engine.app.sync.run import SyncSummary, run_fast_pass, run_sync

__all__ = [
    "SyncSummary",
    "handle_sync_event",
    "run_fast_pass",
    "run_minute_pass",
    "run_sync",
]
