"""A moto server that handles one request at a time.

moto's DynamoDB is not safe under concurrent requests: a cancelled ``transact_write_items`` restores a
copy of the tables and can erase other threads' writes (DESIGN §8). Real DynamoDB makes each request
atomic; serialising requests with one lock models exactly that. :attr:`SerialisedMotoServer.lock` is
that lock: the local runtime holds it to trim streams and to take a consistent cut of the state.

moto's WSGI app is served by a small HTTP/1.1 server of this module rather than werkzeug's development
server, which answers every request with ``Connection: close`` and then waits for the client to hang up
(it cannot tell an unread body from the next request): every AWS call of the runtime opened a TCP
connection, and the server started a thread for it. :class:`_Handler` reads each body in full, answers
with a ``Content-Length`` and keeps the connection, so clients reuse their pooled connections.

The AWS clients of this process (the handlers', the pump's) skip the socket altogether: a botocore
``before-send`` handler (:func:`_in_process`, installed for every botocore session created after
:meth:`SerialisedMotoServer.start`) hands a request addressed to the running server's endpoint straight
to the same WSGI app, under the same lock, and returns its answer — the request is signed, serialised
and parsed exactly as over HTTP, without a TCP round trip and a server thread. Other processes (the aws
CLI, tests, the console's edits) use HTTP.

moto's dispatcher is :class:`engine.local.aws.dispatcher.Dispatcher` (remembered backends, DynamoDB
without Flask).

Requests to a server of this process are not signed either (:func:`_unsigned_add_auth`): moto reads
the credential scope of the ``Authorization`` header (access key, region, service) and checks no
signature, and SigV4's canonical request and four HMACs were ~15 % of a request's CPU. The header keeps
its shape with a signature of zeros; requests to anything else are signed as botocore signs them.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import botocore.handlers
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders, get_current_datetime
from moto.moto_server.werkzeug_app import create_backend_app

from engine.local.aws import install_cost_fixes
from engine.local.aws.dispatcher import Dispatcher

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    #: socketserver's default backlog is 5: a candle-close burst of 15 alerts overflowed it and a
    #: connection was reset before it was accepted.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: WsgiApp) -> None:
        super().__init__(address, _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    """One WSGI call per request on a kept-alive HTTP/1.1 connection."""

    server: _Server
    protocol_version = "HTTP/1.1"
    #: An idle connection is closed after this many seconds (the client reconnects).
    timeout = 120

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: no Nagle delay on a connection that stays open.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        address = self.server.server_address[:2]
        environ = _environ(self.command, path, query, self.headers.items(), self._body(), address)  # type: ignore[arg-type]
        environ["SERVER_PROTOCOL"] = self.request_version
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = self.client_address[:2]
        code, reason, headers, payload = _call(self.server.app, environ)
        self.send_response(code, reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


def _environ(
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    server: tuple[str, int],
) -> dict[str, Any]:
    """A WSGI environ for one request (what moto's Flask app reads)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, raw in headers:
        value = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if environ.get(key) else value
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Run ``app``: (status code, reason, headers, body)."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"], answer["headers"] = status, headers
        return lambda data: None  # moto never uses write()

    payload = b"".join(app(environ, start_response))
    code, _, reason = answer["status"].partition(" ")
    return int(code), reason, answer["headers"], payload


class _RawResponse(io.BytesIO):
    """The raw body botocore reads from an in-process answer."""

    def stream(self, **_: Any) -> Iterable[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


#: Endpoint URL -> (WSGI app, server address) of the servers running in this process.
_IN_PROCESS: dict[str, tuple[WsgiApp, tuple[str, int]]] = {}


def _server_of(url: str) -> tuple[WsgiApp, tuple[str, int]] | None:
    """The server of this process that ``url`` is addressed to, or None."""
    if not _IN_PROCESS:
        return None
    parts = urlsplit(url)
    return _IN_PROCESS.get(f"{parts.scheme}://{parts.netloc}")


def _in_process(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    """botocore ``before-send``: answer requests to a server of this process without a socket."""
    target = _server_of(request.url)
    if target is None:
        return None
    app, address = target
    parts = urlsplit(request.url)
    body = request.body or b""
    if not isinstance(body, bytes):
        body = body.encode("utf-8") if isinstance(body, str) else body.read()
    environ = _environ(request.method, parts.path or "/", parts.query, request.headers.items(), body, address)
    code, _reason, headers, payload = _call(app, environ)
    answer_headers = HTTPHeaders()
    for name, value in headers:
        answer_headers[name] = value
    answer_headers["Content-Length"] = str(len(payload))
    return AWSResponse(request.url, code, answer_headers, _RawResponse(payload))  # type: ignore[arg-type]


_BOTOCORE_ADD_AUTH = SigV4Auth.add_auth
_NO_SIGNATURE = "0" * 64


def _unsigned_add_auth(self: SigV4Auth, request: Any) -> None:
    """botocore's SigV4 ``add_auth``; for a server of this process, the headers without the signature."""
    if _server_of(request.url) is None:
        _BOTOCORE_ADD_AUTH(self, request)
        return
    request.context["timestamp"] = get_current_datetime().strftime(SIGV4_TIMESTAMP)
    self._modify_request_before_signing(request)  # the date and session token headers, as signed
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, SignedHeaders=host, Signature={_NO_SIGNATURE}"
    )


def _install_in_process() -> None:
    """Offer :func:`_in_process` to every botocore session created from now on, and skip signing what
    it answers (once)."""
    if ("before-send", _in_process) not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(("before-send", _in_process))
    SigV4Auth.add_auth = _unsigned_add_auth  # type: ignore[method-assign]


class SerialisedMotoServer:
    """moto's WSGI app behind a threaded keep-alive HTTP server, every request under one lock.

    ``admission`` (optional) is called before each request takes the lock, on the requesting thread (the
    local runtime's :meth:`engine.local.priority.Priorities.admit`).
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, admission: Callable[[], None] | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._admission = admission
        self.lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> WsgiApp:
        moto_app = Dispatcher(create_backend_app)
        lock, admission = self.lock, self._admission

        def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if admission is not None:
                admission()
            with lock:
                # Materialise the body inside the lock: moto builds it lazily.
                return list(moto_app(environ, start_response))

        return serialised

    def start(self, *, in_process: bool = True) -> str:
        """Start serving in a daemon thread; returns the endpoint URL (moto's cost fixes installed).

        ``in_process``: this process's AWS clients created from now on reach it without a socket.
        """
        install_cost_fixes()
        app = self._app()
        self._server = _Server((self._host, self._port), app)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto")
        self._thread.start()
        if in_process:
            _install_in_process()
            _IN_PROCESS[self.endpoint_url] = (app, self._server.server_address[:2])  # type: ignore[assignment]
        return self.endpoint_url

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            _IN_PROCESS.pop(self.endpoint_url, None)
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
