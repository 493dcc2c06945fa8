"""A fake HTTP layer under a real ccxt exchange object.

Only ``client.session.request`` is replaced: ccxt still builds and signs every request, and its own
``fetch`` still turns statuses, bodies and ``requests`` exceptions into ccxt errors
(``handle_errors``, ``throw_exactly_matched_exception``, ``Timeout`` -> ``RequestTimeout``). Nothing
leaves the process: a request without a route fails the test.

Answers are routed by HTTP method and URL path (``GET /api/v3/order``). Each route holds a queue;
the last answer of a queue repeats. An answer is a ``Reply`` (status and JSON body), a plain
JSON-able value (status 200), a ``requests`` exception instance (raised, like a timeout), or a
callable taking the ``Sent`` request and returning one of those.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status code and body (JSON-able value, or a ``str`` sent as it is)."""

    body: Any
    status: int = 200


@dataclass(frozen=True)
class Sent:
    """One request ccxt sent: method, path, and its parameters (query string and body merged)."""

    method: str
    path: str
    params: dict[str, Any]
    url: str


def _params(url: str, data: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(urlsplit(url).query))
    if data:
        text = data.decode() if isinstance(data, bytes) else str(data)
        try:
            body = json.loads(text)
        except ValueError:
            body = dict(parse_qsl(text))
        if isinstance(body, dict):
            params.update(body)
        elif isinstance(body, list):  # a batch of one (okx places single orders as a batch)
            params["__list__"] = body
            if len(body) == 1 and isinstance(body[0], dict):
                params.update(body[0])
    return params


@dataclass
class FakeHttp:
    """Routes ccxt's HTTP requests to scripted answers and records every request."""

    routes: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    unrouted: list[str] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Any) -> FakeHttp:
        """Answer ``method path`` with ``answers`` in turn (the last one repeats)."""
        self.routes[(method.upper(), path)] = list(answers)
        return self

    def requests_to(self, method: str, path: str) -> list[Sent]:
        """The requests sent to ``method path``, oldest first."""
        return [s for s in self.sent if s.method == method.upper() and s.path == path]

    def request(self, method: str, url: str, data: Any = None, **_: Any) -> requests.Response:
        """Stand-in for ``requests.Session.request``."""
        path = urlsplit(url).path
        sent = Sent(method.upper(), path, _params(url, data), url)
        self.sent.append(sent)
        queue = self.routes.get((sent.method, path))
        if not queue:
            self.unrouted.append(f"{sent.method} {url}")
            raise AssertionError(f"no fake answer for {sent.method} {path}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Callable) and not isinstance(answer, Reply):  # type: ignore[arg-type]
            answer = answer(sent)
        if isinstance(answer, BaseException):
            raise answer
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        return _response(reply, url)


def _response(reply: Reply, url: str) -> requests.Response:
    response = requests.Response()
    response.status_code = reply.status
    response.reason = "OK" if reply.status < 400 else "Error"
    response.url = url
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
    response._content = text.encode()
    return response


def attach(client: Any) -> FakeHttp:
    """Put a ``FakeHttp`` under the real ccxt ``client`` (and switch its throttle off: no sleeping)."""
    fake = FakeHttp()
    client.session.request = fake.request
    client.enableRateLimit = False
    return fake
