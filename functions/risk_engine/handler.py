"""risk_engine: EventBridge every minute -> one risk run when ``risk.interval_minutes`` has passed.

``detail.force`` (the local ``/_local/tick``) runs at once, ignoring the interval. The summary
(timers, plan, action) is returned and logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import engine_context
from engine.app.risk import run_risk
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the risk engine once (if due) and return its summary."""
    detail = event.get("detail") or {}
    ctx = engine_context()
    summary = run_risk(ctx, ctx.now(), force=bool(detail.get("force")))
    if summary.ran:
        metrics.add_metric(name="RiskActions", unit=MetricUnit.Count, value=len(summary.actions))
    return summary.as_dict()
