"""The e2e fixtures: local runtimes as subprocesses, each stopped with SIGTERM and checked for leftovers.

``stack`` is one runtime for the whole session, shared by tests that do not interfere (each uses its
own symbols and leaves no group open). ``start_stack`` starts a private runtime (e.g. for a test that
shrinks the pool); it is stopped at the end of the session the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.e2e.stack import LocalStack, Stopped

StartStack = Callable[..., LocalStack]


def assert_clean_stop(stack: LocalStack, stopped: Stopped) -> None:
    """SIGTERM ended the runtime with 0, nothing listens on its ports, no process of its group is left."""
    assert stopped.returncode == 0, f"runtime exit code {stopped.returncode}\n{stack.logs()}"
    assert stopped.open_ports == [], f"still listening after stop: {stopped.open_ports}"
    assert stopped.leftovers == [], f"processes left after stop: {stopped.leftovers}"


@pytest.fixture(scope="session")
def start_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartStack]:
    """Start a runtime (extra env optional); every one started is stopped and checked at session end."""
    started: list[LocalStack] = []

    def start(name: str = "stack", env: Mapping[str, str] | None = None) -> LocalStack:
        stack = LocalStack(Path(tmp_path_factory.mktemp(name)), env)
        started.append(stack)
        stack.start()
        return stack

    yield start
    problems = []
    for stack in started:
        if stack.process is None or stack.process.returncode is not None:
            continue  # never started, or a test already stopped it (and checked the stop)
        try:
            assert_clean_stop(stack, stack.stop())
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def stack(start_stack: StartStack) -> LocalStack:
    """The shared runtime of the session."""
    return start_stack("shared")
