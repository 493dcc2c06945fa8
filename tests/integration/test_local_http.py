"""The local HTTP surface with fake handlers: API Gateway proxy events in, proxy responses out."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.local.events import api_gateway_event, scheduled_event
from engine.local.functions import FunctionNotFound, FunctionRegistry
from engine.local.http_api import LocalHttpServer, route
from engine.local.scheduler import Schedule, Scheduler

ECHO_HANDLER = """
import json
CALLS = []

def lambda_handler(event, context):
    CALLS.append(event)
    return {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json", "X-Function": context.function_name},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps({
            "event": event,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "request_id": context.aws_request_id,
        }),
    }
"""

FAILING_HANDLER = """
def lambda_handler(event, context):
    raise RuntimeError("boom")
"""

MALFORMED_HANDLER = """
def lambda_handler(event, context):
    return "not a proxy response"
"""

SAME_NAME_HANDLER = """
WHO = "{name}"

def lambda_handler(event, context):
    return WHO
"""


def _write(root: Path, name: str, source: str) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "handler.py").write_text(source)


class Backend:
    """A minimal runtime backend: invoke through a FunctionRegistry; controls echo their input."""

    def __init__(self, registry: FunctionRegistry) -> None:
        self.registry = registry
        self.webhooks: list[tuple[bytes, int, str]] = []

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return self.registry.invoke(function, event)

    def local_control(self, method: str, name: str, query: dict[str, list[str]], body: bytes):
        return 200, {"method": method, "name": name, "query": query, "body": body.decode()}

    def webhook_handled(self, body: bytes, status: int, response_body: str) -> None:
        self.webhooks.append((body, status, response_body))


@pytest.fixture
def functions_root(tmp_path: Path) -> Path:
    root = tmp_path / "functions"
    _write(root, "webhook", ECHO_HANDLER)
    _write(root, "operator_api", ECHO_HANDLER)
    return root


@pytest.fixture
def server(functions_root: Path) -> Iterator[tuple[str, Backend]]:
    backend = Backend(FunctionRegistry(functions_root, "us-east-1"))
    http = LocalHttpServer(("127.0.0.1", 0), backend)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield http.url, backend
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)


def _request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_webhook_post_reaches_the_webhook_function_as_a_rest_proxy_event(server):
    # Given the local server with an echoing webhook function
    url, backend = server
    raw = b'{"secret": "s", "tv": {"symbol": "BTCUSDT"}}'

    # When TradingView posts text/plain to /webhook with a query string
    status, headers, body = _request(
        f"{url}/webhook?a=1&a=2&b=x", "POST", raw, {"Content-Type": "text/plain; charset=utf-8"}
    )

    # Then the function's status, headers and body come back
    assert status == 202
    assert headers["X-Function"] == "execution-engine-local-webhook"
    answer = json.loads(body)
    event = answer["event"]
    # And the event has API Gateway's REST proxy (v1) shape
    assert event["resource"] == "/webhook" and event["path"] == "/webhook"
    assert event["httpMethod"] == "POST"
    assert event["body"] == raw.decode() and event["isBase64Encoded"] is False
    assert event["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert event["multiValueHeaders"]["Content-Type"] == ["text/plain; charset=utf-8"]
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["pathParameters"] is None
    context = event["requestContext"]
    assert context["resourcePath"] == "/webhook" and context["httpMethod"] == "POST"
    assert context["path"] == "/local/webhook" and context["stage"] == "local"
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["requestId"]
    # And the fake Lambda context carries what Powertools reads
    assert 0 < answer["remaining_ms"] <= 30000 and answer["memory"] == 512
    assert answer["arn"].endswith(":function:execution-engine-local-webhook") and answer["request_id"]
    # And the runtime is told about the answer (activity log)
    assert backend.webhooks[0][:2] == (raw, 202)


def test_operator_routes_reach_operator_api_through_the_proxy_resource(server):
    # Given the local server
    url, _ = server

    # When an operator route is called
    status, headers, body = _request(f"{url}/groups/g-1/close", "POST", b"")

    # Then operator_api got a /{proxy+} event with the proxy path parameter and no body
    assert status == 202
    assert headers.get_all("X-Multi") == ["a", "b"]  # multiValueHeaders: one header line per value
    event = json.loads(body)["event"]
    assert event["resource"] == "/{proxy+}" and event["path"] == "/groups/g-1/close"
    assert event["pathParameters"] == {"proxy": "groups/g-1/close"}
    assert event["body"] is None and event["queryStringParameters"] is None
    assert event["requestContext"]["resourcePath"] == "/{proxy+}"


def test_a_binary_body_is_sent_base64_encoded():
    # Given a body that is not UTF-8, when the event is built, then it is base64 with the flag set
    event = api_gateway_event(
        method="POST",
        path="/webhook",
        query="",
        headers=[],
        body=b"\xff\xfe",
        resource="/webhook",
        source_ip="127.0.0.1",
    )
    assert event["body"] == "//4=" and event["isBase64Encoded"] is True
    assert event["headers"] is None and event["multiValueHeaders"] is None


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/webhook", ("webhook", "/webhook", None)),
        ("GET", "/groups", ("operator_api", "/{proxy+}", {"proxy": "groups"})),
        ("DELETE", "/queue/q1", ("operator_api", "/{proxy+}", {"proxy": "queue/q1"})),
        ("POST", "/_local/tick", None),
    ],
)
def test_routes(method, path, expected):
    # Given a request line, when routed, then it names the function, resource and path parameters
    assert route(method, path) == expected


def test_local_controls_are_answered_by_the_runtime_not_a_function(server):
    # Given the local server, when a /_local/ control is called
    url, _ = server
    status, _, body = _request(f"{url}/_local/prices?exchange=binance", "POST", b'{"BTC/USDT": 1}')

    # Then the runtime answers it with the parsed query and raw body
    assert status == 200
    assert json.loads(body) == {
        "method": "POST",
        "name": "prices",
        "query": {"exchange": ["binance"]},
        "body": '{"BTC/USDT": 1}',
    }


def test_a_handler_exception_is_a_502_like_api_gateway(server, functions_root):
    # Given a webhook function that raises
    _write(functions_root, "webhook", FAILING_HANDLER)
    url, backend = server
    backend.registry = FunctionRegistry(functions_root, "us-east-1")

    # When it is called, then the answer is API Gateway's 502
    status, _, body = _request(f"{url}/webhook", "POST", b"{}")
    assert status == 502 and json.loads(body) == {"message": "Internal server error"}


def test_a_malformed_proxy_response_is_a_502(server, functions_root):
    # Given an operator function that returns something that is not a proxy response
    _write(functions_root, "operator_api", MALFORMED_HANDLER)
    url, backend = server
    backend.registry = FunctionRegistry(functions_root, "us-east-1")

    # When it is called, then the answer is a 502
    status, _, _ = _request(f"{url}/pool")
    assert status == 502


def test_get_on_the_webhook_is_refused_like_an_undefined_method(server):
    # Given the webhook accepts POST only, when it is fetched with GET, then API Gateway's 403 comes back
    url, _ = server
    status, _, body = _request(f"{url}/webhook")
    assert status == 403 and json.loads(body)["message"] == "Missing Authentication Token"


def test_functions_with_the_same_file_name_load_as_separate_modules(tmp_path):
    # Given two functions whose handler.py define the same global differently
    root = tmp_path / "functions"
    _write(root, "one", SAME_NAME_HANDLER.format(name="one"))
    _write(root, "two", SAME_NAME_HANDLER.format(name="two"))
    registry = FunctionRegistry(root, "us-east-1")

    # When both are invoked, then each answers from its own module
    assert registry.invoke("one", {}) == "one"
    assert registry.invoke("two", {}) == "two"
    assert registry.invoke("one", {}) == "one"


def test_a_missing_function_is_reported_by_name(tmp_path):
    # Given an empty functions root, when a function is invoked, then the error names it
    registry = FunctionRegistry(tmp_path, "us-east-1")
    assert not registry.exists("webhook")
    with pytest.raises(FunctionNotFound, match="webhook"):
        registry.invoke("webhook", {})


def test_scheduled_events_have_the_eventbridge_shape_and_force_only_on_demand(tmp_path):
    # Given a scheduler over a recording invoke
    calls: list[tuple[str, dict[str, Any]]] = []
    scheduler = Scheduler(
        [Schedule("order_sync", 5)], lambda name, event: calls.append((name, event)), "us-east-1"
    )

    # When run on demand with and without force
    scheduler.run_now("order_sync", force=True)
    scheduler.run_now("risk_engine")

    # Then both are EventBridge scheduled events; only the forced one carries detail.force
    (first_name, forced), (second_name, plain) = calls
    assert (first_name, second_name) == ("order_sync", "risk_engine")
    assert forced["detail"] == {"force": True} and plain["detail"] == {}
    for event in (forced, plain):
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["time"].endswith("Z") and event["resources"][0].startswith("arn:aws:events:us-east-1:")
    assert scheduled_event("r", "eu-west-1")["region"] == "eu-west-1"


def test_the_scheduler_thread_fires_on_its_period():
    # Given a short period, when the scheduler runs, then the function is invoked with a plain event
    fired = threading.Event()
    events: list[dict[str, Any]] = []

    def invoke(name: str, event: dict[str, Any]) -> None:
        events.append(event)
        fired.set()

    scheduler = Scheduler([Schedule("order_sync", 0.05)], invoke, "us-east-1")
    scheduler.start()
    try:
        assert fired.wait(10)
    finally:
        scheduler.stop()
    assert events[0]["detail"] == {}


def test_a_burst_of_connections_waits_in_the_backlog_instead_of_being_dropped(functions_root: Path) -> None:
    import socket

    # Given a server that is not accepting yet (its thread busy elsewhere, as under a burst)
    http = LocalHttpServer(("127.0.0.1", 0), Backend(FunctionRegistry(functions_root, "us-east-1")))
    host, port = http.server_address[:2]
    sockets: list[socket.socket] = []
    try:
        # When 30 clients connect at once, then every connection is queued (the default backlog held 5)
        for n in range(30):
            try:
                client = socket.create_connection((str(host), port), timeout=2)
            except OSError as exc:
                pytest.fail(f"connection {n + 1} of the burst was not queued: {exc}")
            client.settimeout(10)
            client.sendall(b"GET /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sockets.append(client)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        # And once the server accepts, every one of them is answered
        answers = [client.recv(64) for client in sockets]
        assert all(answer.startswith(b"HTTP/1.") for answer in answers), answers
    finally:
        for client in sockets:
            client.close()
        http.shutdown()
        http.server_close()
