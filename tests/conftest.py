"""Settings every test tier shares.

- moto runs with the engine's cost fixes (``engine.local.aws.install_cost_fixes``).
- Hypothesis has no per-example deadline: a deadline is an assertion on wall time, which the suite never
  makes (speed is measured by ``make bench``); on a loaded 2-core CI machine it only produces flakes.
- A local runtime started by a test (in a subprocess, which inherits this environment) keeps its state
  in a temporary directory, never in the repository's ``.local/``, unless the test names its own.
"""

import os
import tempfile

from hypothesis import settings

from engine.local.aws import install_cost_fixes

install_cost_fixes()

settings.register_profile("engine", deadline=None)
settings.load_profile("engine")

os.environ.setdefault("LOCAL_STATE_DIR", tempfile.mkdtemp(prefix="engine-test-state-"))
os.environ.setdefault("LOCAL_FRESH", "1")
