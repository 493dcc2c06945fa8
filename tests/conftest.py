"""Every test tier runs moto with the engine's cost fixes (``engine.local.aws.install_cost_fixes``).

A local runtime started by a test (in a subprocess, which inherits this environment) keeps its state in
a temporary directory, never in the repository's ``.local/``, unless the test names its own.
"""

import os
import tempfile

from engine.local.aws import install_cost_fixes

install_cost_fixes()
os.environ.setdefault("LOCAL_STATE_DIR", tempfile.mkdtemp(prefix="engine-test-state-"))
os.environ.setdefault("LOCAL_FRESH", "1")
