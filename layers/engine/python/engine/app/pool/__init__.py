"""Pool: execution-pool slots, their release, and the promotion of queued signals into freed slots."""

from engine.app.pool.counters import CounterReport, reconcile_counters
from engine.app.pool.slots import holds_slot, on_group_change, promote_entry, sweep_queue

__all__ = [
    "CounterReport",
    "holds_slot",
    "on_group_change",
    "promote_entry",
    "reconcile_counters",
    "sweep_queue",
]
