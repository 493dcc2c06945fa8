"""Shared helpers for the benchmark scripts: machine description, percentiles table printing and the
JSON figures under ``bench-results/``.

Benchmarks print figures; they never assert on wall-clock time (DESIGN §8).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def machine_lines() -> list[str]:
    """One-line description of the machine and interpreter the figures come from."""
    cpus = os.cpu_count() or 0
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"machine: {platform.platform()} | {platform.machine()} | {cpu_model()} | {cpus} CPUs | "
        f"Python {platform.python_version()} ({sys.implementation.name}) | load average {load}"
    ]


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``values`` by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """Median of ``values``."""
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text (Markdown-compatible) table."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + " |"
        )

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def print_report(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()
) -> None:
    """Print a titled table, the machine it ran on and any notes."""
    print(f"\n## {title}\n")
    for text in machine_lines():
        print(text)
    print()
    print(table(headers, rows))
    for note in notes:
        print(f"- {note}")
    sys.stdout.flush()


def ms(seconds: float) -> str:
    """Seconds formatted as milliseconds with 3 significant decimals."""
    return f"{seconds * 1000:.3f}"


RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench-results"


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` as ``bench-results/<name>.json`` (git-ignored) and return the path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"- figures written to {path.relative_to(RESULTS_DIR.parent)}")
    return path


def update_results(name: str, figures: dict[str, Any]) -> Path:
    """Merge ``figures`` into ``bench-results/<name>.json`` (keys replaced, the others kept).

    Several benchmarks contribute to one file (``webhook.json`` gathers the webhook's outcomes, its
    scaling, its cold start and the risk evaluation's p99, as the constant-cost issue asks).
    """
    path = RESULTS_DIR / f"{name}.json"
    current: dict[str, Any] = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    return write_results(name, {**current, **figures})
