"""The local server refuses cross-origin state changes (DESIGN §6): Given a request to the local HTTP
surface, when it changes state and names another origin (or another Host), then it is 403
``forbidden_origin`` and no function runs; scripts without ``Origin`` and the webhook are served."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from engine.local.http_api import origin_refusal
from tests.integration.test_local_http import Backend, functions_root, server  # noqa: F401

PORT = 8080


def _send(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.fixture
def base(server: tuple[str, Backend]) -> Iterator[tuple[str, str, Backend]]:  # noqa: F811
    url, backend = server
    yield url, f"http://127.0.0.1:{urlsplit(url).port}", backend


def test_a_post_from_another_origin_is_refused_and_reaches_no_function(base) -> None:
    url, _, backend = base
    status, body = _send(url, "POST", "/groups/g1/close", {"Origin": "https://evil.example"})
    assert status == 403 and body["error"] == "forbidden_origin"
    assert not backend.registry._modules  # no function was even loaded


def test_a_delete_from_another_origin_is_refused(base) -> None:
    url, _, _ = base
    assert _send(url, "DELETE", "/queue/q1", {"Origin": "http://localhost:1"})[0] == 403


def test_the_page_own_origin_and_a_script_without_origin_are_served(base) -> None:
    url, own, _ = base
    assert _send(url, "POST", "/risk/run", {"Origin": own})[0] == 202
    assert _send(url, "POST", "/risk/run", {})[0] == 202


def test_a_foreign_host_is_refused_even_without_origin(base) -> None:
    url, _, _ = base
    status, body = _send(url, "POST", "/engine/pause", {"Host": "rebound.example:80"})
    assert status == 403 and body["error"] == "forbidden_origin"


def test_reads_and_the_webhook_are_never_origin_checked(base) -> None:
    url, _, _ = base
    assert _send(url, "GET", "/groups", {"Origin": "https://evil.example"})[0] == 202
    assert _send(url, "POST", "/webhook", {"Origin": "https://tradingview.com"})[0] == 202


@pytest.mark.parametrize(
    ("method", "path", "headers", "refused"),
    [
        (
            "POST",
            "/groups/x/close",
            {"Host": f"localhost:{PORT}", "Origin": f"http://localhost:{PORT}"},
            False,
        ),
        ("POST", "/groups/x/close", {"Host": f"localhost:{PORT}", "Origin": "null"}, True),
        ("POST", "/groups/x/close", {"Host": f"[::1]:{PORT}"}, False),
        ("POST", "/groups/x/close", {"Host": f"localhost:{PORT + 1}"}, True),
        ("PATCH", "/groups/x", {"Host": "example.com"}, True),
        ("GET", "/", {"Host": "example.com", "Origin": "https://x"}, False),
        ("POST", "/webhook/", {"Host": "example.com", "Origin": "https://x"}, False),
    ],
)
def test_origin_rules(method: str, path: str, headers: dict[str, str], refused: bool) -> None:
    assert (origin_refusal(method, path, headers, PORT, "127.0.0.1") is not None) is refused
