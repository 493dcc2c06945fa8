"""Benchmark: cold import of every Lambda function's handler module, and whether ccxt gets imported.

Each sample is a fresh interpreter started the way Lambda starts one: working directory = the function's
folder (on ``sys.path``, like ``/var/task``), the engine layer on ``PYTHONPATH`` (like ``/opt/python``),
and the environment the CDK stack gives the functions (infra/functions.py: table names, config prefix,
secret names, Powertools settings). The child imports ``handler.py`` by path and reports the import time
(``perf_counter`` around the import, so interpreter start-up is excluded), whether ``ccxt`` is in
``sys.modules`` afterwards, and its own total wall time. One more run per function with
``python -X importtime`` attributes the import time to top-level packages.

**First signal** (webhook only): :data:`RUNS` more fresh interpreters import the handler and then
answer one new entry signal (a group opened) against a serialised moto server started here, seeded
like a deployment (tables, default config, webhook secret); the child times the import and the first
invocation (boto3 clients, config and secret reads, the transaction). ``cold_import_ms`` and
``cold_first_signal_ms`` (import + first signal, median) go to ``bench-results/cold_start.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.local.settings import TABLE_VARIABLES
from tests.bench.common import median, print_report, table, update_results, write_results

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
start, cpu_start = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("handler", "handler.py")
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps({
    "import_s": elapsed,
    "import_cpu_s": cpu,
    "ccxt": "ccxt" in sys.modules,
    "modules": len(sys.modules),
    "has_handler": callable(getattr(module, "lambda_handler", None)),
}))
"""


#: Runs in the child for the first-signal figure: import, then one invocation with the event on stdin.
FIRST_SIGNAL_PROBE = """
import importlib.util, json, sys, time
event = json.loads(sys.stdin.read())
start, cpu_start = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("handler", "handler.py")
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
imported, cpu_imported = time.perf_counter(), time.process_time()

class Context:
    function_name = "execution-engine-bench-webhook"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:execution-engine-bench-webhook"
    aws_request_id = "bench-first-signal"
    log_group_name = log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 10_000

response = module.lambda_handler(event, Context())
done, cpu_done = time.perf_counter(), time.process_time()
print(json.dumps({
    "import_s": imported - start,
    "first_s": done - imported,
    "import_cpu_s": cpu_imported - cpu_start,
    "first_cpu_s": cpu_done - cpu_imported,
    "status": response["statusCode"],
    "body": response["body"],
    "ccxt": "ccxt" in sys.modules,
}))
"""
SECRET = "bench-cold-start-secret"
#: One new group per run (each its own symbol), so no run is answered from another's records.
FIRST_SIGNAL_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT")


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


def compile_like_the_layer() -> None:
    """Bytecode for the engine layer and the functions, as ``infra/build_layers.py`` ships it.

    Lambda cannot write ``.pyc`` (the probes run with ``PYTHONDONTWRITEBYTECODE`` like Lambda), so without
    this step a fresh clone would measure compiling the engine on every probe, which no deployment does.
    """
    for folder in (LAYER, FUNCTIONS_ROOT):
        subprocess.run(
            # Timestamp-checked (the default), not the layer's unchecked-hash: these .pyc files live beside
            # the sources, and an unchecked one would keep serving a module after its source was edited.
            [sys.executable, "-m", "compileall", "-q", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
        )


#: The libraries the webhook's path needs whatever the engine does (DESIGN's fixed dependencies).
FLOOR_PROBE = """
import json, time
start, cpu_start = time.perf_counter(), time.process_time()
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities import idempotency, parameters
import boto3, botocore.session, pydantic, pynamodb.models
print(json.dumps({"import_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start}))
"""


def library_floor_ms(runs: int = RUNS) -> tuple[float, float]:
    """Median (wall, CPU) ms to import only the libraries of the webhook's path (Powertools, boto3,
    pynamodb, pydantic) in a fresh interpreter: the part of the cold import the engine cannot remove."""
    samples: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", FLOOR_PROBE],
            env=lambda_environment("webhook"),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        samples.append(float(figures["import_s"]) * 1000)
        cpu.append(float(figures["cpu_s"]) * 1000)
    return median(samples), median(cpu)


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


def _signal_event(symbol: str) -> dict[str, Any]:
    """An API Gateway event carrying a new long entry on binance ``symbol`` (a paper account)."""
    from engine.local.events import api_gateway_event

    body = {
        "secret": SECRET,
        "source": "tradingview",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tv": {
            "exchange": "BINANCE",
            "symbol": symbol,
            "timeframe": "60",
            "action": "buy",
            "market_position": "long",
            "entry_price": "100",
        },
        "strategy_info": {"trade_id": f"cold-{symbol}"},
        "execution_intent": {"type": "signal", "position_size_type": "quote"},
    }
    return api_gateway_event(
        method="POST",
        path="/webhook",
        query="",
        resource="/webhook",
        source_ip="52.89.214.238",
        headers=[("Content-Type", "text/plain; charset=utf-8"), ("User-Agent", "Go-http-client/1.1")],
        body=json.dumps(body).encode(),
    )


