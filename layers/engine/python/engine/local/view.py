"""The live terminal view: pool, queue, open groups and recent events, redrawn every second.

Plain ANSI (cursor home + clear); no extra dependency. Rendering errors are shown in the view and
never reach the trading threads. Without a terminal the runtime logs plain event lines instead
(see :mod:`engine.local.activity`).
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from engine.local.activity import ActivityLog
from engine.local.bootstrap import StateSnapshot

CLEAR = "\x1b[H\x1b[2J"
BOLD, DIM, RED, GREEN, RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[0m"


def is_interactive() -> bool:
    """True when both stdin and stdout are terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _number(value: Any, places: int = 2) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):,.{places}f}"
    except (TypeError, ValueError):
        return str(value)


def _pnl(value: Any, width: int) -> str:
    text = f"{_number(value):>{width}}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return text
    return f"{GREEN}{text}{RESET}" if number > 0 else f"{RED}{text}{RESET}" if number < 0 else text


def render(
    header: list[str], state: StateSnapshot, dead_letters: int, events: list[dict[str, str]], width: int
) -> str:
    """The whole screen as text."""
    pool = state.pool
    lines = [*header, ""]
    lines.append(
        f"{BOLD}Pool{RESET} {pool.get('open', '?')}/{pool.get('max_open_groups', '?')}"
        f"   {BOLD}Queue{RESET} {len(state.queue)}   {BOLD}Open groups{RESET} {len(state.groups)}"
        + (f"   {RED}dead letters {dead_letters}{RESET}" if dead_letters else "")
    )
    lines.append("")
    columns = f"{'group':8} {'symbol':12} {'tf':>5} {'side':5} {'pyr':>3} {'legs':>7} {'avg entry':>12} "
    lines.append(f"{DIM}{columns}{'unrealised $':>13} {'%':>7} {'realised $':>11}  state{RESET}")
    for group in state.groups:
        legs = f"{group.get('filled_legs', 0)}/{group.get('total_legs', 0)}"
        lines.append(
            f"{str(group.get('id'))[:8]:8} {group.get('symbol', ''):12} {group.get('timeframe', ''):>5} "
            f"{group.get('side', ''):5} {group.get('pyramid_count', 0):>3} {legs:>7} "
            f"{_number(group.get('avg_entry'), 4):>12} {_pnl(group.get('unrealized_pnl_usd'), 13)} "
            f"{_pnl(group.get('unrealized_pnl_percent'), 7)} {_pnl(group.get('realized_pnl_usd'), 11)}  "
            f"{group.get('status')}"
        )
    if state.queue:
        lines += ["", f"{BOLD}Queue{RESET} (promotion order)"]
        for entry in state.queue:
            lines.append(
                f"  {entry.get('rank')}. {entry.get('exchange')} {entry.get('symbol')} "
                f"{entry.get('timeframe')} {entry.get('side')} @ {_number(entry.get('entry_price'), 4)}"
                f"  replaced {entry.get('replacement_count', 0)}x  since {entry.get('queued_at')}"
            )
    lines += ["", f"{BOLD}Recent events{RESET}"]
    lines += [f"  {DIM}{event['at'][11:19]}{RESET} {event['event']}"[: width + 20] for event in events]
    return CLEAR + "\n".join(lines) + "\n"


class TerminalView:
    """Redraws the screen every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        header: list[str],
        read_state: Callable[[], StateSnapshot],
        dead_letter_count: Callable[[], int],
        activity: ActivityLog,
        out: TextIO | None = None,
        interval: float = 1.0,
    ) -> None:
        self._header = header
        self._read_state = read_state
        self._dead_letter_count = dead_letter_count
        self._activity = activity
        self._out = out or sys.stdout
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def draw(self) -> None:
        """Draw once; any error is shown in place of the table."""
        size = shutil.get_terminal_size((120, 40))
        try:
            screen = render(
                self._header,
                self._read_state(),
                self._dead_letter_count(),
                self._activity.recent(max(5, size.lines - 20)),
                size.columns,
            )
        except Exception as exc:
            screen = CLEAR + "\n".join([*self._header, "", f"{RED}view unavailable: {exc!r}{RESET}"]) + "\n"
        try:
            self._out.write(screen)
            self._out.flush()
        except (OSError, ValueError):
            return

    def start(self) -> None:
        """Start redrawing."""
        self._thread = threading.Thread(target=self._loop, name="terminal-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop redrawing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.draw()
            self._stop.wait(self._interval)
