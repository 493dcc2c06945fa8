"""Operator: the reads and queue actions behind the operator API (risk controls live in ``risk``)."""

from engine.app.operator.queries import (
    equity_points,
    event_log,
    group_detail,
    groups_in,
    pool_status,
    promote_queued,
    ranked_queue,
    remove_queued,
)

__all__ = [
    "equity_points",
    "event_log",
    "group_detail",
    "groups_in",
    "pool_status",
    "promote_queued",
    "ranked_queue",
    "remove_queued",
]
