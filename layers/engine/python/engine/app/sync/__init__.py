"""Sync: poll the exchange for fills and prices, fire triggers, reconcile, sweep the queue, measure."""

from engine.app.sync.run import SyncSummary, run_sync

__all__ = [
    "SyncSummary",
    "run_sync",
]
