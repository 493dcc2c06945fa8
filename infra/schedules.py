"""EventBridge rules firing every minute for `order_sync` and `risk_engine`.

Each handler decides from its config and a last-run item whether its own interval has passed, so the
interval changes live like every other setting. A failed run is not retried (the next tick is a
minute away and a retried tick would run late, out of order with the next one). Every scheduled
function's timeout is below the interval (checked here): the handlers claim a run by its start time,
so a run still going at the next tick would overlap it.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.settings import SCHEDULED_FUNCTIONS, StackSettings

SCHEDULE_INTERVAL = Duration.minutes(1)
SCHEDULE = events.Schedule.rate(SCHEDULE_INTERVAL)


class OverlappingRuns(ValueError):
    """A scheduled function may still run when the next tick starts another one."""


def check_timeout_below_interval(name: str, timeout: Duration | None) -> None:
    """The handlers claim a run by start time only: a run must end before the next tick."""
    interval = SCHEDULE_INTERVAL.to_seconds()
    if timeout is None or timeout.to_seconds() >= interval:
        seconds = "the 3 s default" if timeout is None else f"{timeout.to_seconds():g} s"
        raise OverlappingRuns(
            f"{name} runs every {interval:g} s but may run for {seconds}; "
            f"set its timeout below {interval:g} s so two runs never overlap"
        )


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
            check_timeout_below_interval(name, function.timeout)
            function.configure_async_invoke(retry_attempts=0, max_event_age=Duration.minutes(1))
            self.rules[name] = events.Rule(
                self,
                f"{name}-every-minute",
                rule_name=settings.schedule_rule_name(name),
                description=f"Runs {name} every minute; it applies its own configured interval",
                schedule=SCHEDULE,
                targets=[
                    targets.LambdaFunction(function, retry_attempts=2, max_event_age=Duration.minutes(1))
                ],
            )
