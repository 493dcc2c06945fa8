"""Drive `python -m engine.local` as a subprocess, over HTTP only (plus boto3 for config edits).

:class:`LocalStack` starts the runtime on a free port in its own process group, waits for
``GET /_local/info``, and offers small helpers for the DESIGN §6 surface: signals to ``/webhook``,
``/_local/prices`` and ``/_local/tick``, operator reads, and SSM edits through the printed endpoint
(the local twin of a console edit). :meth:`LocalStack.stop` sends SIGTERM and reports what was left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import boto3

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

#: What every e2e runtime gets: config edits apply at once, the schedules stay out of the way (tests tick).
BASE_ENV = {
    "CONFIG_MAX_AGE_SECONDS": "0",
    "LOCAL_SYNC_SECONDS": "3600",
    "LOCAL_RISK_SECONDS": "3600",
}
_trade_ids = count(1)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(url: str) -> bool:
    """True when something accepts connections at ``http://host:port``."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return False
    return True


def processes_in_group(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is ``pgid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


@dataclass
class Stopped:
    """How a stop went: exit code (None = had to be killed), ports still open, processes left."""

    returncode: int | None
    open_ports: list[str]
    leftovers: list[int]


class LocalStack:
    """One `python -m engine.local` subprocess and an HTTP client for it."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str] | None = None, *, state_dir: Path | None = None
    ) -> None:
        self.workdir = workdir
        #: Where the runtime keeps its state (restarts reuse it; each new stack starts with it empty).
        self.state_dir = state_dir or workdir / "state"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra_env = {**BASE_ENV, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.secret = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 90) -> None:
        """Start the runtime and wait until ``/_local/info`` answers; read the webhook secret."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
        env.update(
            PYTHONPATH=str(ROOT / "layers" / "engine" / "python"),
            PYTHONUNBUFFERED="1",
            HOST="127.0.0.1",
            PORT=str(self.port),
            ENGINE_FUNCTIONS_ROOT=str(ROOT / "functions"),
            LOCAL_STATE_DIR=str(self.state_dir),
            LOCAL_FRESH="0",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
            **self._extra_env,
        )
        with (self.workdir / "stdout.log").open("wb") as out, (self.workdir / "stderr.log").open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.local"],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: leftovers are findable and killable
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"runtime exited with {code} during start\n{self.logs()}")
            try:
                status, info = self.request("GET", "/_local/info", timeout=2)
                if status == 200:
                    self.info = info
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"runtime did not answer /_local/info in {timeout} s\n{self.logs()}")
            time.sleep(0.2)
        secrets = self.aws_client("secretsmanager")
        self.secret = secrets.get_secret_value(SecretId=self.info["webhook_secret_name"])["SecretString"]

    def stop(self, timeout: float = 60) -> Stopped:
        """SIGTERM, wait; kill the process group if it hangs. Reports exit code, open ports, leftovers."""
        assert self.process is not None
        pgid = self.process.pid
        returncode: int | None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        leftovers = processes_in_group(pgid)
        if returncode is None or leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)
        endpoints = [self.url, self.info.get("aws_endpoint_url", "")]
        return Stopped(returncode, [url for url in endpoints if url and port_open(url)], leftovers)

    def logs(self) -> str:
        """The runtime's stdout and stderr so far (for failure messages)."""
        parts = []
        for name in ("stdout.log", "stderr.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-8000:]}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = 120) -> tuple[int, Any]:
        """(status, parsed JSON body) of one request; 4xx/5xx are answers, not exceptions."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def get(self, path: str) -> Any:
        """GET expecting 200; the body."""
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path} -> {status} {body}"
        return body

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        """POST; (status, body)."""
        return self.request("POST", path, body if body is not None else b"")

    def prices(self, prices: Mapping[str, float]) -> None:
        """Set paper prices on every paper account."""
        status, body = self.post("/_local/prices", dict(prices))
        assert status == 200, f"/_local/prices -> {status} {body}"

    def tick(self) -> dict[str, Any]:
        """Run order_sync and risk_engine once and drain the streams; fail on any error in the answer."""
        status, body = self.post("/_local/tick")
        assert status == 200, f"/_local/tick -> {status} {body}\n{self.logs()}"
        problems = (body["failures"], body["dead_letters"])
        assert problems == (0, 0), f"tick had failures: {body}\n{self.logs()}"
        return body  # type: ignore[no-any-return]

    def tick_until(self, read: Callable[[], T], done: Callable[[T], bool], max_ticks: int = 6) -> T:
        """Tick until ``done(read())``; streams and schedules converge in a few passes. Fails after
        ``max_ticks`` with the last value read."""
        value = read()
        for _ in range(max_ticks):
            if done(value):
                return value
            self.tick()
            value = read()
        assert done(value), f"not reached after {max_ticks} ticks: {json.dumps(value, indent=1)[:4000]}"
        return value

    def signal(self, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST /webhook."""
        return self.post("/webhook", payload)

    def group(self, group_id: str) -> dict[str, Any]:
        """GET /groups/{id}: {"group", "pyramids", "orders"}."""
        return self.get(f"/groups/{group_id}")  # type: ignore[no-any-return]

    def pool(self, account: str | None = None) -> dict[str, Any]:
        """GET /pool: the totals of every account's pool, or ``account``'s own pool (DESIGN §3.10)."""
        answer: dict[str, Any] = self.get("/pool")
        return answer if account is None else answer["accounts"][account]  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ config (the console's twin)

    def aws_client(self, service: str) -> Any:
        """A boto3 client against the runtime's moto endpoint."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.info["aws_endpoint_url"],
            region_name=self.info["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def edit_config(self, document: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Read a document from SSM, apply ``changes`` (top-level fields) and put it back (Overwrite)."""
        ssm = self.aws_client("ssm")
        name = self.info["parameter_prefix"] + document
        current = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        current.update(changes)
        ssm.put_parameter(Name=name, Value=json.dumps(current), Type="String", Overwrite=True)
        return current  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- signals


def _timestamp(minutes_ago: int) -> str:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def entry_signal(
    secret: str,
    symbol: str,
    price: float,
    *,
    size_usd: float = 500,
    minutes_ago: int = 0,
    timeframe: str = "1",
    exchange: str = "binance",
) -> dict[str, Any]:
    """A long entry as a TradingView strategy alert sends it (quote-sized, timestamped: its candle)."""
    return {
        "secret": secret,
        "source": "tradingview",
        "timestamp": _timestamp(minutes_ago),
        "tv": {
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
            "action": "buy",
            "market_position": "long",
            "market_position_size": size_usd,
            "prev_market_position": "flat",
            "prev_market_position_size": 0,
            "entry_price": price,
            "close_price": price,
            "order_size": size_usd,
        },
        "strategy_info": {"trade_id": f"e2e-{next(_trade_ids)}", "alert_name": "e2e"},
        "execution_intent": {"type": "signal", "side": "buy", "position_size_type": "quote"},
    }


def exit_signal(
    secret: str, symbol: str, price: float, *, timeframe: str = "1", exchange: str = "binance"
) -> dict[str, Any]:
    """A strategy's closing order (sell to flat) for the long group of ``symbol``."""
    return {
        "secret": secret,
        "source": "tradingview",
        "timestamp": _timestamp(0),
        "tv": {
            "exchange": exchange,
            "symbol": symbol,
            "timeframe": timeframe,
            "action": "sell",
            "market_position": "flat",
            "prev_market_position": "long",
            "close_price": price,
        },
        "strategy_info": {"trade_id": f"e2e-{next(_trade_ids)}", "alert_name": "e2e exit"},
        "execution_intent": {"type": "exit", "side": "sell"},
    }


def orders_of(detail: Mapping[str, Any], purpose: str) -> list[dict[str, Any]]:
    """The orders of a ``GET /groups/{id}`` answer with ``purpose``."""
    return [order for order in detail["orders"] if order["purpose"] == purpose]