def first_signal_samples(runs: int = RUNS) -> list[dict[str, Any]]:
    """``runs`` fresh webhook interpreters: import + one opened signal each, against a seeded moto server."""
    from engine.config import seed_defaults, seed_webhook_secret
    from engine.local.aws.server import SerialisedMotoServer
    from engine.store import create_all_tables, reset_connections

    env = lambda_environment("webhook")
    saved = dict(os.environ)
    server = SerialisedMotoServer(port=0)
    url = server.start()
    try:
        os.environ.update(env)
        os.environ["AWS_ENDPOINT_URL"] = url
        reset_connections()
        create_all_tables()
        seed_defaults()
        seed_webhook_secret(SECRET)
        samples: list[dict[str, Any]] = []
        for symbol in FIRST_SIGNAL_SYMBOLS[:runs]:
            done = subprocess.run(
                [sys.executable, "-c", FIRST_SIGNAL_PROBE],
                cwd=FUNCTIONS_ROOT / "webhook",
                env={**env, "AWS_ENDPOINT_URL": url},
                input=json.dumps(_signal_event(symbol)),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"webhook first signal failed: {last}")
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        return samples
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_connections()
        server.stop()


def first_signal_report(samples: list[dict[str, Any]]) -> tuple[float, float]:
    """Print the first-signal table; (median import ms, median import + first signal ms)."""
    imports = [float(s["import_s"]) * 1000 for s in samples]
    totals = [(float(s["import_s"]) + float(s["first_s"])) * 1000 for s in samples]
    cpu = [(float(s["import_cpu_s"]) + float(s["first_cpu_s"])) * 1000 for s in samples]
    outcomes = sorted({f"{s['status']} {json.loads(s['body']).get('outcome', s['body'])}" for s in samples})
    print_report(
        f"Webhook cold start: import + first signal (median of {len(samples)} fresh interpreters)",
        ["import ms", "first signal ms", "import + first signal ms", "range ms", "CPU ms", "answers", "ccxt"],
        [
            [
                f"{median(imports):.0f}",
                f"{median([t - i for t, i in zip(totals, imports, strict=True)]):.0f}",
                f"{median(totals):.0f}",
                f"{min(totals):.0f}-{max(totals):.0f}",
                f"{median(cpu):.0f}",
                ", ".join(outcomes),
                "yes" if any(s["ccxt"] for s in samples) else "no",
            ]
        ],
        notes=[
            "a new entry each (group opened) against a serialised moto server seeded like a deployment",
            "CPU ms: the child's process time for import + first signal (less sensitive to machine load; "
            "moto's own work is in the parent and not counted)",
        ],
    )
    return median(imports), median(totals)


def run() -> None:
    """Probe every function, print the tables and write ``bench-results/cold_start.json``."""
    rows: list[list[object]] = []
    errors: list[str] = []
    breakdown: list[list[object]] = []
    import_cpu_ms: dict[str, float] = {}
    compile_like_the_layer()
    for function in FUNCTIONS:
        if not (FUNCTIONS_ROOT / function / "handler.py").is_file():
            rows.append([function, "missing", "", "", "", "", "", ""])
            continue
        try:
            samples = [_probe(function) for _ in range(RUNS)]
            _, _, stderr = _probe(function, importtime=True)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            rows.append([function, "error (below)", "", "", "", "", "", ""])
            errors.append(str(exc))
            continue
        imports = [float(str(child["import_s"])) for child, _, _ in samples]
        cpu = [float(str(child["import_cpu_s"])) * 1000 for child, _, _ in samples]
        import_cpu_ms[function] = median(cpu)
        walls = [wall for _, wall, _ in samples]
        ccxt = {bool(child["ccxt"]) for child, _, _ in samples}
        handler_ok = all(bool(child["has_handler"]) for child, _, _ in samples)
        rows.append(
            [
                function,
                f"{median(imports) * 1000:.0f}",
                f"{min(imports) * 1000:.0f}-{max(imports) * 1000:.0f}",
                f"{import_cpu_ms[function]:.0f}",
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
            "import CPU ms",
            "process wall ms",
            "ccxt imported",
            "sys.modules",
            "lambda_handler",
        ],
        rows,
        notes=[
            "import ms: perf_counter around importing handler.py (interpreter start-up excluded); "
            "import CPU ms: the child's process time for the same import (less sensitive to load); "
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
    cold_import, cold_first = first_signal_report(first_signal_samples())
    floor, floor_cpu = library_floor_ms()
    webhook_cpu = import_cpu_ms.get("webhook", 0.0)
    print(
        f"- library floor: importing only Powertools (logger, metrics, event handler, idempotency, "
        f"parameters), boto3, pynamodb and pydantic takes {floor:.0f} ms ({floor_cpu:.0f} ms CPU) here "
        f"(median of {RUNS}); the webhook's handler import takes {webhook_cpu:.0f} ms CPU, so its own "
        f"code adds {webhook_cpu - floor_cpu:.0f} ms CPU"
    )
    figures = {
        "cold_import_ms": {"webhook": round(cold_import, 1), "library_floor": round(floor, 1)},
        "cold_import_cpu_ms": {
            **{name: round(value, 1) for name, value in import_cpu_ms.items()},
            "library_floor": round(floor_cpu, 1),
        },
        "cold_first_signal_ms": {"webhook": round(cold_first, 1)},
    }
    write_results("cold_start", {**figures, "runs": RUNS})
    update_results("webhook", figures)
    sys.stdout.flush()


if __name__ == "__main__":
    run()
