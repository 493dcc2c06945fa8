"""The local HTTP surface: the same routes as the REST API in AWS, plus the ``/_local/*`` controls.

``POST /webhook`` goes to the ``webhook`` function (resource ``/webhook``); every other path outside
``/_local/`` goes to ``operator_api`` (resource ``/{proxy+}``), each as an API Gateway REST proxy
event. The function's ``statusCode``/``headers``/``body`` become the HTTP response; an exception or a
malformed result is a 502 ``{"message": "Internal server error"}``, as API Gateway answers.

The operator routes need no sign-in locally, so another web page open in the same browser must not be
able to drive them (DESIGN §6): a state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin``
names another origin, or whose ``Host`` is not this server (``127.0.0.1:PORT``, ``localhost:PORT``,
``[::1]:PORT``: a DNS-rebinding page sends its own name), is refused 403 ``forbidden_origin``. Requests
without ``Origin`` (scripts, curl) are served, and ``POST /webhook`` is never origin-checked.
"""

from __future__ import annotations

import base64
import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from engine.local.events import api_gateway_event

log = logging.getLogger("engine.local.http")

#: API Gateway's payload limit; the webhook enforces its own 8 KiB limit itself.
MAX_BODY_BYTES = 10 * 1024 * 1024
LOCAL_PREFIX = "/_local/"
WEBHOOK_PATH = "/webhook"
#: Methods that change state: origin-checked (except the webhook).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def origin_refusal(method: str, path: str, headers: Any, port: int, bound_host: str) -> str | None:
    """Why a request must be refused as cross-origin (the module doc), or None to serve it."""
    if method not in UNSAFE_METHODS or path.rstrip("/") == WEBHOOK_PATH:
        return None
    names = {*LOOPBACK_NAMES, bound_host if ":" not in bound_host else f"[{bound_host}]"}
    allowed = {f"{name}:{port}".lower() for name in names}
    host = (headers.get("Host") or "").strip().lower()
    if host not in allowed:
        return f"Host {host or '(none)'!r} is not this server"
    origin = headers.get("Origin")
    if origin is None:
        return None
    if origin.strip().lower() not in {f"http://{name}" for name in allowed}:
        return f"Origin {origin!r} is not this server"
    return None


class LocalBackend(Protocol):
    """What the HTTP server needs from the runtime."""

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke a Lambda function's handler."""

    def local_control(
        self, method: str, name: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Answer ``/_local/<name>``: (status, JSON body)."""

    def webhook_handled(self, body: bytes, status: int, response_body: str) -> None:
        """Note a webhook answer for the activity log."""


class LocalHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to one backend."""

    daemon_threads = True
    block_on_close = False
    #: socketserver's default backlog is 5: a candle-close burst of 15 alerts overflowed it and a
    #: connection was reset before it was accepted.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], backend: LocalBackend) -> None:
        super().__init__(address, _RequestHandler)
        self.backend = backend

    @property
    def url(self) -> str:
        """``http://host:port`` actually bound."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"


def route(method: str, path: str) -> tuple[str, str, dict[str, str] | None] | None:
    """(function, resource, pathParameters) for a request, or None for a ``/_local/`` control."""
    if path.startswith(LOCAL_PREFIX):
        return None
    if path.rstrip("/") == WEBHOOK_PATH:
        return "webhook", WEBHOOK_PATH, None
    if path == "/":
        return "operator_api", "/", None
    return "operator_api", "/{proxy+}", {"proxy": path.lstrip("/")}


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        path = url.path or "/"
        target = route(self.command, path)
        refusal = origin_refusal(
            self.command,
            path,
            self.headers,
            self.server.server_address[1],
            str(self.server.server_address[0]),
        )
        if refusal is not None:
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "forbidden_origin", "reason": refusal})
            return
        try:
            if target is None:
                self._local(path[len(LOCAL_PREFIX) :], url.query, body)
            elif target[0] == "webhook" and self.command != "POST":
                self._send_json(HTTPStatus.FORBIDDEN, {"message": "Missing Authentication Token"})
            else:
                self._proxy(target, path, url.query, body)
        except Exception:
            log.exception("local HTTP request %s %s failed", self.command, self.path)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error"})

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {"message": "Content-Length required"})
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send_json(HTTPStatus.BAD_REQUEST, {"message": "Invalid Content-Length"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "Request Too Long"})
            return None
        return self.rfile.read(length) if length else b""

    def _proxy(
        self, target: tuple[str, str, dict[str, str] | None], path: str, query: str, body: bytes
    ) -> None:
        function, resource, path_parameters = target
        event = api_gateway_event(
            method=self.command,
            path=path,
            query=query,
            headers=list(self.headers.items()),
            body=body,
            resource=resource,
            source_ip=self.client_address[0],
            path_parameters=path_parameters,
        )
        try:
            result = self.server.backend.invoke(function, event)
            status, headers, payload = _proxy_response(result)
        except Exception:
            log.exception("%s failed on %s %s", function, self.command, path)
            status, headers = HTTPStatus.BAD_GATEWAY, {"Content-Type": ["application/json"]}
            payload = json.dumps({"message": "Internal server error"}).encode()
        if function == "webhook":
            self.server.backend.webhook_handled(body, status, payload.decode("utf-8", "replace"))
        self._send(status, headers, payload)

    def _local(self, name: str, query: str, body: bytes) -> None:
        status, answer = self.server.backend.local_control(self.command, name, parse_qs(query), body)
        self._send_json(status, answer)

    def _send_json(self, status: int, answer: Any) -> None:
        self._send(status, {"Content-Type": "application/json"}, json.dumps(answer).encode())

    def _send(self, status: int, headers: dict[str, list[str]] | dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, values in headers.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            for value in values if isinstance(values, list) else [values]:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _proxy_response(result: Any) -> tuple[int, dict[str, list[str]], bytes]:
    """Status, headers and body bytes from a Lambda proxy result; ValueError when malformed."""
    if not isinstance(result, dict) or "statusCode" not in result:
        raise ValueError(f"malformed Lambda proxy response: {result!r:.200}")
    status = int(result["statusCode"])
    headers: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        headers[name] = [str(value)]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = [str(value) for value in values]
    raw = result.get("body")
    if raw is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(raw)
    else:
        payload = str(raw).encode("utf-8")
    return status, headers, payload
