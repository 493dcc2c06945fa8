"""Load ``functions/<name>/handler.py`` by file path and invoke its ``lambda_handler`` like Lambda does.

Each function is imported once (a cold start), under its own module name, so two ``handler.py``
files never collide in ``sys.modules``. As in Lambda, the function folder is *not* put on
``sys.path``: a handler imports only ``engine`` (the layer) and third-party packages.

Priorities: who goes first when every function of the local runtime shares one process.

In AWS each Lambda invocation has a CPU of its own: a webhook is answered in the same time whether the
order sync is refreshing fifty groups or not. Locally the webhook, the stream consumers, the scheduled
functions and moto share one Python process (one core at a time under the GIL), so a busy sync pass or
a long position_update batch made the webhook's answer — which TradingView abandons after 3 s — and
the first order of a signal wait their turn.

:class:`Priorities` restores what AWS gives the answers TradingView waits for: every invocation runs at a
level — answers to HTTP callers (:data:`ANSWER`: webhook, operator API), the stream consumers that carry
a signal's orders and fills and the risk engine (:data:`BACKGROUND`), or the order sync's polling passes
(:data:`POLL`). Before each of its AWS requests a thread waits while an invocation of a higher level is
running: at most ``max_wait`` seconds a request behind an answer, at most ``poll_wait`` behind a
stream consumer, so nothing starves. Threads that never declared a level (the moto server's own threads,
other processes' requests) never wait. Only the order in which work gets the CPU changes: every
function still runs to completion with the same requests, and the streams still deliver every record in
order.

The order sync yields to the stream consumers because its cost grows with the open book: the fast pass
refreshes every open group every ``engine.sync_interval_seconds``, and with fifty groups open it took
half the process's CPU, so the next signal's orders waited behind it. Behind a busy stream a pass takes
longer (each request waits at most ``poll_wait``); when the streams are quiet nothing waits. The risk
engine stays in the background level: its partial close of a winner cancels the winner's take-profit,
then writes the close and the resized take-profit, and slowed down between those steps it let
position_update re-place the whole take-profit first (the close was then refused for want of the coin).

The order executor stays in the background level on purpose. It has a pump lane of its own, so a new
signal's orders never wait behind a long position_update batch, but it shares the CPU with
position_update: when signals come back to back (the soak benchmark sends the next one as soon as the
previous one's first order is on the book), a higher level for sends would leave the take-profits and
closes that position_update places waiting for as long as the signals keep coming.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.local.settings import ACCOUNT_ID, APP, STAGE

Handler = Callable[[Any, Any], Any]

POLL = 0
BACKGROUND = 1
ANSWER = 2

#: Function name -> level; functions not named run in the background.
FUNCTION_LEVELS = {"webhook": ANSWER, "operator_api": ANSWER, "order_sync": POLL}


class Priorities:
    """Levels of the running invocations, and the wait of lower ones (module docstring)."""

    def __init__(self, max_wait: float = 1.0, poll_wait: float = 0.05) -> None:
        self.max_wait = max_wait
        self.poll_wait = poll_wait
        #: The longest a lower level waits, a request, while an invocation of this level runs.
        self._bounds = {ANSWER: max_wait, BACKGROUND: poll_wait}
        self._running = [0, 0, 0]
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

    def admit(self) -> None:
        """Called before each AWS request: wait while an invocation above this thread's level runs (the
        highest first, each for at most its bound)."""
        level = getattr(self._thread, "level", None)
        if level is None or level >= ANSWER or not any(self._running[level + 1 :]):
            return
        with self._changed:
            self.waits += 1
            for higher in range(ANSWER, level, -1):
                deadline = time.monotonic() + self._bounds[higher]
                while self._running[higher]:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)

    def level_of(self, function: str) -> int:
        """The level invocations of ``function`` run at."""
        return FUNCTION_LEVELS.get(function, BACKGROUND)


class FunctionNotFound(LookupError):
    """No ``functions/<name>/handler.py`` (or no ``lambda_handler`` in it)."""


@dataclass
class LambdaContext:
    """The fields of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: float = 30.0
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionRegistry:
    """The Lambda functions of one functions root, loaded on first use."""

    def __init__(self, root: Path, region: str, priorities: Priorities | None = None) -> None:
        self.root = root
        self.region = region
        self.priorities = priorities
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()

    def path_of(self, name: str) -> Path:
        """``<root>/<name>/handler.py``."""
        return self.root / name / "handler.py"

    def exists(self, name: str) -> bool:
        """True when the function's handler file is present."""
        return self.path_of(name).is_file()

    def module(self, name: str) -> ModuleType:
        """The function's handler module, imported on the first call (once per registry, like a warm
        Lambda container)."""
        with self._lock:
            module = self._modules.get(name)
            if module is None:
                module = self._load(name)
                self._modules[name] = module
        return module

    def name_of(self, module: ModuleType) -> str | None:
        """The function name under which ``module`` was loaded by this registry, or None."""
        with self._lock:
            return next((name for name, loaded in self._modules.items() if loaded is module), None)

    def handler(self, name: str) -> Handler:
        """The function's ``lambda_handler``, importing its module on the first call."""
        module = self.module(name)
        handler = getattr(module, "lambda_handler", None)
        if not callable(handler):
            raise FunctionNotFound(f"{self.path_of(name)} has no lambda_handler")
        return handler  # type: ignore[no-any-return]

    def _load(self, name: str) -> ModuleType:
        path = self.path_of(name)
        if not path.is_file():
            raise FunctionNotFound(f"no handler for function {name!r} at {path}")
        module_name = f"_local_function_{name}_handler"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise FunctionNotFound(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    def context(self, name: str) -> LambdaContext:
        """A fresh Lambda context for one invocation of ``name``."""
        function_name = f"{APP}-{STAGE}-{name}"
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function_name}"
        return LambdaContext(function_name=function_name, invoked_function_arn=arn)

    def invoke(self, name: str, event: Any) -> Any:
        """Call the function's ``lambda_handler(event, context)`` (at its level of ``priorities``, when
        the registry has them); its exceptions propagate."""
        handler = self.handler(name)
        if self.priorities is None:
            return handler(event, self.context(name))
        with self.priorities.running(self.priorities.level_of(name)):
            return handler(event, self.context(name))
