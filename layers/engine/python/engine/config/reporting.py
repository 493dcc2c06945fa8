"""How ``engine.config`` reports a bad configuration: a Powertools log line and a ``ConfigInvalid`` metric.

The metric is emitted with ``single_metric``, which prints its EMF line at once: it needs no handler's
``log_metrics`` decorator to flush it (so it works in the local runtime and in tests too), and its
``Parameter`` dimension does not leak into the handler's own metric set. Reporting never raises.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from engine.config.settings import metrics_namespace
from engine.domain.config import ConfigError

CONFIG_INVALID_METRIC = "ConfigInvalid"

logger = Logger()


def report_invalid(parameter: str, error: ConfigError, latest_version: int, used_version: int) -> None:
    """Log an invalid document (parameter, field, reason, which version is used instead) and count it."""
    fallback = f"version {used_version} is used" if used_version else "no valid version: new entries refused"
    logger.error(
        f"invalid configuration {parameter} version {latest_version}: {error}; {fallback}",
        parameter=parameter,
        document=error.document,
        field=error.field,
        reason=error.reason,
        problems=[f"{field}: {reason}" if field else reason for field, reason in error.problems],
        latest_version=latest_version,
        used_version=used_version,
    )
    emit_config_invalid(parameter)


def emit_dimensioned_metric(name: str, value: float, dimension: str, dimension_value: str) -> None:
    """Print one EMF metric with its own dimension at once (``single_metric``).

    Honours ``POWERTOOLS_METRICS_DISABLED`` (the local runtime sets it so EMF lines don't garble its
    terminal view), which Powertools' ``single_metric`` itself ignores.
    """
    if is_metrics_disabled():
        return
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, namespace=metrics_namespace()
    ) as metric:
        metric.add_dimension(name=dimension, value=dimension_value)


def emit_config_invalid(parameter: str) -> None:
    """Print one ``ConfigInvalid`` EMF metric with dimension ``Parameter``; a failure is only logged."""
    try:
        emit_dimensioned_metric(CONFIG_INVALID_METRIC, 1, "Parameter", parameter)
    except Exception:  # a metric must never break the configuration read
        logger.exception("could not emit the ConfigInvalid metric", parameter=parameter)
