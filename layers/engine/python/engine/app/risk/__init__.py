"""Risk: the risk engine's run (close the worst loser, offset it with winners) and its manual controls."""

from engine.app.risk.controls import ControlResult, close_group, set_blocked, skip_once
from engine.app.risk.run import RiskRunSummary, guard_marker, risk_status, run_risk

__all__ = [
    "ControlResult",
    "RiskRunSummary",
    "close_group",
    "guard_marker",
    "risk_status",
    "run_risk",
    "set_blocked",
    "skip_once",
]
