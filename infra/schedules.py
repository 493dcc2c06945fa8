"""EventBridge rules firing every minute for `order_sync` and `risk_engine`.

Each handler decides from its config and a last-run item whether its own interval has passed, so the
interval changes live like every other setting. A failed run is not retried (the next tick is a
minute away and a retried tick would run late, out of order with the next one).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.settings import StackSettings

SCHEDULED_FUNCTIONS = ("order_sync", "risk_engine")
SCHEDULE = events.Schedule.rate(Duration.minutes(1))


class Schedules(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: dict[str, events.Rule] = {}
        for name in SCHEDULED_FUNCTIONS:
            function = functions[name]
            function.configure_async_invoke(retry_attempts=0, max_event_age=Duration.minutes(1))
            self.rules[name] = events.Rule(
                self,
                f"{name}-every-minute",
                rule_name=f"{settings.resource_prefix}-{name.replace('_', '-')}-every-minute",
                description=f"Runs {name} every minute; it applies its own configured interval",
                schedule=SCHEDULE,
                targets=[
                    targets.LambdaFunction(function, retry_attempts=2, max_event_age=Duration.minutes(1))
                ],
            )
