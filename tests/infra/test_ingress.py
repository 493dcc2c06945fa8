"""REST API: routes and their auth (a Cognito authorizer on every operator route, none on the webhook and
the console page), throttling, logging, body-size WAF rule, optional IP allowlist."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import flatten, logical_id_of

OPERATOR_ROUTES = {
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
}
CONSOLE_ROUTES = {("GET", "/"), ("GET", "/console/{name}")}
TRADINGVIEW_IPS = {"52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"}


def _paths(synthesized: Any) -> dict[str, str]:
    resources = synthesized.of_type("AWS::ApiGateway::Resource")

    def path_of(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = logical_id_of(props["ParentId"])
        prefix = path_of(parent) if parent is not None and parent in resources else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path_of(logical_id) for logical_id in resources}


@pytest.fixture(scope="module")
def methods(synthesized: Any) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(synthesized)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for value in synthesized.of_type("AWS::ApiGateway::Method").values():
        props = value["Properties"]
        path = paths.get(logical_id_of(props["ResourceId"]) or "", "/")
        found[(props["HttpMethod"], path)] = props
    return found


@pytest.fixture(scope="module")
def stage(synthesized: Any) -> dict[str, Any]:
    (value,) = synthesized.of_type("AWS::ApiGateway::Stage").values()
    return dict(value["Properties"])


def _function_of(method: dict[str, Any]) -> str:
    return flatten(method["Integration"]["Uri"])


def test_routes_are_the_webhook_the_operator_api_and_the_console(methods: dict[tuple[str, str], Any]) -> None:
    assert set(methods) == OPERATOR_ROUTES | CONSOLE_ROUTES | {("POST", "/webhook")}


def test_every_operator_route_needs_a_cognito_token_and_the_webhook_and_page_none(
    methods: dict[tuple[str, str], Any], synthesized: Any
) -> None:
    (authorizer_id, authorizer), *others = synthesized.of_type("AWS::ApiGateway::Authorizer").items()
    assert not others
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    (pool_id,) = synthesized.of_type("AWS::Cognito::UserPool")
    assert logical_id_of(authorizer["Properties"]["ProviderARNs"][0]) == pool_id
    for route in OPERATOR_ROUTES:
        assert methods[route]["AuthorizationType"] == "COGNITO_USER_POOLS", route
        assert logical_id_of(methods[route]["AuthorizerId"]) == authorizer_id, route
        assert methods[route]["Integration"]["Type"] == "AWS_PROXY"
    for route in (("POST", "/webhook"), *CONSOLE_ROUTES):
        assert methods[route]["AuthorizationType"] == "NONE", route
        assert "AuthorizerId" not in methods[route], route
    operator_targets = {_function_of(methods[route]) for route in OPERATOR_ROUTES | CONSOLE_ROUTES}
    assert len(operator_targets) == 1
    assert _function_of(methods[("POST", "/webhook")]) not in operator_targets


def test_operators_are_admin_created_and_the_console_client_has_no_secret(synthesized: Any) -> None:
    (pool,) = synthesized.of_type("AWS::Cognito::UserPool").values()
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    (client,) = synthesized.of_type("AWS::Cognito::UserPoolClient").values()
    props = client["Properties"]
    assert props.get("GenerateSecret", False) is False
    assert props["AllowedOAuthFlows"] == ["code"] and props["AllowedOAuthFlowsUserPoolClient"] is True
    (callback,) = props["CallbackURLs"]
    assert "execute-api" in flatten(callback)
    (domain,) = synthesized.of_type("AWS::Cognito::UserPoolDomain").values()
    assert domain["Properties"]["Domain"] == "execution-engine-dev-console"


def test_operator_path_parameters_are_required(methods: dict[tuple[str, str], Any]) -> None:
    assert methods[("POST", "/groups/{id}/{action}")]["RequestParameters"] == {
        "method.request.path.id": True,
        "method.request.path.action": True,
    }
    assert methods[("DELETE", "/queue/{id}")]["RequestParameters"] == {"method.request.path.id": True}


def test_stage_throttles_and_logs_without_request_bodies(stage: dict[str, Any]) -> None:
    assert stage["StageName"] == "dev"
    settings = {(s["HttpMethod"], s["ResourcePath"]): s for s in stage["MethodSettings"]}
    default = settings[("*", "/*")]
    assert default["ThrottlingRateLimit"] == 10
    assert default["ThrottlingBurstLimit"] == 20
    assert default["LoggingLevel"] == "ERROR"
    assert default["DataTraceEnabled"] is False
    assert default["MetricsEnabled"] is True
    webhook = settings[("POST", "/~1webhook")]
    assert webhook["ThrottlingRateLimit"] == 25
    assert webhook["ThrottlingBurstLimit"] == 50


def test_access_logs_go_to_a_log_group_as_json(stage: dict[str, Any], synthesized: Any) -> None:
    access = stage["AccessLogSetting"]
    group = synthesized.resources[logical_id_of(access["DestinationArn"]) or ""]
    assert group["Type"] == "AWS::Logs::LogGroup"
    log_format = json.loads(access["Format"])
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status"} <= set(log_format)


def test_waf_blocks_bodies_over_8_kib_on_the_stage(synthesized: Any) -> None:
    ((acl_id, acl),) = synthesized.of_type("AWS::WAFv2::WebACL").items()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    assert props["DefaultAction"] == {"Allow": {}}
    rule, _rate = props["Rules"]
    size = rule["Statement"]["SizeConstraintStatement"]
    assert size["ComparisonOperator"] == "GT"
    assert size["Size"] == 8192
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    body = props["CustomResponseBodies"][rule["Action"]["Block"]["CustomResponse"]["CustomResponseBodyKey"]]
    assert json.loads(body["Content"])["error"] == "body_too_large"

    (association,) = synthesized.of_type("AWS::WAFv2::WebACLAssociation").values()
    assert logical_id_of(association["Properties"]["WebACLArn"]) == acl_id
    assert "/stages/" in flatten(association["Properties"]["ResourceArn"])


def test_waf_limits_each_address_to_300_webhook_requests_per_5_minutes(synthesized: Any) -> None:
    (acl,) = synthesized.of_type("AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    (rule,) = [rule for rule in props["Rules"] if "RateBasedStatement" in rule["Statement"]]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP"
    assert rate["Limit"] == 300
    assert rate["EvaluationWindowSec"] == 300
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert (match["PositionalConstraint"], match["SearchString"]) == ("ENDS_WITH", "/webhook")
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = props["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert json.loads(body["Content"])["error"] == "rate_limited"


def test_account_wide_cloudwatch_role_survives_the_stage_stack(synthesized: Any) -> None:
    """The API Gateway account setting and its role serve every API in the account and region."""
    (account_id, account) = next(iter(synthesized.of_type("AWS::ApiGateway::Account").items()))
    assert account["DeletionPolicy"] == "Retain"
    role = synthesized.resources[logical_id_of(account["Properties"]["CloudWatchRoleArn"]) or ""]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["DeletionPolicy"] == "Retain"
    # The stage's access logs need the account setting in place first.
    (stage_value,) = synthesized.of_type("AWS::ApiGateway::Stage").values()
    assert account_id in stage_value["DependsOn"]


def test_dev_stage_without_the_flag_has_no_resource_policy(synthesized: Any) -> None:
    (api,) = synthesized.of_type("AWS::ApiGateway::RestApi").values()
    assert "Policy" not in api["Properties"]
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_allowlist_is_the_default_outside_dev_and_admits_only_tradingview_on_the_webhook(
    synthesized_with_allowlist: Any,
) -> None:
    (api,) = synthesized_with_allowlist.of_type("AWS::ApiGateway::RestApi").values()
    statement, others = api["Properties"]["Policy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"] == "execute-api:/*/POST/webhook"
    assert set(statement["Condition"]["IpAddress"]["aws:SourceIp"]) == TRADINGVIEW_IPS
    # The page and the (Cognito-authorised) operator routes stay reachable; the webhook is not among them.
    assert "Condition" not in others
    assert (
        "execute-api:/*/GET/" in others["Resource"] and "execute-api:/*/POST/groups/*/*" in others["Resource"]
    )
    assert not any("webhook" in resource for resource in others["Resource"])


def test_toggling_the_allowlist_forces_a_new_deployment(
    synthesized: Any, synthesized_with_allowlist: Any
) -> None:
    (default_deployment,) = synthesized.of_type("AWS::ApiGateway::Deployment")
    (allowlist_deployment,) = synthesized_with_allowlist.of_type("AWS::ApiGateway::Deployment")
    assert default_deployment != allowlist_deployment
