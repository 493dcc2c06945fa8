"""Every test tier runs moto with the engine's cost fixes (``engine.local.aws.install_cost_fixes``)."""

from engine.local.aws import install_cost_fixes

install_cost_fixes()
