"""The EventBridge schedules of the local runtime: scheduled functions on fixed local periods.

In AWS both rules fire every minute and each handler decides from its config and last-run item
whether its interval has passed; order_sync's fast pass also runs from the fast loop's ticks. Locally
there is no loop: order_sync is asked every second (``LOCAL_SYNC_SECONDS`` 1), so it runs its fast pass
every ``engine.sync_interval_seconds`` and its minute pass once a minute, by the same last-run items;
risk_engine every ``LOCAL_RISK_SECONDS`` (30). :meth:`Scheduler.run_now` with ``force=True``
(``POST /_local/tick``) sends ``"detail": {"force": true}``, which the handlers honour by ignoring
their intervals.

One run of a function at a time: a tick and a due schedule never overlap for the same function.
:meth:`Scheduler.last_runs` (wall-clock starts) is saved with the local state; a scheduler built with
``last_runs`` fires each schedule one period after its saved run (at once when that is past).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.local.events import scheduled_event
from engine.local.settings import APP, STAGE

log = logging.getLogger("engine.local.scheduler")

Invoke = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Schedule:
    """A function and its local period in seconds."""

    function: str
    every_seconds: float


class Scheduler:
    """Fires each schedule on its period in a daemon thread; runs one on demand with :meth:`run_now`."""

    def __init__(
        self,
        schedules: list[Schedule],
        invoke: Invoke,
        region: str,
        last_runs: Mapping[str, float] | None = None,
    ) -> None:
        self.schedules = schedules
        self._invoke = invoke
        self._region = region
        self._last_runs: dict[str, float] = dict(last_runs or {})
        self._locks = {schedule.function: threading.Lock() for schedule in schedules}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_now(self, function: str, *, force: bool = False) -> Any:
        """Invoke ``function`` with a scheduled event now; its exceptions propagate."""
        lock = self._locks.setdefault(function, threading.Lock())
        event = scheduled_event(f"{APP}-{STAGE}-{function}-schedule", self._region, force=force)
        with lock:
            self._last_runs[function] = time.time()
            return self._invoke(function, event)

    def last_runs(self) -> dict[str, float]:
        """Function -> wall-clock time (epoch seconds) its last run started."""
        return dict(self._last_runs)

    def start(self) -> None:
        """Start firing the schedules (first run after one period)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the run in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        now, wall = time.monotonic(), time.time()
        due = {}
        for schedule in self.schedules:
            last = self._last_runs.get(schedule.function)
            wait = schedule.every_seconds if last is None else last + schedule.every_seconds - wall
            due[schedule.function] = now + min(max(wait, 0.0), schedule.every_seconds)
        while not self._stop.is_set():
            now = time.monotonic()
            for schedule in self.schedules:
                if now < due[schedule.function] or self._stop.is_set():
                    continue
                due[schedule.function] = now + schedule.every_seconds
                try:
                    self.run_now(schedule.function)
                except Exception:
                    log.exception("scheduled run of %s failed", schedule.function)
            self._stop.wait(max(0.0, min(due.values()) - time.monotonic()) if due else 1.0)
