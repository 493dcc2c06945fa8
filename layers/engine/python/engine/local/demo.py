"""``make demo``: replay a scripted scenario against a fresh local stack and write a report folder.

``python -m engine.local.demo [--scenario full|small] [--out ./demo-report]`` starts the local runtime
in this process (its own moto, free ports, config edits effective at once), drives it only through
its HTTP surface (``/webhook``, the operator API, ``/_local/*``) and boto3 against its AWS endpoint for
config edits, stops it, and writes ``report.md``, ``equity.png``, ``groups.csv``, ``orders.csv``,
``risk_actions.csv`` and ``runtime.log`` (what the runtime printed) into the report folder.

Exit status: 0 when every signal had the outcome the script expects, 2 when some did not (the report
marks them), 1 when the run itself failed (an HTTP error, the runtime did not start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import boto3

from engine.local.demo_report import DemoRecord, StepRecord, write_report
from engine.local.demo_scenario import SCENARIOS, ConfigEdit, Entry, Exit, Scenario, SetPrices, Step
from engine.local.runtime import LocalRuntime
from engine.local.settings import LocalSettings

DEFAULT_OUT = Path("demo-report")
#: Scenario signals are stamped from this long ago, one minute apart (timeframe 1: one candle each).
CLOCK_START = timedelta(minutes=60)


class DemoError(RuntimeError):
    """The run could not go on (an HTTP error from the stack, an unexpected answer)."""


@dataclass
class DemoClient:
    """HTTP to the local stack, boto3 SSM against its AWS endpoint, and the scenario's signal clock."""

    url: str
    endpoint_url: str
    region: str
    parameter_prefix: str
    secret: str
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) - CLOCK_START)
    trade_ids: int = 0

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body); 4xx/5xx are answers."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A request that must succeed (2xx); its body."""
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise DemoError(f"{method} {path} -> {status}: {answer}")
        return answer

    def edit_config(self, document: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the SSM document (an absent document starts empty: all defaults)."""
        ssm = boto3.client(
            "ssm",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        name = self.parameter_prefix + document
        try:
            current = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            current = {}
        current.update(changes)
        ssm.put_parameter(Name=name, Value=json.dumps(current), Type="String", Overwrite=True)

    def signal(
        self, tv: dict[str, Any], intent: dict[str, Any], risk: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """POST /webhook with the next scripted timestamp (one candle later than the previous signal)."""
        self.clock += timedelta(minutes=1)
        self.trade_ids += 1
        payload = {
            "secret": self.secret,
            "source": "demo",
            "timestamp": self.clock.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "tv": {"exchange": "binance", "timeframe": "1", **tv},
            "strategy_info": {"trade_id": f"demo-{self.trade_ids}", "alert_name": "demo"},
            "execution_intent": intent,
        }
        if risk:
            payload["risk"] = risk
        return self.request("POST", "/webhook", payload)

    def groups(self) -> list[dict[str, Any]]:
        """Every group (open, closed, failed)."""
        return list(self.call("GET", "/groups?status=all")["groups"])


def _describe(step: Step) -> tuple[str, str]:
    """(kind, description) of a step for the report."""
    if isinstance(step, ConfigEdit):
        return "config", f"{step.document} <- {json.dumps(step.changes)}"
    if isinstance(step, SetPrices):
        return "prices", ", ".join(f"{symbol} {price}" for symbol, price in step.prices.items())
    if isinstance(step, Entry):
        stop = f", stop {step.stop_loss}" if step.stop_loss else ""
        return "signal", f"entry {step.symbol} @ {step.price}, {step.size_usd} USD{stop}"
    if isinstance(step, Exit):
        return "signal", f"exit {step.symbol} @ {step.price}"
    return "tick", f"tick x{step.times}"


def _label(group: Mapping[str, Any]) -> str:
    return f"{group['symbol']} {str(group['id'])[:8]}"


def _close_text(group: Mapping[str, Any]) -> str:
    """``"<close_reason>: <close_note>"`` (just the code when there is no note)."""
    note = group.get("close_note")
    return f"{group['close_reason']}: {note}" if note else str(group["close_reason"])


def _changes(before: Mapping[str, dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """What changed in the groups between two reads: new groups, status moves, legs filled."""
    lines = []
    for group in after:
        old = before.get(group["id"])
        legs = f"{group['filled_legs']}/{group['total_legs']} legs"
        if old is None:
            lines.append(f"{_label(group)} opened ({group['status']}, {legs})")
        elif old["status"] != group["status"]:
            why = (
                f" ({_close_text(group)})"
                if group["status"] in ("closed", "failed") and group.get("close_reason")
                else ""
            )
            lines.append(f"{_label(group)} {old['status']} -> {group['status']}{why}, {legs}")
        elif old["filled_legs"] != group["filled_legs"]:
            lines.append(f"{_label(group)} {legs} filled")
    return lines


def _send_signal(client: DemoClient, step: Entry | Exit) -> tuple[str, str]:
    """Send the step's alert; (outcome, reason + the step's note)."""
    if isinstance(step, Entry):
        tv = {"symbol": step.symbol, "action": "buy", "market_position": "long", "entry_price": step.price}
        tv |= {"close_price": step.price, "order_size": step.size_usd}
        intent = {"type": "signal", "side": "buy", "position_size_type": "quote"}
    else:
        tv = {"symbol": step.symbol, "action": "sell", "market_position": "flat", "close_price": step.price}
        intent = {"type": "exit", "side": "sell"}
    risk = {"stop_loss": step.stop_loss} if isinstance(step, Entry) and step.stop_loss else None
    status, answer = client.signal(tv, intent, risk)
    if status >= 500 or not isinstance(answer, dict):
        raise DemoError(f"webhook -> {status}: {answer}")
    said = str(answer.get("reason") or answer.get("error") or "")
    return str(answer.get("outcome")), "; ".join(part for part in (said, step.note) if part)


def _run_step(client: DemoClient, step: Step) -> StepRecord:
    kind, description = _describe(step)
    before = {group["id"]: group for group in client.groups()}
    actions_before = {action["id"] for action in client.call("GET", "/risk")["actions"]}
    outcome, reason, expected = "ok", step.note, None
    if isinstance(step, ConfigEdit):
        client.edit_config(step.document, step.changes)
    elif isinstance(step, SetPrices):
        client.call("POST", "/_local/prices", step.prices)
    elif isinstance(step, Entry | Exit):
        expected = step.expect
        outcome, reason = _send_signal(client, step)
    else:
        for _ in range(step.times):
            client.call("POST", "/_local/tick")
    after = client.groups()
    lines = _changes(before, after)
    for action in client.call("GET", "/risk")["actions"]:
        if action["id"] not in actions_before:
            lines.append(f"risk action {action['action']}: {action['reason']}")
    if kind == "tick":
        reason = "; ".join(part for part in (step.note, *lines) if part) or "nothing changed"
        lines = []
    return StepRecord(kind, description, outcome, reason, expected, lines)


def run_demo(
    scenario: Scenario, out_dir: Path, *, port: int = 0, progress: TextIO | None = None
) -> DemoRecord:
    """Start a fresh local stack, replay ``scenario``, read the final state, stop, write the report.

    What the runtime and the handlers print (banner, activity, EMF metric lines) goes to
    ``runtime.log`` in ``out_dir``; one line per replayed step goes to ``progress``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # Handlers without metrics of their own warn on every flush; nothing collects metrics here anyway.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ["CONFIG_MAX_AGE_SECONDS"] = "0"  # each scripted edit applies to the next step
    base = LocalSettings.from_env()
    settings = LocalSettings(
        host="127.0.0.1",
        port=port,
        region=base.region,
        functions_root=base.functions_root,
        sync_seconds=3600.0,  # the script ticks; the schedules stay out of its way
        risk_seconds=3600.0,
    )
    record = DemoRecord(scenario=scenario, started_at=datetime.now(UTC))
    with (out_dir / "runtime.log").open("w") as log, contextlib.redirect_stdout(log):
        runtime = LocalRuntime(settings, out=log, interactive=False)
        runtime.start()
        try:
            info = runtime.info()
            client = DemoClient(
                url=runtime.url,
                endpoint_url=info["aws_endpoint_url"],
                region=info["region"],
                parameter_prefix=info["parameter_prefix"],
                secret=runtime.webhook_secret,
            )
            for number, step in enumerate(scenario.steps, start=1):
                done = _run_step(client, step)
                record.steps.append(done)
                if progress is not None:
                    flag = "" if done.as_expected else f"  (script expected {done.expected})"
                    print(
                        f"  {number:>2}. {done.kind:<6} {done.description} -> {done.outcome}{flag}",
                        file=progress,
                    )
            record.groups = client.groups()
            record.orders = [
                {"group_id": group["id"], "symbol": group["symbol"], **order}
                for group in record.groups
                for order in client.call("GET", f"/groups/{group['id']}")["orders"]
            ]
            record.risk_actions = list(client.call("GET", "/risk")["actions"])
            record.equity = list(client.call("GET", "/equity")["points"])
            record.pool = dict(client.call("GET", "/pool"))
            record.queue = list(client.call("GET", "/queue")["queue"])
        finally:
            runtime.stop()
    write_report(record, out_dir)
    return record


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m engine.local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="full")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default ./demo-report)")
    parser.add_argument(
        "--port", type=int, default=0, help="HTTP port of the local stack (default: any free)"
    )
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    print(
        f"demo: replaying the {scenario.name!r} scenario ({len(scenario.steps)} steps) on a fresh local stack"
    )
    try:
        record = run_demo(scenario, args.out, port=args.port, progress=sys.stdout)
    except Exception as exc:
        print(f"demo failed: {type(exc).__name__}: {exc} (see {args.out / 'runtime.log'})", file=sys.stderr)
        return 1
    report = (args.out / "report.md").resolve()
    print(
        f"demo: report written to {report.parent}/ (report.md, equity.png, groups.csv, orders.csv, "
        "risk_actions.csv)"
    )
    mismatches = record.mismatches()
    if mismatches:
        print(
            f"demo: {len(mismatches)} signal(s) had an outcome other than the script expects:",
            file=sys.stderr,
        )
        for line in mismatches:
            print(f"  {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
