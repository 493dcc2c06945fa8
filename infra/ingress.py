"""REST API: `POST /webhook` (open, throttled, size-capped, optionally TradingView-only), the operator
routes (a Cognito user-pool ID token each, `infra/operator_auth.py`) and the console page (`GET /`,
`GET /console/{name}`: served without sign-in; it holds no data and no secret).

- Throttling: stage default for the operator routes, a higher own limit for the webhook (alerts arrive
  in bursts at candle close).
- Body cap: API Gateway REST has no configurable payload limit, so a WAF web ACL blocks any request
  whose body is over 8 KiB with the same 413 JSON the webhook Lambda answers (it checks too).
- Rate per address: a WAF rate-based rule blocks an address sending more than WEBHOOK_RATE_PER_IP
  requests to `/webhook` in 5 minutes (429).
- Allowlist (on by default outside the `dev` stage; `-c tradingview_allowlist=true|false` overrides):
  the resource policy allows `POST /webhook` only from TradingView's four addresses, and the console and
  operator routes from anywhere (a resource policy denies what it does not allow, whatever the
  authorizer says); the operator routes still need a Cognito token.
- Execution logs at ERROR without data tracing (request bodies carry the webhook secret); JSON access
  logs for every request.
"""

from __future__ import annotations

import json
import re

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import TRADINGVIEW_IPS, StackSettings

MAX_BODY_BYTES = 8192
STAGE_RATE_LIMIT = 10
STAGE_BURST_LIMIT = 20
WEBHOOK_RATE_LIMIT = 25
WEBHOOK_BURST_LIMIT = 50
# WAF rate-based rule on /webhook, per source IP over WAF's 5-minute window. API Gateway throttling
# caps only the total, so one flooding address could use all of it and starve TradingView's alerts
# (and run up Lambda and DynamoDB costs). 300 per 5 min is 1 request/s per address sustained: an alert
# fires once per bar close per symbol, so even 50 symbols on 1-minute bars from one TradingView
# address (it has four) stay under it with room for resends; a flooder is blocked within the window.
WEBHOOK_RATE_PER_IP = 300
WEBHOOK_RATE_WINDOW_SECONDS = 300

# (method, path) of every operator route; served by the operator_api function.
OPERATOR_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/groups"),
    ("GET", "/groups/{id}"),
    ("POST", "/groups/{id}/{action}"),
    ("GET", "/queue"),
    ("POST", "/queue/{id}/promote"),
    ("DELETE", "/queue/{id}"),
    ("GET", "/pool"),
    ("GET", "/risk"),
    ("POST", "/risk/run"),
    ("GET", "/equity"),
    ("GET", "/engine"),
    ("POST", "/engine/pause"),
    ("POST", "/engine/resume"),
    ("GET", "/analytics"),
    ("GET", "/config"),
    ("GET", "/signals"),
)
# The console page and its assets: the operator_api function serves them, without sign-in.
CONSOLE_ROUTES: tuple[tuple[str, str], ...] = (("GET", "/"), ("GET", "/console/{name}"))

BODY_TOO_LARGE = {
    "outcome": "rejected",
    "error": "body_too_large",
    "reason": f"request body over {MAX_BODY_BYTES // 1024} KiB",
}


RATE_LIMITED = {
    "outcome": "rejected",
    "error": "rate_limited",
    "reason": (
        f"over {WEBHOOK_RATE_PER_IP} requests in {WEBHOOK_RATE_WINDOW_SECONDS // 60} minutes "
        "from this address"
    ),
}


def _invoke_arn(method: str, path: str) -> str:
    """`execute-api:/*/<METHOD>/<path>` with every `{parameter}` as `*` (any stage)."""
    return f"execute-api:/*/{method}{re.sub(r'{[^}]+}', '*', path)}"


