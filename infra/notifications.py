"""The trader's notifications (DESIGN §3.11): an SNS topic the notifier publishes to, with an optional
e-mail subscription (context ``notify_email``). Telegram needs nothing here but the bot token secret
(``infra/configuration.py``) and the notifier's outbound HTTPS.

The topic is encrypted with its own key (cdk-nag SNS2) and refuses plain HTTP publishes (SNS3); only the
notifier's role may publish (``infra/functions.py``).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.settings import StackSettings


class Notifications(Construct):
    """The notifications topic and its optional e-mail subscription."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.key = key = kms.Key(
            self,
            "NotificationsKey",
            description=f"{settings.resource_prefix} notifications topic encryption",
            enable_key_rotation=True,
            # Holds no data of its own (messages are transient): delete it with the stack.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=settings.notify_topic_name,
            display_name="Execution Engine",
            enforce_ssl=True,
            master_key=key,
        )
        if settings.notify_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.notify_email))

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """``sns:Publish`` on the topic and the two key actions publishing to an encrypted topic needs,
        spelled out (``Topic.grant_publish`` would add ``kms:GenerateDataKey*``, a wildcard action)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn])
        )
