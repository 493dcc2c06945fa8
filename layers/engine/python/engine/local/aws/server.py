"""A moto server that handles one request at a time.

moto's DynamoDB is not safe under concurrent requests: a cancelled ``transact_write_items`` restores a
copy of the tables and can erase other threads' writes (DESIGN §8). Real DynamoDB makes each request
atomic; serialising requests with one lock models exactly that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from engine.local.aws import install_cost_fixes

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class SerialisedMotoServer:
    """moto's WSGI app behind a werkzeug threaded server, every request under one lock."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> WsgiApp:
        moto_app = DomainDispatcherApplication(create_backend_app)
        lock = self._lock

        def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with lock:
                # Materialise the body inside the lock: moto builds it lazily.
                return list(moto_app(environ, start_response))

        return serialised

    def start(self) -> str:
        """Start serving in a daemon thread; returns the endpoint URL (moto's cost fixes installed)."""
        install_cost_fixes()
        self._server = make_server(
            self._host, self._port, self._app(), threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto")
        self._thread.start()
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
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
