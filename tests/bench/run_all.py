"""Run every benchmark in turn and print their tables (``make bench``).

Each benchmark runs in its own interpreter (``python -m tests.bench.<name>``) so one's environment and
AWS mocks cannot leak into the next; their output is passed through as it comes. A benchmark that
fails is reported and the others still run; the exit status is 1 if any failed. Figures are printed,
never asserted.

Usage: ``python -m tests.bench.run_all [name ...]`` (names without the ``bench_`` prefix, e.g. ``risk``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import machine_lines, table

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("risk", "cold_import", "transactions", "webhook", "scaling", "local")


def run(names: list[str]) -> int:
    """Run the named benchmarks (all by default); 0 when every one succeeded."""
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ)
    layer = str(ROOT / "layers" / "engine" / "python")
    env["PYTHONPATH"] = os.pathsep.join([layer, str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    print("# Execution engine benchmarks")
    for line in machine_lines():
        print(line)
    sys.stdout.flush()
    summary: list[list[object]] = []
    failed = False
    for name in names or BENCHMARKS:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", f"tests.bench.bench_{name}"], cwd=ROOT, env=env, check=False
        )
        elapsed = time.perf_counter() - start
        summary.append(
            [
                f"bench_{name}",
                "ok" if done.returncode == 0 else f"FAILED ({done.returncode})",
                f"{elapsed:.1f}",
            ]
        )
        failed = failed or done.returncode != 0
    print("\n## Benchmark run\n")
    print(table(["benchmark", "result", "seconds"], summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
