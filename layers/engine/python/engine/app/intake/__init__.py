"""Intake: a TradingView signal is validated, authenticated, deduplicated and routed (DESIGN §3.1 to §3.7)."""

from engine.app.intake.entries import (
    EntryRefused,
    EntryRequest,
    PlannedGroup,
    evaluate_new_group,
    plan_pyramid,
)
from engine.app.intake.routing import RouteResult, RoutingConflict, SignalContext, route_signal
from engine.app.intake.webhook import MAX_BODY_BYTES, receive_signal, reset_persistence_layer

__all__ = [
    "MAX_BODY_BYTES",
    "EntryRefused",
    "EntryRequest",
    "PlannedGroup",
    "RouteResult",
    "RoutingConflict",
    "SignalContext",
    "evaluate_new_group",
    "plan_pyramid",
    "receive_signal",
    "reset_persistence_layer",
    "route_signal",
]
