"""Profile the local runtime in one process: AWS requests per function, CPU profile, memory growth.

Not part of ``make bench``: a tool for finding where the local runtime spends its time and memory.
Starts :class:`engine.local.runtime.LocalRuntime` in this process (its own moto server, pump and
scheduler at their `make run` defaults, state in a temporary directory), sends the soak's signals
(``tests.bench.bench_local``: rounds of entries then exits) over HTTP from a thread, and reports:

- moto requests per signal, by the function (or runtime part) that made them and by operation;
- ``--cprofile FILE``: a cProfile of every thread (``threading.setprofile``), written as pstats;
- ``--tracemalloc N``: the top N allocation sites that grew between the first and the last round;
- ``--types N``: the N object types whose live count grew most (``gc``; much cheaper than tracemalloc).

Usage: ``PYTHONPATH=layers/engine/python:. python -m tests.bench.profile_local [--signals 200] ...``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.local.aws import queries
from engine.local.aws import server as moto_server
from engine.local.functions import FunctionRegistry
from engine.local.runtime import LocalRuntime
from engine.local.settings import LocalSettings
from tests.bench import bench_local

_current = threading.local()
_requests: Counter[tuple[str, str]] = Counter()
_tables: Counter[tuple[str, str, str]] = Counter()


def _tables_of(environ: dict[str, Any]) -> list[str]:
    """The DynamoDB tables a request names (its body is read and put back)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return []
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body)
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    names = [request["TableName"]] if "TableName" in request else list(request.get("RequestItems", {}))
    for item in request.get("TransactItems", []):
        names.extend(operation["TableName"] for operation in item.values() if "TableName" in operation)
    return [name.removeprefix("execution-engine-local-") for name in names]


def _count_requests() -> None:
    """Count moto requests by (caller, operation): the caller is the function running on that thread."""
    original_app = moto_server.SerialisedMotoServer._app

    def app(self: moto_server.SerialisedMotoServer) -> Any:
        inner = original_app(self)

        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            target = environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO", "")
            caller = environ.get("HTTP_X_LOCAL_CALLER", "other")
            operation = target.rsplit(".", 1)[-1]
            _requests[(caller, operation)] += 1
            for table in _tables_of(environ):
                _tables[(caller, operation, table)] += 1
            return inner(environ, start_response)

        return counted

    moto_server.SerialisedMotoServer._app = app  # type: ignore[method-assign]
    original_invoke = FunctionRegistry.invoke

    def invoke(self: FunctionRegistry, name: str, event: Any) -> Any:
        previous = getattr(_current, "name", None)
        _current.name = name
        try:
            return original_invoke(self, name, event)
        finally:
            _current.name = previous

    FunctionRegistry.invoke = invoke  # type: ignore[method-assign]

    import botocore.awsrequest

    original_prepare = botocore.awsrequest.AWSRequest.prepare

    def prepare(self: Any) -> Any:
        self.headers["X-Local-Caller"] = getattr(_current, "name", None) or threading.current_thread().name
        return original_prepare(self)

    botocore.awsrequest.AWSRequest.prepare = prepare  # type: ignore[method-assign]


_profilers: list[cProfile.Profile] = []


def _profile_every_thread() -> None:
    """A cProfile per thread, for threads started from now on (and this one)."""

    def start_profiler(*_: Any) -> None:
        profiler = cProfile.Profile()
        _profilers.append(profiler)
        profiler.enable()  # replaces this hook on the thread

    threading.setprofile(start_profiler)
    start_profiler()


def _dump_profiles(path: Path) -> None:
    for profiler in _profilers:
        profiler.disable()
    stats = pstats.Stats(*_profilers)
    stats.dump_stats(path)


def _type_counts() -> Counter[str]:
    gc.collect()
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


@contextlib.contextmanager
def _runtime(state_dir: Path) -> Iterator[LocalRuntime]:
    settings = LocalSettings.from_env({**os.environ, "PORT": "0", "LOCAL_STATE_DIR": str(state_dir)})
    runtime = LocalRuntime(settings, out=io.StringIO(), interactive=False)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def _table_sizes(region: str) -> dict[str, list[int]]:
    from moto.dynamodb.models import dynamodb_backends

    from engine.local.settings import ACCOUNT_ID

    backend = dynamodb_backends[ACCOUNT_ID][region]
    return {
        name: [
            len(queries._MOTO_ALL_ITEMS(table)),
            len(table.stream_shard.items) if table.stream_shard else 0,
        ]
        for name, table in backend.tables.items()
    }


def _print_requests(signals: int) -> None:
    total = sum(_requests.values())
    print(f"\nmoto requests: {total} ({total / signals:.1f} a signal)")
    by_caller: Counter[str] = Counter()
    for (caller, _operation), count in _requests.items():
        by_caller[caller] += count
    for caller, count in by_caller.most_common():
        operations = ", ".join(
            f"{operation} {n}" for (who, operation), n in _requests.most_common() if who == caller
        )
        print(f"  {caller}: {count} ({count / signals:.1f} a signal): {operations}")
        tables = ", ".join(
            f"{operation} {table} {n}"
            for (who, operation, table), n in _tables.most_common()
            if who == caller
        )
        if tables:
            print(f"      by table: {tables}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--round", type=int, default=50)
    parser.add_argument("--cprofile", type=Path)
    parser.add_argument("--tracemalloc", type=int, default=0)
    parser.add_argument("--types", type=int, default=0)
    args = parser.parse_args()
    _count_requests()
    if args.tracemalloc:
        tracemalloc.start(12)
    if args.cprofile:
        _profile_every_thread()
    with tempfile.TemporaryDirectory(prefix="profile-local-") as scratch, _runtime(Path(scratch)) as runtime:
        client = bench_local.Runtime(
            process=type("P", (), {"pid": os.getpid()})(),  # type: ignore[arg-type]
            url=runtime.url,
            secret=runtime.webhook_secret,
            endpoint=runtime.endpoint_url,
            output=[],
        )
        bench_local.widen_limits(client)
        bench_local.set_prices(client)
        _requests.clear()
        _tables.clear()
        baseline = tracemalloc.take_snapshot() if args.tracemalloc else None
        types_before = _type_counts() if args.types else Counter()
        started, cpu = time.perf_counter(), time.process_time()
        result = bench_local.soak(client, args.signals, args.round)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if args.cprofile:
            _dump_profiles(args.cprofile)
        final = tracemalloc.take_snapshot() if args.tracemalloc else None
        types_after = _type_counts() if args.types else Counter()
        tables = _table_sizes(runtime.settings.region)
    count = len(result.samples)
    print(f"{count} signals in {elapsed:.0f} s, process CPU {cpu:.1f} s ({cpu / count:.3f} s a signal)")
    for number, figures in enumerate(bench_local.quarters(result), start=1):
        print(f"Q{number}: {json.dumps(figures)}")
    _print_requests(count)
    print("\nitems and retained stream records per table: " + json.dumps(tables))
    if args.cprofile:
        out = io.StringIO()
        pstats.Stats(str(args.cprofile), stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    if args.types:
        types_after.subtract(types_before)
        print(f"\nlive objects that grew most, top {args.types}:")
        for name, grown in types_after.most_common(args.types):
            print(f"  {grown:+d} {name}")
    if baseline is not None and final is not None:
        print(f"\nmemory growth, top {args.tracemalloc} sites:")
        for stat in final.compare_to(baseline, "traceback")[: args.tracemalloc]:
            print(f"  {stat.size_diff / 1024:+.0f} KiB in {stat.count_diff:+d} blocks")
            for line in stat.traceback.format()[-8:]:
                print("    " + line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
