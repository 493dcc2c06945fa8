"""CloudWatch dashboard and alarms.

Custom metrics are the engine's Powertools metrics: namespace `ExecutionEngine`, dimension `service`
= POWERTOOLS_SERVICE_NAME (`<app>-<stage>`, the same for every function, so one stage's numbers never
mix with another's), plus whatever dimensions a metric carries of its own (`State` on OrdersByState,
`Parameter` on ConfigInvalid). CloudWatch keeps each dimension set apart, so the dashboard reads them
with SEARCH expressions and the alarms with Metrics Insights queries filtered on `service` only:
neither depends on the exact dimension set an emitter uses. Alarms notify the stack's SNS topic
(`-c alarm_email=...` subscribes an address; any other subscriber can be added in the console),
encrypted with a customer-managed KMS key whose policy lets CloudWatch alarms publish.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from engine import metric_names as m
from infra.settings import METRICS_NAMESPACE, StackSettings

NAMESPACE = METRICS_NAMESPACE
ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
ITERATOR_AGE_ALARM_MS = 60_000
WIDE, THIRD = 12, 8

# Every custom metric the dashboard and alarms read: names from engine.metric_names, the emitters' own.
CUSTOM_METRICS = (
    m.POOL_OPEN,
    m.POOL_MAX,
    m.QUEUE_DEPTH,
    m.OPEN_GROUPS,
    m.REALIZED_PNL_USD,
    m.UNREALIZED_PNL_USD,
    m.EQUITY_USD,
    m.ORDERS_BY_STATE,
    m.CONFIG_INVALID,
    m.UNKNOWN_ORDERS,
)


class Monitoring(Construct):
    """The alarm topic, the alarms (stream failures and lag, unknown orders, invalid config) and the
    dashboard; `search` and `stage_total` read the engine's custom metrics."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        functions: dict[str, lambda_.Function],
        stream_consumers: dict[str, sqs.Queue],
        api: apigw.RestApi,
        dead_letter_queues: dict[str, sqs.Queue] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._service = settings.metrics_service
        self._prefix = settings.resource_prefix
        self.alarm_topic = self._build_alarm_topic(settings.alarm_email)
        self._alarm_action = actions.SnsAction(self.alarm_topic)
        self.alarms: list[cloudwatch.Alarm] = []

        dlq_depth = {
            name: queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum", label=name
            )
            for name, queue in stream_consumers.items()
        }
        iterator_age = {
            name: functions[name].metric("IteratorAge", period=ONE_MINUTE, statistic="Maximum", label=name)
            for name in stream_consumers
        }
        self._build_stream_alarms(dlq_depth, iterator_age)
        for name, queue in (dead_letter_queues or {}).items():
            self._alarm(
                f"{name.replace('_', '-')}-dead-letters",
                queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum", label=name
                ),
                threshold=1,
                periods=1,
                description=f"Messages {name} gave up on are waiting in its dead-letter queue",
            )
        self._build_custom_metric_alarms()

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=self._prefix, default_interval=Duration.hours(6)
        )
        self._build_engine_widgets()
        self._build_platform_widgets(functions, api, dlq_depth, iterator_age)
        self.dashboard_url = (
            f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self._prefix}"
        )

    # ---------------------------------------------------------------- alarms

    def _build_alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        """The alarm topic, encrypted with its own key: CloudWatch alarms cannot publish to a topic under
        the AWS-managed SNS key (its policy cannot be changed), so the key policy lets CloudWatch use it."""
        key = kms.Key(
            self,
            "AlarmsKey",
            description=f"{self._prefix} alarm topic encryption (CloudWatch alarms publish with it)",
            enable_key_rotation=True,
            # Holds no data of its own (alarm messages are transient): delete it with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{self._prefix}-alarms",
            display_name="Execution Engine alarms",
            enforce_ssl=True,
            master_key=key,
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric | cloudwatch.MathExpression,
        *,
        threshold: float,
        periods: int,
        description: str,
    ) -> None:
        """An alarm at `threshold` or over, notifying the topic when it fires and when it clears."""
        created = metric.create_alarm(
            self,
            construct_id,
            alarm_name=f"{self._prefix}-{construct_id}",
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        created.add_alarm_action(self._alarm_action)
        created.add_ok_action(self._alarm_action)
        self.alarms.append(created)

    def _build_stream_alarms(
        self, dlq_depth: dict[str, cloudwatch.Metric], iterator_age: dict[str, cloudwatch.Metric]
    ) -> None:
        """Per stream consumer: a record in its failure queue; over a minute behind for 5 minutes."""
        for name, metric in dlq_depth.items():
            self._alarm(
                f"{name.replace('_', '-')}-stream-failures",
                metric,
                threshold=1,
                periods=1,
                description=f"Stream records {name} gave up on are waiting in its failure queue",
            )
        for name, metric in iterator_age.items():
            self._alarm(
                f"{name.replace('_', '-')}-iterator-age",
                metric,
                threshold=ITERATOR_AGE_ALARM_MS,
                periods=5,
                description=f"{name} is over a minute behind its stream for 5 minutes",
            )

    def _build_custom_metric_alarms(self) -> None:
        self._alarm(
            "unknown-orders",
            self.stage_total("MAX", m.UNKNOWN_ORDERS, FIVE_MINUTES),
            threshold=1,
            periods=1,
            description="Orders whose outcome at the exchange is unknown (being reconciled)",
        )
        self._alarm(
            "config-invalid",
            self.stage_total("SUM", m.CONFIG_INVALID, FIVE_MINUTES),
            threshold=1,
            periods=1,
            description="A configuration document failed validation; the last valid version is in use",
        )

    # ---------------------------------------------------------------- dashboard

    def _build_engine_widgets(self) -> None:
        """Rows of the engine's own figures: pool, queue, groups, PnL, equity, orders, config."""
        self.dashboard.add_widgets(
            self._graph("Pool usage", [self.search(m.POOL_OPEN), self.search(m.POOL_MAX)], THIRD),
            self._graph("Queue depth", [self.search(m.QUEUE_DEPTH)], THIRD),
            self._graph("Open groups", [self.search(m.OPEN_GROUPS)], THIRD),
        )
        self.dashboard.add_widgets(
            self._graph(
                "PnL (USD)",
                [self.search(m.REALIZED_PNL_USD, "Average"), self.search(m.UNREALIZED_PNL_USD, "Average")],
                WIDE,
            ),
            self._graph("Equity (USD)", [self.search(m.EQUITY_USD, "Average")], WIDE),
        )
        self.dashboard.add_widgets(
            # One line per State value the engine reports (pending, open, ..., unknown).
            self._graph(
                "Orders by state",
                [self.search(m.ORDERS_BY_STATE, label=f"${{PROP('Dim.{m.STATE_DIMENSION}')}}")],
                WIDE,
            ),
            self._graph(
                "Unknown orders / invalid config (per parameter)",
                [
                    self.search(m.UNKNOWN_ORDERS),
                    self.search(
                        m.CONFIG_INVALID, "Sum", label=f"invalid ${{PROP('Dim.{m.PARAMETER_DIMENSION}')}}"
                    ),
                ],
                WIDE,
            ),
        )

    def _build_platform_widgets(
        self,
        functions: dict[str, lambda_.Function],
        api: apigw.RestApi,
        dlq_depth: dict[str, cloudwatch.Metric],
        iterator_age: dict[str, cloudwatch.Metric],
    ) -> None:
        """Rows of AWS's own metrics: function errors, stream lag and failures, API traffic and latency."""
        self.dashboard.add_widgets(
            self._graph(
                "Function errors",
                [fn.metric_errors(period=ONE_MINUTE, label=name) for name, fn in functions.items()],
                THIRD,
            ),
            self._graph("Stream iterator age (ms)", list(iterator_age.values()), THIRD),
            self._graph("Stream failure queues (DLQ depth)", list(dlq_depth.values()), THIRD),
        )
        self.dashboard.add_widgets(
            self._graph(
                "API requests and errors",
                [
                    api.metric_count(period=ONE_MINUTE),
                    api.metric_client_error(period=ONE_MINUTE),
                    api.metric_server_error(period=ONE_MINUTE),
                ],
                WIDE,
            ),
            self._graph(
                "API latency (p99, ms)", [api.metric_latency(period=ONE_MINUTE, statistic="p99")], WIDE
            ),
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
