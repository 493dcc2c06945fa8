"""order_sync: EventBridge every minute -> poll fills and prices, fire triggers, reconcile, sweep.

``detail.force`` (the local ``/_local/tick`` only) runs at once, ignoring the interval.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import engine_context
from engine.app.sync import run_sync
from engine.config.settings import metrics_namespace

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace())


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one sync; answers its summary."""
    force = (event.get("detail") or {}).get("force") is True
    ctx = engine_context()
    summary = run_sync(ctx, ctx.now(), force=force)
    metrics.add_metric(name="SyncRuns" if summary.ran else "SyncSkipped", unit=MetricUnit.Count, value=1)
    return summary.as_dict()
