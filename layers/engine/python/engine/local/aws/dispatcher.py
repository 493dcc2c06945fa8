"""moto's WSGI dispatcher for the local server, at a lower cost per request.

moto's dispatcher finds the backend of every request by listing moto's package folder (``os.listdir``
and an ``isdir`` per service, ~190) and trying every service's URL patterns: 2-3 ms a request. The
answer depends only on the request's host, so it is remembered per host (:class:`Dispatcher`).

DynamoDB and DynamoDB Streams requests then skip Flask: moto's Flask app only routes the request to
the service's ``dispatch`` (the same for every request of a path and method, remembered) and wraps its
answer in a Flask response, and that request context, routing and CORS post-processing cost ~0.8 ms
of the ~4 ms of CPU a ``GetItem`` took. :func:`_direct` builds moto's server-mode request from the
environ and calls ``dispatch`` as moto's view does (same request class, URL, headers; a ``ClientError``
becomes a 400 as there); every other service goes through Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from flask import Flask
from moto.core.request import Request
from moto.core.utils import convert_to_flask_response
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES


class Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher with the backend of each host remembered, and DynamoDB without Flask."""

    #: Services whose requests skip Flask (:func:`_direct`).
    DIRECT_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}
        self._views: dict[tuple[int, str, str], Callable[..., Any] | None] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        """moto's answer for ``host``, computed once."""
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        app = self.get_application(environ)
        callback = self._callback(app, environ)
        if callback is None:
            return app(environ, start_response)
        return _direct(callback, environ, start_response)

    def _callback(self, app: Flask, environ: dict[str, Any]) -> Callable[..., Any] | None:
        """moto's handler behind Flask's route for this request (None: let Flask handle it), remembered
        per app, path and method."""
        key = (id(app), environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", ""))
        if key not in self._views:
            direct = getattr(app, "service", None) in self.DIRECT_SERVICES
            self._views[key] = _routed_callback(app, environ) if direct else None
        return self._views[key]


def _routed_callback(app: Flask, environ: dict[str, Any]) -> Callable[..., Any] | None:
    """The moto handler Flask's URL map routes this request to, when it takes no URL arguments."""
    try:
        endpoint, arguments = app.url_map.bind_to_environ(environ).match()
    except HTTPException:
        return None
    view = app.view_functions.get(endpoint)
    if arguments or not isinstance(view, convert_to_flask_response):
        return None
    return view.callback


class _ServerRequest(Request):
    """moto's request as its server mode hands it over (``BackendRequest`` without Flask's parts)."""

    from_wsgi_server = True


def _direct(callback: Callable[..., Any], environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """What moto's Flask view answers for ``callback``, without Flask."""
    request = _ServerRequest(environ)
    try:
        result = callback(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    status, headers, content = result if len(result) == 3 else (200, {}, result)
    body = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
    answer = [(str(name), str(value)) for name, value in dict(headers).items()]
    if not any(name.lower() == "content-type" for name, _ in answer):
        answer.append(("Content-Type", "text/html; charset=utf-8"))
    start_response(f"{int(status)} {HTTP_STATUS_CODES.get(int(status), '')}", answer)
    return [body]
