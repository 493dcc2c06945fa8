"""The operator console page (DESIGN §6): one HTML page with its CSS and plain JavaScript, no build step.

``GET /`` answers ``engine/console/index.html`` and ``GET /console/<file>`` its assets, from the package
(they ship in the engine layer). These are the only routes API Gateway serves without sign-in; the page
holds no data and no secret. How the page signs in is written into the page's ``<body>`` data
attributes from the environment:

- ``CONSOLE_AUTH_URL`` (the Cognito hosted UI's base URL) and ``CONSOLE_CLIENT_ID`` (a public app client:
  no secret) set -> the page signs in with the authorization code flow + PKCE and sends the ID token
  as ``Authorization: Bearer`` to every operator route;
- unset (the local runtime) -> no sign-in.

Headers: a strict Content-Security-Policy (scripts, styles and requests to this origin only, plus the
sign-in's token endpoint), no framing, no referrer.
"""

from __future__ import annotations

import os
from functools import cache
from html import escape
from http import HTTPStatus
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound

console_router = Router()

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
#: Assets served under ``/console/`` and their content types.
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "auth.js": "text/javascript; charset=utf-8",
}
AUTH_PLACEHOLDER = 'data-auth=""'


@cache
def _asset(name: str) -> str:
    return (CONSOLE_DIR / name).read_text(encoding="utf-8")


def _headers(auth_url: str) -> dict[str, str]:
    connect = "'self'" + (f" {auth_url}" if auth_url else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def page() -> str:
    """The page with the sign-in settings of this deployment in its ``<body>`` attributes."""
    auth_url = os.environ.get("CONSOLE_AUTH_URL", "").rstrip("/")
    client_id = os.environ.get("CONSOLE_CLIENT_ID", "")
    if auth_url and client_id:
        attributes = (
            f'data-auth="cognito" data-auth-url="{escape(auth_url)}" data-client-id="{escape(client_id)}"'
        )
    else:
        attributes = 'data-auth="none"'
    return _asset("index.html").replace(AUTH_PLACEHOLDER, attributes, 1)


@console_router.get("/")
def console_page() -> Response:
    """The console page."""
    auth_url = os.environ.get("CONSOLE_AUTH_URL", "").rstrip("/")
    return Response(HTTPStatus.OK, "text/html; charset=utf-8", page(), headers=_headers(auth_url))


@console_router.get("/console/<name>")
def console_asset(name: str) -> Response:
    """One of the page's assets (:data:`ASSETS`); anything else is 404."""
    content_type = ASSETS.get(name)
    if content_type is None:
        raise RouteNotFound(f"no console asset {name}")
    auth_url = os.environ.get("CONSOLE_AUTH_URL", "").rstrip("/")
    return Response(HTTPStatus.OK, content_type, _asset(name), headers=_headers(auth_url))
