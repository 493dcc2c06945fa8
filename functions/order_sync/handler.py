"""order_sync: the minute schedule (and locally the scheduler) or the fast loop's SQS ticks -> sync.

``detail.force`` (the local ``/_local/tick`` only) runs both passes at once, ignoring their intervals.
Everything else is in ``engine.app.sync`` (``handle_sync_event``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.app.context import engine_context
from engine.app.sync import handle_sync_event
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the sync the event asks for; answers its summary (ticks: their outcomes)."""
    result = handle_sync_event(engine_context(), event)
    if "ran" in result:
        metrics.add_metric(
            name="SyncRuns" if result["ran"] else "SyncSkipped", unit=MetricUnit.Count, value=1
        )
    return result
