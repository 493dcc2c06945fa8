"""SIGTERM stops a busy runtime cleanly: exit code 0, both ports closed, no process left."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StartStack, assert_clean_stop
from tests.e2e.stack import entry_signal, port_open, processes_in_group

pytestmark = pytest.mark.e2e


def test_sigterm_stops_the_runtime_and_leaves_nothing_running(start_stack: StartStack) -> None:
    # Given a runtime that has served a signal and a tick (every function loaded and run)
    stack = start_stack("shutdown")
    stack.prices({"LINK/USDT": 15})
    status, reply = stack.signal(entry_signal(stack.secret, "LINKUSDT", 15))
    assert (status, reply["outcome"]) == (202, "opened"), reply
    stack.tick()
    assert port_open(stack.url) and port_open(stack.info["aws_endpoint_url"])
    assert stack.process is not None
    assert processes_in_group(stack.process.pid) == [stack.process.pid]  # one process, threads inside

    # When SIGTERM is sent
    stopped = stack.stop()

    # Then it exits 0, nothing listens on the HTTP or moto port, and no process of its group is left
    assert_clean_stop(stack, stopped)
    assert "local runtime stopped" in (stack.workdir / "stdout.log").read_text()
