"""The webhook handler imports only what its path uses (issue 14, item 6: cold start).

Given a fresh interpreter set up like the deployed function (cwd = its folder, the engine layer on the
path, ``POWERTOOLS_TRACE_DISABLED=true`` as the stack sets it), when ``handler.py`` is imported, then
neither the X-Ray SDK (tracing is off), nor the exchange gateway factory, nor ccxt is loaded; with
tracing on, the X-Ray SDK is (so the check can fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.spec_from_file_location('handler', 'handler.py')\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
    "('aws_xray_sdk', 'ccxt') or m == 'engine.app.gateways')))\n"
)


def _loaded(function: str, trace_disabled: str) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "engine" / "python"),
        "POWERTOOLS_TRACE_DISABLED": trace_disabled,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", ["webhook", "order_sync"])
def test_handler_imports_no_xray_gateways_or_ccxt_when_tracing_is_off(function: str) -> None:
    loaded = _loaded(function, "true")
    assert not [m for m in loaded if m.startswith("aws_xray_sdk")]
    assert not [m for m in loaded if m.startswith("ccxt")]
    if function == "webhook":
        assert "engine.app.gateways" not in loaded


def test_with_tracing_on_the_xray_sdk_is_loaded() -> None:
    assert any(m.startswith("aws_xray_sdk") for m in _loaded("webhook", "false"))
