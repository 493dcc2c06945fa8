"""Every engine metric the dashboard and alarms read is one `engine.metric_names` defines, the module the
emitters name their metrics from: a renamed metric fails here instead of silencing an alarm."""

from __future__ import annotations

import json
import re
from typing import Any

from engine import metric_names
from infra.monitoring import CUSTOM_METRICS, NAMESPACE
from tests.infra.conftest import flatten

SEARCH_NAME = re.compile(rf'Namespace="{NAMESPACE}" MetricName="([^"]+)"')
INSIGHTS_NAME = re.compile(rf'SELECT \w+\((\w+)\) FROM "{NAMESPACE}"')


def _dashboard_text(synthesized: Any) -> str:
    (value,) = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    body = value["Properties"]["DashboardBody"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else flatten(part) for part in body)


def _dashboard_names(synthesized: Any) -> set[str]:
    dashboard = json.loads(_dashboard_text(synthesized))
    names: set[str] = set()
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                names.update(SEARCH_NAME.findall(row[0]["expression"]))
            elif row[0] == NAMESPACE:
                names.add(row[1])
    return names


def _alarm_names(synthesized: Any) -> set[str]:
    names: set[str] = set()
    for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == NAMESPACE:
            names.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            names.update(INSIGHTS_NAME.findall(query.get("Expression", "")))
            watched = query.get("MetricStat", {}).get("Metric", {})
            if watched.get("Namespace") == NAMESPACE:
                names.add(watched["MetricName"])
    return names


def test_every_dashboard_metric_of_the_engine_is_a_defined_name(synthesized: Any) -> None:
    names = _dashboard_names(synthesized)
    assert names == set(CUSTOM_METRICS)
    assert names <= metric_names.ALL


def test_every_alarmed_metric_of_the_engine_is_a_defined_name(synthesized: Any) -> None:
    names = _alarm_names(synthesized)
    assert names == {metric_names.UNKNOWN_ORDERS, metric_names.CONFIG_INVALID}
    assert names <= metric_names.ALL


def test_no_engine_metric_is_read_outside_the_namespace_queries(synthesized: Any) -> None:
    """A metric name written into an expression some other way would escape the two checks above."""
    dashboard = json.loads(_dashboard_text(synthesized))
    for widget in dashboard["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0]["expression"]
                assert expression.count("MetricName=") == len(SEARCH_NAME.findall(expression)), expression
    for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values():
        for query in alarm["Properties"].get("Metrics", []):
            expression = query.get("Expression", "")
            assert ("SELECT" in expression) == bool(INSIGHTS_NAME.search(expression)), expression


def test_all_lists_every_constant_of_the_module() -> None:
    constants = {
        value
        for name, value in vars(metric_names).items()
        if name.isupper() and isinstance(value, str) and not name.endswith("_DIMENSION")
    }
    assert constants == metric_names.ALL
    assert len(constants) == len(
        [n for n in vars(metric_names) if n.isupper() and n != "ALL" and not n.endswith("_DIMENSION")]
    )
