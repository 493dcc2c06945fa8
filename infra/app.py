"""CDK entry point: `python infra/app.py` (writes cdk.out) or `npx aws-cdk@2 <command>` via cdk.json.

Context (cdk.json or `-c key=value`): app, stage, region, deps_layer_path, engine_layer_path,
tradingview_allowlist, alarm_email.
Run directly (no CDK CLI), the context is read from cdk.json here; under the CLI, the CLI passes it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
for entry in (PROJECT_ROOT / "layers" / "engine" / "python", PROJECT_ROOT):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

# jsii compares these with node's MAJOR version ("20"), a comma-separated list; "1" silences nothing.
os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = (
    os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "") + ",18,20,22"
)
os.environ["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = (
    os.environ.get("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "") + ",18,20,22"
)

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.settings import StackSettings, load_cdk_json_context  # noqa: E402
from infra.stack import ExecutionEngineStack, stack_id  # noqa: E402


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """The app with the stack and cdk-nag's AwsSolutions checks.

    cdk.json's context is the base (under the CLI the CLI's own context, environment, wins over it),
    `context` overrides it (tests).
    """
    merged = load_cdk_json_context()
    merged.update(context or {})
    app = cdk.App(context=merged, outdir=outdir)
    settings = StackSettings.from_context(app.node.try_get_context)
    # The region is part of the design (exchanges refuse US addresses): it comes from the context
    # (`region`, cdk.json), not from the shell's AWS_DEFAULT_REGION; the account from the credentials.
    stack = ExecutionEngineStack(
        app,
        stack_id(settings),
        settings=settings,
        env=cdk.Environment(region=settings.region, account=os.environ.get("CDK_DEFAULT_ACCOUNT")),
    )
    cdk.Aspects.of(stack).add(AwsSolutionsChecks(verbose=True))
    return app


def main() -> int:
    """Synthesize into cdk.out (or $CDK_OUTDIR); exit 1 if any error annotation (cdk-nag) is present."""
    assembly = build_app(outdir=os.environ.get("CDK_OUTDIR") or str(PROJECT_ROOT / "cdk.out")).synth()
    errors = [
        f"{message.id}: {message.entry.data}"
        for artifact in assembly.stacks
        for message in artifact.messages
        if message.level == cdk.cx_api.SynthesisMessageLevel.ERROR
    ]
    for error in errors:
        print(f"error {error}", file=sys.stderr)
    print(
        f"synthesized {len(assembly.stacks)} stack(s) into {assembly.directory}"
        f"{'' if not errors else f' with {len(errors)} error(s)'}",
        file=sys.stderr,
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
