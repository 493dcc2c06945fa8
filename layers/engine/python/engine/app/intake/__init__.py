"""Intake: a TradingView signal is validated, authenticated, deduplicated and routed (DESIGN §3.1 to §3.7)."""

from engine.app.intake.entries import (
    EntryRefused,
    EntryRequest,
    PlannedGroup,
    evaluate_new_group,
    plan_pyramid,
)
from engine.app.intake.routing import RouteResult, RoutingConflict, SignalContext, route_signal
from engine.app.intake.webhook import (
    MAX_BODY_BYTES,
    AccountsIncomplete,
    Target,
    receive_signal,
    reset_persistence_layer,
    signal_targets,
)

__all__ = [
    "MAX_BODY_BYTES",
    "AccountsIncomplete",
    "EntryRefused",
    "EntryRequest",
    "PlannedGroup",
    "RouteResult",
    "RoutingConflict",
    "SignalContext",
    "Target",
    "evaluate_new_group",
    "plan_pyramid",
    "receive_signal",
    "reset_persistence_layer",
    "route_signal",
    "signal_targets",
]
