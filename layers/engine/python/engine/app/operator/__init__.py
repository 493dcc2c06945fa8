"""Operator: the reads and queue actions behind the operator API (risk controls live in ``risk``), the
engine's pause control and the performance analytics."""

from engine.app.operator.analytics import PERIODS, analytics_report, closed_groups_csv
from engine.app.operator.documents import config_documents, recent_signals
from engine.app.operator.engine import engine_status, set_paused
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
    "PERIODS",
    "analytics_report",
    "closed_groups_csv",
    "config_documents",
    "engine_status",
    "equity_points",
    "event_log",
    "group_detail",
    "groups_in",
    "pool_status",
    "promote_queued",
    "ranked_queue",
    "recent_signals",
    "remove_queued",
    "set_paused",
]
