"""CloudWatch dashboard and alarms.

Custom metrics are the engine's Powertools metrics: namespace `ExecutionEngine`, dimension `service`
= POWERTOOLS_SERVICE_NAME (`<app>-<stage>`, the same for every function, so one stage's numbers never
mix with another's), plus whatever dimensions a metric carries of its own (`State` on OrdersByState,
`Parameter` on ConfigInvalid). CloudWatch keeps each dimension set apart, so the dashboard reads them
with SEARCH expressions and the alarms with Metrics Insights queries filtered on `service` only:
neither depends on the exact dimension set an emitter uses. Alarms notify the stack's SNS topic
(`-c alarm_email=...` subscribes an address; any other subscriber can be added in the console).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import StackSettings

NAMESPACE = "ExecutionEngine"
ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
ITERATOR_AGE_ALARM_MS = 60_000

# Every custom metric the dashboard and alarms read (names are the contract with the engine).
CUSTOM_METRICS = (
    "PoolOpen",
    "PoolMax",
    "QueueDepth",
    "OpenGroups",
    "RealizedPnlUsd",
    "UnrealizedPnlUsd",
    "EquityUsd",
    "OrdersByState",
    "ConfigInvalid",
    "UnknownOrders",
)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        functions: dict[str, lambda_.Function],
        stream_consumers: dict[str, sqs.Queue],
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self._service = settings.metrics_service
        prefix = settings.resource_prefix

        self.alarm_topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{prefix}-alarms",
            display_name="Execution Engine alarms",
            enforce_ssl=True,
        )
        acknowledge(
            self.alarm_topic,
            "SNS2",
            "Carries only alarm state changes (no trading or credential data); CloudWatch alarms cannot "
            "publish to a topic encrypted with the AWS-managed SNS key.",
        )
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        alarm_action = actions.SnsAction(self.alarm_topic)

        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(
            construct_id: str,
            metric: cloudwatch.Metric | cloudwatch.MathExpression,
            *,
            threshold: float,
            periods: int,
            description: str,
        ) -> None:
            created = metric.create_alarm(
                self,
                construct_id,
                alarm_name=f"{prefix}-{construct_id}",
                alarm_description=description,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(alarm_action)
            created.add_ok_action(alarm_action)
            self.alarms.append(created)

        dlq_depth = {
            name: queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum", label=name
            )
            for name, queue in stream_consumers.items()
        }
        for name, metric in dlq_depth.items():
            alarm(
                f"{name.replace('_', '-')}-stream-failures",
                metric,
                threshold=1,
                periods=1,
                description=f"Stream records {name} gave up on are waiting in its failure queue",
            )

        iterator_age = {
            name: functions[name].metric("IteratorAge", period=ONE_MINUTE, statistic="Maximum", label=name)
            for name in stream_consumers
        }
        for name, metric in iterator_age.items():
            alarm(
                f"{name.replace('_', '-')}-iterator-age",
                metric,
                threshold=ITERATOR_AGE_ALARM_MS,
                periods=5,
                description=f"{name} is over a minute behind its stream for 5 minutes",
            )

        alarm(
            "unknown-orders",
            self.stage_total("MAX", "UnknownOrders", FIVE_MINUTES),
            threshold=1,
            periods=1,
            description="Orders whose outcome at the exchange is unknown (being reconciled)",
        )
        alarm(
            "config-invalid",
            self.stage_total("SUM", "ConfigInvalid", FIVE_MINUTES),
            threshold=1,
            periods=1,
            description="A configuration document failed validation; the last valid version is in use",
        )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=prefix, default_interval=Duration.hours(6)
        )
        wide, third = 12, 8
        self.dashboard.add_widgets(
            self._graph("Pool usage", [self.search("PoolOpen"), self.search("PoolMax")], third),
            self._graph("Queue depth", [self.search("QueueDepth")], third),
            self._graph("Open groups", [self.search("OpenGroups")], third),
        )
        self.dashboard.add_widgets(
            self._graph(
                "PnL (USD)",
                [self.search("RealizedPnlUsd", "Average"), self.search("UnrealizedPnlUsd", "Average")],
                wide,
            ),
            self._graph("Equity (USD)", [self.search("EquityUsd", "Average")], wide),
        )
        self.dashboard.add_widgets(
            # One line per State value the engine reports (pending, open, ..., unknown).
            self._graph(
                "Orders by state", [self.search("OrdersByState", label="${PROP('Dim.State')}")], wide
            ),
            self._graph(
                "Unknown orders / invalid config (per parameter)",
                [
                    self.search("UnknownOrders"),
                    self.search("ConfigInvalid", "Sum", label="invalid ${PROP('Dim.Parameter')}"),
                ],
                wide,
            ),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Function errors",
                [fn.metric_errors(period=ONE_MINUTE, label=name) for name, fn in functions.items()],
                third,
            ),
            self._graph("Stream iterator age (ms)", list(iterator_age.values()), third),
            self._graph("Stream failure queues (DLQ depth)", list(dlq_depth.values()), third),
        )
        self.dashboard.add_widgets(
            self._graph(
                "API requests and errors",
                [
                    api.metric_count(period=ONE_MINUTE),
                    api.metric_client_error(period=ONE_MINUTE),
                    api.metric_server_error(period=ONE_MINUTE),
                ],
                wide,
            ),
            self._graph(
                "API latency (p99, ms)", [api.metric_latency(period=ONE_MINUTE, statistic="p99")], wide
            ),
        )
        self.dashboard_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={prefix}"
        )

    def search(
        self, name: str, statistic: str = "Maximum", *, label: str | None = None
    ) -> cloudwatch.MathExpression:
        """Every series of custom metric `name` for this stage, whatever other dimensions it carries
        (`State` on OrdersByState, `Parameter` on ConfigInvalid): one line each on a graph."""
        query = f'Namespace="{NAMESPACE}" MetricName="{name}" service="{self._service}"'
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{query}', '{statistic}', {int(ONE_MINUTE.to_seconds())})",
            using_metrics={},
            label=label or name,
            period=ONE_MINUTE,
        )

    def stage_total(self, aggregate: str, name: str, period: Duration) -> cloudwatch.MathExpression:
        """One series (alarmable): `aggregate` of custom metric `name` over all of this stage's
        dimension sets, as a CloudWatch Metrics Insights query."""
        return cloudwatch.MathExpression(
            expression=f"SELECT {aggregate}({name}) FROM \"{NAMESPACE}\" WHERE service = '{self._service}'",
            using_metrics={},
            label=name,
            period=period,
        )

    @staticmethod
    def _graph(title: str, metrics: list[cloudwatch.IMetric], width: int) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6)
