"""Who goes first when every function of the local runtime shares one process.

In AWS each Lambda invocation has a CPU of its own: a webhook is answered in the same time whether the
order sync is refreshing fifty groups or not. Locally the webhook, the stream consumers, the scheduled
functions and moto share one Python process (one core at a time under the GIL), so a busy sync pass or
a long position_update batch made the webhook's answer — which TradingView abandons after 3 s — and
the first order of a signal wait their turn.

:class:`Priorities` restores what AWS gives the answers TradingView waits for: every invocation runs at a
level — answers to HTTP callers (:data:`ANSWER`: webhook, operator API) or everything else
(:data:`BACKGROUND`). Before each of its AWS requests a thread waits while an invocation of a higher
level is running (at most ``max_wait`` seconds a request, so nothing starves). Threads that never
declared a level (the moto server's own threads, other processes' requests) never wait. Only the order
in which work gets the CPU changes: every function still runs to completion with the same requests, and
the streams still deliver every record in order.

The order executor stays in the background level on purpose. It has a pump lane of its own, so a new
signal's orders never wait behind a long position_update batch, but it shares the CPU with
position_update and the sync: when signals come back to back (the soak benchmark sends the next one as
soon as the previous one's first order is on the book), a higher level for sends would leave the
take-profits and closes that position_update places waiting for as long as the signals keep coming.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

BACKGROUND = 0
ANSWER = 1

#: Function name -> level; functions not named run in the background.
FUNCTION_LEVELS = {"webhook": ANSWER, "operator_api": ANSWER}


class Priorities:
    """Levels of the running invocations, and the wait of lower ones (module docstring)."""

    def __init__(self, max_wait: float = 1.0) -> None:
        self.max_wait = max_wait
        self._running = [0, 0]
        self._changed = threading.Condition()
        self._thread = threading.local()
        self.waits = 0

    def assign(self, level: int) -> None:
        """The level of the calling thread outside invocations (a pump lane, the scheduler)."""
        self._thread.level = level

    @contextmanager
    def running(self, level: int) -> Iterator[None]:
        """Run the body as an invocation at ``level`` on this thread."""
        previous = getattr(self._thread, "level", None)
        self._thread.level = level
        with self._changed:
            self._running[level] += 1
        try:
            yield
        finally:
            with self._changed:
                self._running[level] -= 1
                self._changed.notify_all()
            self._thread.level = previous

    def _higher_running(self, level: int) -> bool:
        return any(self._running[level + 1 :])

    def admit(self) -> None:
        """Called before each AWS request: wait while an invocation above this thread's level runs."""
        level = getattr(self._thread, "level", None)
        if level is None or level >= ANSWER or not self._higher_running(level):
            return
        deadline = time.monotonic() + self.max_wait
        with self._changed:
            self.waits += 1
            while self._higher_running(level):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def level_of(self, function: str) -> int:
        """The level invocations of ``function`` run at."""
        return FUNCTION_LEVELS.get(function, BACKGROUND)
