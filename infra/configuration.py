"""Live configuration (SSM Parameter Store) and secrets (Secrets Manager).

Seeding without ever overwriting the operator's edits
-----------------------------------------------------
Each default document is written by an `AwsCustomResource` whose only call is, on CREATE,
`ssm:PutParameter` with `Overwrite=false` (an existing parameter -> `ParameterAlreadyExists`, ignored).
There is no UPDATE call and no DELETE call, so:
- a redeploy never writes the parameter, even when the shipped defaults changed (the custom
  resource's properties change, CloudFormation sends an UPDATE, and UPDATE does nothing);
- deleting the stack leaves the parameters (the operator's configuration) in place, and a new stack
  adopts them as they are.
A plain `AWS::SSM::Parameter` would not do: CloudFormation owns its value and writes the template's
text back whenever that text (or any other property) changes, silently undoing console edits.
Parameters the operator adds later (`dca/<exchange>/<SYMBOL>/<tf>`) are not stack resources at all.

Secrets are created without a value (no generated string): the operator stores the webhook secret
and each exchange's API key with `put-secret-value` (README "Deploy"). They are retained on stack
deletion like the configuration, but not when their creation rolls back (a failed first deploy must
not leave a fixed name behind).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from engine.domain.config import default_documents
from infra.nag import acknowledge
from infra.settings import EXCHANGES, StackSettings
from infra.storage import STATEFUL_REMOVAL_POLICY

# Standard-tier SSM parameters hold at most 4 KB.
MAX_PARAMETER_BYTES = 4096


def default_document_texts() -> dict[str, str]:
    """Document name -> JSON text, exactly as the engine renders its defaults (single source of truth)."""
    texts = default_documents()
    for name, text in texts.items():
        size = len(text.encode())
        if size > MAX_PARAMETER_BYTES:
            raise ValueError(f"default document {name!r} is {size} bytes, over the SSM standard tier's 4 KB")
    return texts


class Configuration(Construct):
    """Seeded SSM documents under `/<app>/<stage>/`, the webhook secret and one secret per exchange."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.parameter_prefix = settings.parameter_prefix
        # parameter/<app>/<stage>/* : the ARN drops the name's leading '/'.
        self.parameter_arn_prefix = stack.format_arn(
            service="ssm", resource="parameter", resource_name=settings.parameter_prefix.strip("/")
        )
        self.parameter_names: dict[str, str] = {}

        seeder_logs = logs.LogGroup(
            self,
            "SeederLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        seeder_role = iam.Role(
            self,
            "SeederRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Seeds the default configuration documents once (PutParameter, never overwrite)",
        )
        seeder_logs.grant_write(seeder_role)

        for name, text in default_document_texts().items():
            parameter_name = f"{settings.parameter_prefix}{name}"
            self.parameter_names[name] = parameter_name
            cr.AwsCustomResource(
                self,
                f"Seed-{name.replace('/', '-')}",
                resource_type="Custom::SeedConfigDocument",
                on_create=cr.AwsSdkCall(
                    service="SSM",
                    action="putParameter",
                    parameters={
                        "Name": parameter_name,
                        "Type": "String",
                        "Tier": "Standard",
                        "Value": text,
                        "Overwrite": False,
                        "Description": f"Execution Engine '{name}' document (seeded default; edit freely)",
                    },
                    physical_resource_id=cr.PhysicalResourceId.of(parameter_name),
                    ignore_error_codes_matching="ParameterAlreadyExists",
                ),
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [
                        iam.PolicyStatement(
                            actions=["ssm:PutParameter"],
                            resources=[f"{self.parameter_arn_prefix}/{name}"],
                        )
                    ]
                ),
                role=seeder_role,
                log_group=seeder_logs,
                install_latest_aws_sdk=False,
            )

        self.webhook_secret = self._empty_secret(
            "WebhookSecret",
            settings.webhook_secret_name,
            "TradingView webhook shared secret (plain string); compared with the alert's `secret`",
        )
        self.telegram_secret = self._empty_secret(
            "TelegramSecret",
            settings.telegram_secret_name,
            "Telegram bot token for the trader's notifications (plain token string)",
        )
        self.exchange_secrets: dict[str, secretsmanager.Secret] = {
            exchange: self._empty_secret(
                f"ExchangeSecret-{exchange}",
                settings.exchange_secret_name(exchange),
                f"{exchange} API credentials (JSON: apiKey, secret, password if the exchange needs one)",
            )
            for exchange in EXCHANGES
        }

    @property
    def parameter_arns(self) -> list[str]:
        """Every parameter under the prefix, including the per-symbol DCA documents the operator adds
        (the bare prefix too: GetParametersByPath is authorised against the path itself)."""
        return [self.parameter_arn_prefix, f"{self.parameter_arn_prefix}/*"]

    @property
    def parameter_arn_pattern_for_nag(self) -> str:
        """The prefix wildcard as cdk-nag renders it: pseudo parameters in angle brackets, the region
        (and with it the partition) literal when the stack's environment names it."""
        stack = Stack.of(self)
        partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        return f"arn:{partition}:ssm:{region}:<AWS::AccountId>:parameter{self.parameter_prefix}*"

    def grant_read_parameters(self, grantee: iam.IGrantable) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ssm:GetParameter",
                    "ssm:GetParameters",
                    "ssm:GetParameterHistory",
                    "ssm:GetParametersByPath",
                ],
                resources=self.parameter_arns,
            )
        )

    def _empty_secret(self, construct_id: str, name: str, description: str) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            removal_policy=STATEFUL_REMOVAL_POLICY,
        )
        cfn_secret = secret.node.default_child
        assert isinstance(cfn_secret, secretsmanager.CfnSecret)
        # Created without a value: the operator fills it (a generated string would be a wrong credential).
        cfn_secret.add_property_deletion_override("GenerateSecretString")
        acknowledge(
            secret,
            "SMG4",
            "Credentials issued outside AWS (exchange API keys, the TradingView alert secret) cannot be "
            "rotated by a Lambda; the operator rotates them at the source and updates the secret value.",
        )
        return secret