def webhook_resource_policy() -> iam.PolicyDocument:
    """Allow `POST /webhook` from TradingView's addresses only; the console and the operator routes
    (Cognito-authorised) from anywhere; nothing else."""
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="TradingViewWebhookOnly",
                effect=iam.Effect.ALLOW,
                principals=[iam.AnyPrincipal()],
                actions=["execute-api:Invoke"],
                resources=["execute-api:/*/POST/webhook"],
                conditions={"IpAddress": {"aws:SourceIp": list(TRADINGVIEW_IPS)}},
            ),
            iam.PolicyStatement(
                sid="ConsoleAndOperatorRoutes",
                effect=iam.Effect.ALLOW,
                principals=[iam.AnyPrincipal()],
                actions=["execute-api:Invoke"],
                resources=[_invoke_arn(method, path) for method, path in (*CONSOLE_ROUTES, *OPERATOR_ROUTES)],
            ),
        ]
    )


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class Ingress(Construct):
    """The API, its stage settings, its WAF association and its routes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        webhook: lambda_.IFunction,
        operator_api: lambda_.IFunction,
        authorizer: apigw.IAuthorizer,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = self._build_api(settings, self._build_access_logs())
        self.webhook_method = self._build_webhook_route(webhook)
        self._build_operator_routes(operator_api, authorizer)
        self._build_console_routes(operator_api)
        self.web_acl = self._build_waf(settings)
        self._acknowledge_api_findings()

    def _build_access_logs(self) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_api(self, settings: StackSettings, access_logs: logs.LogGroup) -> apigw.RestApi:
        """The REST API and its stage: throttling (the webhook's own), ERROR logs, JSON access logs."""
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{settings.resource_prefix}-api",
            description="Execution Engine: TradingView webhook and operator API",
            endpoint_configuration=apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL]),
            policy=webhook_resource_policy() if settings.tradingview_allowlist else None,
            # The stage's access and execution logs need the account-wide API Gateway CloudWatch role
            # (AWS::ApiGateway::Account). It is shared by every API in the account and region, so
            # deleting one stage's stack must not delete it: RETAIN keeps the role and the setting.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                throttling_rate_limit=STAGE_RATE_LIMIT,
                throttling_burst_limit=STAGE_BURST_LIMIT,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                method_options={
                    "/webhook/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=WEBHOOK_RATE_LIMIT, throttling_burst_limit=WEBHOOK_BURST_LIMIT
                    )
                },
            ),
        )
        # A resource-policy change takes effect only with a new deployment.
        deployment = api.latest_deployment
        assert deployment is not None  # RestApi deploys by default
        deployment.add_to_logical_id({"tradingview_allowlist": settings.tradingview_allowlist})
        return api

    def _build_webhook_route(self, webhook: lambda_.IFunction) -> apigw.Method:
        """`POST /webhook`, open: the Lambda authenticates each alert itself."""
        method = self.api.root.add_resource("webhook").add_method(
            "POST", apigw.LambdaIntegration(webhook), authorization_type=apigw.AuthorizationType.NONE
        )
        acknowledge(
            method,
            "COG4",
            "TradingView cannot sign in: the webhook Lambda authenticates every alert by its shared secret "
            "or an HMAC signature.",
        )
        acknowledge(
            method,
            "APIG4",
            "TradingView cannot sign requests or send headers; the webhook Lambda authenticates every "
            "alert by its shared secret (constant-time compare) or an HMAC signature, and the optional "
            "resource policy admits only TradingView's IPs.",
        )
        return method

    def _build_operator_routes(self, operator_api: lambda_.IFunction, authorizer: apigw.IAuthorizer) -> None:
        """Every OPERATOR_ROUTES entry: a Cognito ID token, validated path parameters, one integration."""
        validator = apigw.RequestValidator(
            self,
            "OperatorValidator",
            rest_api=self.api,
            validate_request_body=True,
            validate_request_parameters=True,
        )
        operator_integration = apigw.LambdaIntegration(operator_api)
        for method, path in OPERATOR_ROUTES:
            resource = self.api.root.resource_for_path(path)
            path_parameters = [part[1:-1] for part in path.split("/") if part.startswith("{")]
            resource.add_method(
                method,
                operator_integration,
                authorization_type=apigw.AuthorizationType.COGNITO,
                authorizer=authorizer,
                request_validator=validator,
                request_parameters={f"method.request.path.{name}": True for name in path_parameters},
            )

    def _build_console_routes(self, operator_api: lambda_.IFunction) -> None:
        """`GET /` and `GET /console/{name}`: the page, without sign-in (it signs in itself)."""
        integration = apigw.LambdaIntegration(operator_api)
        for method, path in CONSOLE_ROUTES:
            resource = self.api.root if path == "/" else self.api.root.resource_for_path(path)
            route = resource.add_method(method, integration, authorization_type=apigw.AuthorizationType.NONE)
            for rule, reason in (
                ("APIG4", "The console page and its assets are public static files with no data or secret; "
                 "the page signs in with Cognito and every operator route it calls needs the token."),
                ("COG4", "Public static page: signing in happens in the page (code flow + PKCE); the "
                 "operator routes carry the Cognito authorizer."),
            ):  # fmt: skip
                acknowledge(route, rule, reason)

    def _build_waf(self, settings: StackSettings) -> wafv2.CfnWebACL:
        """The body-size web ACL, associated with the API's stage."""
        web_acl = self._body_size_web_acl(settings)
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=web_acl.attr_arn,
        )
        return web_acl

    def _acknowledge_api_findings(self) -> None:
        """cdk-nag findings on the API that are decisions, each with its reason."""
        acknowledge(
            self.api,
            "IAM4",
            "The account-level API Gateway logging role uses the AWS-managed "
            "AmazonAPIGatewayPushToCloudWatchLogs policy, which grants only CloudWatch Logs writes.",
            applies_to=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            ],
            children=True,
        )

    @property
    def webhook_url(self) -> str:
        return self.api.url_for_path("/webhook")

    @property
    def console_url(self) -> str:
        """The console page (the stage's root)."""
        return self.api.url_for_path("/")

    def _body_size_web_acl(self, settings: StackSettings) -> wafv2.CfnWebACL:
        prefix = settings.resource_prefix
        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{prefix}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{prefix}-api"),
            custom_response_bodies={
                "body_too_large": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps(BODY_TOO_LARGE)
                ),
                "rate_limited": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=json.dumps(RATE_LIMITED)
                ),
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="body-over-8KiB",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=413, custom_response_body_key="body_too_large"
                            )
                        )
                    ),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                            # Bodies past WAF's 8 KiB inspection window are oversize -> MATCH -> blocked.
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                            ),
                            comparison_operator="GT",
                            size=MAX_BODY_BYTES,
                            text_transformations=[
                                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                            ],
                        )
                    ),
                    visibility_config=_visibility(f"{prefix}-body-over-8KiB"),
                ),
                self._webhook_rate_rule(prefix),
            ],
        )

    @staticmethod
    def _webhook_rate_rule(prefix: str) -> wafv2.CfnWebACL.RuleProperty:
        """Block an address over WEBHOOK_RATE_PER_IP requests to `/webhook` per 5 minutes (429)."""
        return wafv2.CfnWebACL.RuleProperty(
            name="webhook-rate-per-ip",
            priority=1,
            action=wafv2.CfnWebACL.RuleActionProperty(
                block=wafv2.CfnWebACL.BlockActionProperty(
                    custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                        response_code=429, custom_response_body_key="rate_limited"
                    )
                )
            ),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP",
                    limit=WEBHOOK_RATE_PER_IP,
                    evaluation_window_sec=WEBHOOK_RATE_WINDOW_SECONDS,
                    # Only the webhook: the operator routes need a Cognito token and are throttled per stage.
                    scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                            positional_constraint="ENDS_WITH",
                            search_string="/webhook",
                            text_transformations=[
                                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                            ],
                        )
                    ),
                )
            ),
            visibility_config=_visibility(f"{prefix}-webhook-rate-per-ip"),
        )
