"""`python -m engine.local` as a subprocess: banner, HTTP, tick over fake functions, clean SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]


SCHEDULED = """
import json, os, pathlib

def lambda_handler(event, context):
    out = pathlib.Path(os.environ["FAKE_OUT"]) / (context.function_name + ".json")
    out.write_text(json.dumps(event))
    return {"ran": context.function_name}
"""

STREAM = """
import json, os, pathlib

def lambda_handler(event, context):
    out = pathlib.Path(os.environ["FAKE_OUT"]) / "order_executor.jsonl"
    with out.open("a") as handle:
        for record in event["Records"]:
            handle.write(json.dumps(record) + "\\n")
    return {"batchItemFailures": []}
"""

OPERATOR = """
import json

def lambda_handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"path": event["path"], "resource": event["resource"]})}
"""


def _functions(root: Path) -> Path:
    for name, source in {
        "order_sync": SCHEDULED,
        "risk_engine": SCHEDULED,
        "order_executor": STREAM,
        "operator_api": OPERATOR,
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "handler.py").write_text(source)
    return root


def _get(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def _closed(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    # The test's own AWS clients talk to the runtime's moto with fake credentials.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")},
        "ORDERS_TABLE": "execution-engine-local-orders",
        "PYTHONPATH": str(ROOT / "layers" / "engine" / "python"),
        "PYTHONUNBUFFERED": "1",
        "PORT": "0",
        "ENGINE_FUNCTIONS_ROOT": str(_functions(tmp_path / "functions")),
        "FAKE_OUT": str(out),
        "LOCAL_SYNC_SECONDS": "3600",
        "LOCAL_RISK_SECONDS": "3600",
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
    }
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.local"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read_stdout, daemon=True).start()
    found: dict[str, Any] = {"process": process, "out": out, "lines": lines}
    deadline = time.monotonic() + 90
    try:
        while not {"webhook_url", "aws_endpoint_url", "secret"} <= found.keys():
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"runtime printed no banner; stderr:\n{stderr.read_text()}")
            if "Webhook URL:" in line:
                found["webhook_url"] = line.split()[-1]
            elif "Webhook secret:" in line:
                found["secret"] = line.split()[-1]
            elif "AWS endpoint:" in line:
                found["aws_endpoint_url"] = line.split()[2]
        found["url"] = found["webhook_url"].removesuffix("/webhook")
        yield found
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_runtime_starts_answers_and_stops_cleanly_on_sigterm(runtime):
    url = runtime["url"]
    # Given a started runtime
    # When /_local/info is asked, then it names the moto endpoint, region, prefix and webhook URL
    status, info = _get(f"{url}/_local/info")
    assert status == 200
    assert info["aws_endpoint_url"] == runtime["aws_endpoint_url"]
    assert info["region"] == "us-east-1"
    assert info["parameter_prefix"] == "/execution-engine/local/"
    assert info["webhook_url"] == f"{url}/webhook"

    # And the endpoint serves the seeded config and the printed secret, as AWS would
    aws = {"endpoint_url": info["aws_endpoint_url"], "region_name": "us-east-1"}
    ssm = boto3.client("ssm", **aws)
    pool = ssm.get_parameter(Name="/execution-engine/local/pool")["Parameter"]["Value"]
    assert "max_open_groups" in pool
    secret = boto3.client("secretsmanager", **aws).get_secret_value(SecretId=info["webhook_secret_name"])
    assert secret["SecretString"] == runtime["secret"]

    # And an operator route reaches operator_api through the proxy resource
    status, answer = _get(f"{url}/groups")
    assert (status, answer) == (200, {"path": "/groups", "resource": "/{proxy+}"})

    # When an order item is written and a tick is asked for
    dynamodb = boto3.client("dynamodb", **aws)
    dynamodb.put_item(
        TableName="execution-engine-local-orders",
        Item={"id": {"S": "o-1"}, "group_id": {"S": "g-1"}, "status": {"S": "pending"}},
    )
    status, tick = _get(f"{url}/_local/tick", "POST", b"")

    # Then both scheduled functions ran with detail.force and the orders stream was drained to the consumer
    assert status == 200 and tick["quiet"] is True
    assert tick["order_sync"]["ok"] and tick["risk_engine"]["ok"]
    for function in ("order_sync", "risk_engine"):
        event = json.loads((runtime["out"] / f"execution-engine-local-{function}.json").read_text())
        assert event["detail"] == {"force": True} and event["detail-type"] == "Scheduled Event"
    records = [
        json.loads(line) for line in (runtime["out"] / "order_executor.jsonl").read_text().splitlines()
    ]
    assert [record["dynamodb"]["Keys"]["id"]["S"] for record in records] == ["o-1"]
    assert records[0]["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:")
    # (the background pump may have delivered it before the tick: records_delivered counts the drain only)
    assert tick["failures"] == 0 and tick["dead_letters"] == 0 and tick["dead_letters_total"] == 0

    # And the status control shows the pool, the queue, the groups and the recent events
    status, state = _get(f"{url}/_local/status")
    assert status == 200
    # (the totals of the three default accounts' pools, 10 each)
    assert state["pool"] == {"max_open_groups": 30, "open": 0, "free": 30}
    assert state["queue"] == [] and state["groups"] == [] and state["dead_letters"] == []
    assert any("order o-1" in event["event"] for event in state["events"])

    # When SIGTERM is sent
    process = runtime["process"]
    process.send_signal(signal.SIGTERM)

    # Then it exits 0, and neither the HTTP server nor moto is still listening
    assert process.wait(60) == 0
    assert _closed(url) and _closed(info["aws_endpoint_url"])
