"""Operator sign-in: a Cognito user pool whose ID tokens every operator route requires.

- Users are created by an administrator only (no self sign-up): `aws cognito-idp admin-create-user`
  (README "The operator console"). Passwords: 12+ characters of every class; optional TOTP MFA.
- The console page signs in at the pool's hosted UI (domain prefix from the `console_domain_prefix`
  context value, default `<app>-<stage>-console`) with the authorization code flow + PKCE through a
  public app client: there is no client secret, so none can reach the browser. Scripts may use
  `aws cognito-idp initiate-auth --auth-flow USER_PASSWORD_AUTH` with the same client.
- The callback and sign-out URL is the console page of the stage (`https://<api>.execute-api.<region>.
  <suffix>/<stage>/`), built from the REST API's id so it does not depend on the stage's deployment.
- The API's authorizer (`CognitoUserPoolsAuthorizer`) checks the `Authorization` header's ID token.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import StackSettings

ID_TOKEN_VALIDITY = Duration.hours(1)
REFRESH_TOKEN_VALIDITY = Duration.hours(12)


class OperatorAuth(Construct):
    """The user pool, its hosted-UI domain, the API authorizer, and (once the API exists) the client."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "Operators",
            user_pool_name=f"{settings.resource_prefix}-operators",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.domain_prefix = settings.console_domain_prefix
        self.domain = self.user_pool.add_domain(
            "HostedUi",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=settings.console_domain_prefix),
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[self.user_pool],
            authorizer_name=f"{settings.resource_prefix}-operators",
            identity_source=apigw.IdentitySource.header("Authorization"),
        )
        self.client: cognito.UserPoolClient | None = None
        acknowledge(
            self.user_pool,
            "COG2",
            "Operators are created by an administrator, sign in with a 12+ character password of every "
            "class and may enrol TOTP; MFA is optional so scripts can use initiate-auth (README).",
        )
        for rule in ("COG3", "COG8"):
            acknowledge(
                self.user_pool,
                rule,
                "Threat protection (advanced security, the Plus plan) is a paid Cognito plan; the pool holds "
                "a few admin-created operators and has no self sign-up.",
            )

    @property
    def hosted_ui_url(self) -> str:
        """`https://<prefix>.auth.<region>.amazoncognito.com`: the page's sign-in and token endpoint
        (a literal when the stack's region is: the prefix is known at synth)."""
        region = Stack.of(self).region
        return f"https://{self.domain_prefix}.auth.{region}.amazoncognito.com"

    def add_console_client(self, console_url: str) -> cognito.UserPoolClient:
        """The console's public client (code flow + PKCE, no secret) redirecting to ``console_url``."""
        self.client = self.user_pool.add_client(
            "Console",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[console_url],
                logout_urls=[console_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=ID_TOKEN_VALIDITY,
            access_token_validity=ID_TOKEN_VALIDITY,
            refresh_token_validity=REFRESH_TOKEN_VALIDITY,
            enable_token_revocation=True,
        )
        return self.client


def console_url(api: apigw.RestApi, stage: str) -> str:
    """The console page's URL from the API's id (no dependency on the stage's deployment)."""
    stack = Stack.of(api)
    return f"https://{api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}/{stage}/"
