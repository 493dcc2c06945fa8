"""``python -m engine.local``: run the local runtime until Ctrl-C or SIGTERM (exit status 0).

A start-up failure exits 1: a reason the user can fix (the port is taken, the state directory is held by
another runtime or unreadable, a bad setting) in one line on stderr, anything else with its traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from engine.local.runtime import LocalRuntime, StartError
from engine.local.settings import LocalSettings
from engine.local.view import is_interactive


def main() -> int:
    """Start, wait for a stop signal, stop everything; 0 on a clean stop, 1 when start-up failed."""
    logging.basicConfig(
        level=os.environ.get("LOCAL_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        settings = LocalSettings.from_env()
    except ValueError as exc:
        print(f"local runtime failed to start: {exc}", file=sys.stderr)
        return 1
    runtime = LocalRuntime(settings, out=sys.stdout, interactive=is_interactive())
    try:
        runtime.start()
    except StartError as exc:
        print(f"local runtime failed to start: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        logging.getLogger("engine.local").exception("local runtime failed to start")
        print(f"local runtime failed to start: {exc}", file=sys.stderr)
        return 1
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runtime.stop()
    print("Execution engine: local runtime stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
