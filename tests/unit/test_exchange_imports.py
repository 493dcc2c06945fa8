"""Importing the exchange package must not import ccxt (cold starts; the webhook never needs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MODULES = [
    "engine.exchange",
    "engine.exchange.gateway",
    "engine.exchange.errors",
    "engine.exchange.paper",
    "engine.exchange.client_ids",
    "engine.exchange.markets",
    "engine.exchange.prices",
    "engine.exchange.ccxt_convert",
    "engine.exchange.ccxt_gateway",
    "engine.exchange.factory",
]


@pytest.mark.parametrize("module", MODULES)
def test_importing_does_not_import_ccxt(module):
    code = f"import {module}, sys; assert 'ccxt' not in sys.modules, 'ccxt was imported'"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "engine" / "python")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_check_itself_detects_ccxt():
    code = "import engine.exchange.errors, ccxt, sys; assert 'ccxt' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "engine" / "python")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
