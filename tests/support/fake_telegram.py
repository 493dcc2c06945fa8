"""A fake Telegram Bot API (``POST /bot<token>/sendMessage``) on a local port, in a thread.

Each request takes the next scripted behaviour (then ``"ok"`` for ever):

- ``"ok"``: the message is delivered (kept in :attr:`FakeTelegram.messages`), answer 200 ``{"ok": true}``;
- ``"429"``: answer 429 with ``parameters.retry_after`` = :attr:`FakeTelegram.retry_after`, not delivered;
- ``"timeout"``: hold the request for :attr:`FakeTelegram.hold_seconds` (longer than the client waits)
  and drop the connection, not delivered;
- ``"500"``: answer 500, not delivered.

Every request is logged in :attr:`FakeTelegram.requests` as (monotonic time, behaviour, chat_id, text).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeTelegram:
    """The fake server; use as a context manager (starts and stops the thread)."""

    def __init__(self, *, retry_after: int = 1, hold_seconds: float = 1.5) -> None:
        self.retry_after = retry_after
        self.hold_seconds = hold_seconds
        self.script: deque[str] = deque()
        self.messages: list[dict[str, Any]] = []
        self.requests: list[tuple[float, str, str, str]] = []
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    behaviour = fake.script.popleft() if fake.script else "ok"
                    fake.requests.append(
                        (time.monotonic(), behaviour, str(body.get("chat_id")), str(body.get("text")))
                    )
                    fake.tokens.append(self.path.split("/")[1].removeprefix("bot"))
                if behaviour == "timeout":
                    time.sleep(fake.hold_seconds)
                    self.close_connection = True
                    return
                if behaviour == "429":
                    answer = {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests",
                        "parameters": {"retry_after": fake.retry_after},
                    }
                    self._answer(429, answer)
                    return
                if behaviour == "500":
                    self._answer(500, {"ok": False, "error_code": 500})
                    return
                with fake._lock:
                    fake.messages.append(body)
                self._answer(200, {"ok": True, "result": {"message_id": len(fake.messages)}})

            def _answer(self, status: int, answer: dict[str, Any]) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def texts(self) -> list[str]:
        """Texts delivered, in order."""
        with self._lock:
            return [str(message["text"]) for message in self.messages]
