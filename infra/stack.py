"""The Execution Engine stack: one construct per concern, wired together, plus the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.configuration import Configuration
from infra.event_sources import StreamEventSources
from infra.functions import Functions
from infra.ingress import Ingress
from infra.layers import Layers
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.operator_auth import OperatorAuth, console_url
from infra.schedules import Schedules
from infra.settings import StackSettings
from infra.storage import Storage
from infra.sync_loop import SyncLoop


class ExecutionEngineStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.storage = Storage(self, "Storage", settings=settings)
        self.layers = Layers(self, "Layers", settings=settings)
        self.configuration = Configuration(self, "Configuration", settings=settings)
        self.notifications = Notifications(self, "Notifications", settings=settings)
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            storage=self.storage,
            layers=self.layers,
            configuration=self.configuration,
            notifications=self.notifications,
        )
        self.event_sources = StreamEventSources(
            self, "StreamEventSources", settings=settings, storage=self.storage, functions=self.functions
        )
        self.schedules = Schedules(self, "Schedules", settings=settings, functions=self.functions.functions)
        self.sync_loop = SyncLoop(
            self, "SyncLoop", settings=settings, order_sync=self.functions.functions["order_sync"]
        )
        self.operator_auth = OperatorAuth(self, "OperatorAuth", settings=settings)
        operator_api = self.functions.functions["operator_api"]
        self.ingress = Ingress(
            self,
            "Ingress",
            settings=settings,
            webhook=self.functions.functions["webhook"],
            operator_api=operator_api,
            authorizer=self.operator_auth.authorizer,
        )
        # The page learns where to sign in from these (public values; the client has no secret).
        client = self.operator_auth.add_console_client(console_url(self.ingress.api, settings.stage))
        operator_api.add_environment("CONSOLE_AUTH_URL", self.operator_auth.hosted_ui_url)
        operator_api.add_environment("CONSOLE_CLIENT_ID", client.user_pool_client_id)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            functions=self.functions.functions,
            stream_consumers=self.event_sources.failure_queues,
            dead_letter_queues={"sync_loop": self.sync_loop.dead_letter_queue},
            api=self.ingress.api,
        )

        CfnOutput(
            self, "WebhookUrl", value=self.ingress.webhook_url, description="TradingView alert URL (POST)"
        )
        CfnOutput(
            self,
            "OperatorApiUrl",
            value=self.ingress.api.url,
            description="Operator API base URL (Authorization: a Cognito ID token) and the console page",
        )
        CfnOutput(self, "ConsoleUrl", value=self.ingress.console_url, description="The operator console")
        CfnOutput(
            self,
            "OperatorUserPoolId",
            value=self.operator_auth.user_pool.user_pool_id,
            description="Cognito user pool of the operators (aws cognito-idp admin-create-user)",
        )
        CfnOutput(
            self,
            "OperatorClientId",
            value=client.user_pool_client_id,
            description="Public app client of the console and of scripts (initiate-auth)",
        )
        CfnOutput(self, "DashboardUrl", value=self.monitoring.dashboard_url)
        CfnOutput(
            self,
            "ParameterPrefix",
            value=settings.parameter_prefix,
            description="SSM prefix of the live configuration documents",
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.alarm_topic.topic_arn)
        CfnOutput(
            self,
            "NotificationsTopicArn",
            value=self.notifications.topic.topic_arn,
            description="The trader's notifications (subscribe with -c notify_email=... or in the console)",
        )


def stack_id(settings: StackSettings) -> str:
    """CloudFormation stack name: `ExecutionEngine-<stage>` (one stack per stage in an account)."""
    return f"ExecutionEngine-{settings.stage}"
