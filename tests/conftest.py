"""Settings every test tier shares.

- moto runs with the engine's cost fixes (``engine.local.aws.install_cost_fixes``).
- Hypothesis has no per-example deadline: a deadline is an assertion on wall time, which the suite never
  makes (speed is measured by ``make bench``); on a loaded 2-core CI machine it only produces flakes.
"""

from hypothesis import settings

from engine.local.aws import install_cost_fixes

install_cost_fixes()

settings.register_profile("engine", deadline=None)
settings.load_profile("engine")
