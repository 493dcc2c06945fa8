"""operator_api: API Gateway (a Cognito user-pool token; the console page without) -> the operator routes
and the console page of DESIGN §6.

Routing, shapes and error mapping live in :mod:`engine.api.operator`; the resolver matches on the
event's ``path`` (the stage prefix is not part of it), so the ``/{proxy+}`` resource of the REST API
and of the local runtime reaches every route.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from engine.api.operator import app
from engine.config.settings import metrics_namespace
from engine.config.tracing import traced

logger = Logger()
metrics = Metrics(namespace=metrics_namespace())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Resolve one operator request."""
    return app.resolve(event, context)
