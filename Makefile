# Two commands on a fresh machine: `make run` (local stack on the paper exchange) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock | md5sum | cut -c1-12)
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,20,22
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export POWERTOOLS_TRACE_DISABLED := true
export POWERTOOLS_METRICS_NAMESPACE ?= ExecutionEngine
export POWERTOOLS_SERVICE_NAME ?= execution-engine

.PHONY: install run test lint unit integration conformance infra e2e bench demo synth layers clean lock browser

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Re-resolve the pinned set from requirements.txt (direct dependencies) into requirements.lock.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/pip install -q -r requirements.txt
	build/lockenv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

# Style, formatting, complexity (ruff C901, max 12 per function) and types; .pre-commit-config.yaml runs the same.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/engine/python/engine functions infra

# The console's browser test drives Debian's chromium through chromium-driver: installed through apt when
# missing (CI runs as root; elsewhere through sudo). Nothing downloads a browser of its own.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

# Coverage of what ships (engine layer + functions, [tool.coverage] in pyproject): the files not fully
# covered, worst first, then the total.
test: install lint browser
	$(VENV)/bin/pytest -n 2 --dist worksteal --cov --cov-report=term:skip-covered tests

unit: install
	$(VENV)/bin/pytest tests/unit

# State lives in .local/ (git-ignored) and is restored on the next start; `make run FRESH=1` starts clean.
# PORT chooses the HTTP port (8080).
run: install
	PYTHONPATH=layers/engine/python FRESH=$(FRESH) PORT=$(PORT) $(PY) -m engine.local

# The arm64 / Python 3.12 layers (pip --platform, no Docker; engine package compiled), then the offline synth.
build/layers/deps/python: layers/deps/requirements.txt requirements.lock
	$(PY) infra/build_layers.py

layers: install
	$(PY) infra/build_layers.py

# The engine layer is rebuilt (copied and compiled, ~1 s) on every synth: it follows the source.
synth: install build/layers/deps/python
	$(PY) infra/build_layers.py --engine-only
	$(PY) infra/app.py

infra: install
	$(VENV)/bin/pytest tests/infra

integration: install
	$(VENV)/bin/pytest -n 2 tests/integration

# The gateway over the real ccxt binance/bybit/okx classes, only HTTP faked (no network; also in `make test`).
conformance: install
	$(VENV)/bin/pytest -n 2 tests/conformance

e2e: install browser
	$(VENV)/bin/pytest tests/e2e

bench: install
	PYTHONPATH=layers/engine/python:. $(PY) -m tests.bench.run_all

demo: install
	PYTHONPATH=layers/engine/python $(PY) -m engine.local.demo

clean:
	rm -rf $(VENV) cdk.out build
