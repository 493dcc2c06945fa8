"""Benchmark: cold import of every Lambda function's handler module, and whether ccxt gets imported.

Each sample is a fresh interpreter started the way Lambda starts one: working directory = the function's
folder (on ``sys.path``, like ``/var/task``), the engine layer on ``PYTHONPATH`` (like ``/opt/python``),
and the environment the CDK stack gives the functions (infra/functions.py: table names, config prefix,
secret names, Powertools settings). The child imports ``handler.py`` by path and reports the import time
(``perf_counter`` around the import, so interpreter start-up is excluded), whether ``ccxt`` is in
``sys.modules`` afterwards, and its own total wall time. One more run per function with
``python -X importtime`` attributes the import time to top-level packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from engine.local.settings import TABLE_VARIABLES
from tests.bench.common import median, print_report, table

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_ROOT = ROOT / "functions"
LAYER = ROOT / "layers" / "engine" / "python"
FUNCTIONS = (
    "webhook",
    "order_executor",
    "position_update",
    "slot_release",
    "order_sync",
    "risk_engine",
    "operator_api",
)
RUNS = 5
APP, STAGE = "execution-engine", "bench"

#: Runs in the child: import handler.py by path, print JSON with the figures.
PROBE = """
import importlib.util, json, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", "handler.py")
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(json.dumps({
    "import_s": elapsed,
    "ccxt": "ccxt" in sys.modules,
    "modules": len(sys.modules),
    "has_handler": callable(getattr(module, "lambda_handler", None)),
}))
"""


def lambda_environment(function: str) -> dict[str, str]:
    """The environment of a deployed function (infra/functions.py), with fake credentials."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(LAYER),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_LAMBDA_FUNCTION_NAME": f"{APP}-{STAGE}-{function.replace('_', '-')}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "LAMBDA_TASK_ROOT": str(FUNCTIONS_ROOT / function),
        "APP_NAME": APP,
        "STAGE": STAGE,
        "CONFIG_PREFIX": f"/{APP}/{STAGE}/",
        "CONFIG_MAX_AGE_SECONDS": "30",
        "WEBHOOK_SECRET_NAME": f"{APP}/{STAGE}/webhook",
        "EXCHANGE_SECRET_PREFIX": f"{APP}/{STAGE}/exchange/",
        "POWERTOOLS_SERVICE_NAME": f"{APP}-{STAGE}",
        "POWERTOOLS_METRICS_NAMESPACE": "ExecutionEngine",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "INFO",
    }
    for variable, suffix in TABLE_VARIABLES.items():
        env[variable] = f"{APP}-{STAGE}-{suffix}"
    return env


def _probe(function: str, *, importtime: bool = False) -> tuple[dict[str, object], float, str]:
    """One fresh interpreter importing the handler: (child's JSON, child wall seconds, stderr)."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", PROBE]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=FUNCTIONS_ROOT / function,
        env=lambda_environment(function),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{function}: handler import failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, done.stderr


#: Packages whose import cost is reported (cumulative, so nested ones overlap: boto3 includes botocore).
WATCHED_PACKAGES = (
    "engine",
    "aws_lambda_powertools",
    "boto3",
    "botocore",
    "pynamodb",
    "pydantic",
    "aws_xray_sdk",
    "ccxt",
)


def _package_of(module: str) -> str:
    return module.split(".", 1)[0]


def package_costs(importtime_stderr: str) -> dict[str, float]:
    """Import seconds of each watched package: the cumulative time of its modules imported from outside
    the package (so imports within the package are not counted twice)."""
    entries: list[tuple[int, str, int]] = []  # (nesting level, module, cumulative µs), post-order
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        raw = parts[2][1:]  # drop the separator's space; the rest is 2 spaces per level + name
        entries.append(((len(raw) - len(raw.lstrip(" "))) // 2, raw.strip(), int(parts[1])))
    costs: dict[str, float] = {}
    ancestors: list[tuple[int, str]] = []
    for level, module, cumulative in reversed(entries):  # reversed post-order = parents first
        while ancestors and ancestors[-1][0] >= level:
            ancestors.pop()
        package = _package_of(module)
        if package in WATCHED_PACKAGES and all(_package_of(name) != package for _, name in ancestors):
            costs[package] = costs.get(package, 0.0) + cumulative / 1e6
        ancestors.append((level, module))
    return costs


def run() -> None:
    """Probe every function and print the table."""
    rows: list[list[object]] = []
    errors: list[str] = []
    breakdown: list[list[object]] = []
    for function in FUNCTIONS:
        if not (FUNCTIONS_ROOT / function / "handler.py").is_file():
            rows.append([function, "missing", "", "", "", "", ""])
            continue
        try:
            samples = [_probe(function) for _ in range(RUNS)]
            _, _, stderr = _probe(function, importtime=True)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            rows.append([function, "error (below)", "", "", "", "", ""])
            errors.append(str(exc))
            continue
        imports = [float(str(child["import_s"])) for child, _, _ in samples]
        walls = [wall for _, wall, _ in samples]
        ccxt = {bool(child["ccxt"]) for child, _, _ in samples}
        handler_ok = all(bool(child["has_handler"]) for child, _, _ in samples)
        rows.append(
            [
                function,
                f"{median(imports) * 1000:.0f}",
                f"{min(imports) * 1000:.0f}-{max(imports) * 1000:.0f}",
                f"{median(walls) * 1000:.0f}",
                "yes" if True in ccxt else "no",
                samples[0][0]["modules"],
                "yes" if handler_ok else "NO",
            ]
        )
        costs = package_costs(stderr)
        breakdown.append(
            [function, *(f"{costs[name] * 1000:.0f}" if name in costs else "-" for name in WATCHED_PACKAGES)]
        )
    print_report(
        f"Cold import of each function's handler (median of {RUNS} fresh interpreters)",
        [
            "function",
            "import ms (median)",
            "range ms",
            "process wall ms",
            "ccxt imported",
            "sys.modules",
            "lambda_handler",
        ],
        rows,
        notes=[
            "import ms: perf_counter around importing handler.py (interpreter start-up excluded); "
            "process wall ms: the whole child process including start-up",
            "environment as deployed (infra/functions.py), cwd = function folder, layer on PYTHONPATH; "
            "local Python, not the Lambda arm64 3.12 runtime",
            *errors,
        ],
    )
    if breakdown:
        print(
            "\nWhere the time goes (python -X importtime, cumulative ms where each package is first "
            "imported, one run; nested packages overlap, '-' = not imported):\n"
        )
        print(table(["function", *WATCHED_PACKAGES], breakdown))
    sys.stdout.flush()


if __name__ == "__main__":
    run()
