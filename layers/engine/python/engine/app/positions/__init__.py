"""Positions: a fill recomputes its group, becomes take-profits, and a closing group converges to closed."""

from engine.app.positions.batch import OrderChanges
from engine.app.positions.closing import close_pyramid, request_close
from engine.app.positions.fills import fill_event, record_fill
from engine.app.positions.refresh import refresh_group

__all__ = [
    "OrderChanges",
    "close_pyramid",
    "fill_event",
    "record_fill",
    "refresh_group",
    "request_close",
]
