"""Load ``functions/<name>/handler.py`` by file path and invoke its ``lambda_handler`` like Lambda does.

Each function is imported once (a cold start), under its own module name, so two ``handler.py``
files never collide in ``sys.modules``. As in Lambda, the function folder is *not* put on
``sys.path``: a handler imports only ``engine`` (the layer) and third-party packages.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.local.priority import Priorities
from engine.local.settings import ACCOUNT_ID, APP, STAGE

Handler = Callable[[Any, Any], Any]


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
