"""X-Ray tracing for the handlers, only where it is on.

Powertools' ``Tracer()`` imports the X-Ray SDK even to disable it (about 30 ms, far more on a loaded
machine), and the stack runs every function with ``POWERTOOLS_TRACE_DISABLED=true`` (X-Ray would need
``xray:*`` on ``*``). :func:`traced` therefore wraps a handler in ``Tracer().capture_lambda_handler`` only
when tracing is enabled, and otherwise returns it as it is, with nothing imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["traced", "tracing_enabled"]

Handler = TypeVar("Handler", bound=Callable[..., Any])

_TRUE = {"1", "true", "yes", "on"}


def tracing_enabled() -> bool:
    """False when ``POWERTOOLS_TRACE_DISABLED`` is true (as Powertools reads it), else True."""
    return (os.getenv("POWERTOOLS_TRACE_DISABLED") or "").strip().lower() not in _TRUE


def traced(handler: Handler) -> Handler:
    """``handler`` under Powertools' ``capture_lambda_handler`` when tracing is enabled, else unchanged."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return cast(Handler, Tracer().capture_lambda_handler(handler))
