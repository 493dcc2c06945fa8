"""Synthesize the stack once per test session (jsii synth takes tens of seconds).

The dependency layer is not built for these tests: `deps_layer_path` points at a temporary folder
holding an empty `python/`. The engine layer is built for real (copy + compileall, about a second)
with the runtime's Python when there is one (LAMBDA_INTERPRETER), else with this interpreter.
Missing function folders are created empty (their handlers are written elsewhere); nothing else in
the tree is touched.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before aws_cdk starts the jsii node process: the value is a list of node MAJOR versions.
os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = (
    os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "") + ",18,20,22"
)
os.environ["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = (
    os.environ.get("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "") + ",18,20,22"
)

from aws_cdk import Stack
from aws_cdk.assertions import Annotations, Template

from infra import build_layers
from infra.app import build_app
from infra.functions import FUNCTION_SPECS, FUNCTIONS_ROOT


def _lambda_interpreter() -> str:
    try:
        return build_layers.find_interpreter()
    except SystemExit:
        return sys.executable


LAMBDA_INTERPRETER = _lambda_interpreter()


@dataclass
class Synthesized:
    stack: Stack
    template: Template
    annotations: Annotations
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}


def _synthesize(tmp_root: Path, **context: Any) -> Synthesized:
    deps = tmp_root / "deps"
    (deps / "python").mkdir(parents=True, exist_ok=True)
    for spec in FUNCTION_SPECS:
        (FUNCTIONS_ROOT / spec.name).mkdir(parents=True, exist_ok=True)
    engine = tmp_root / "engine"
    build_layers.build_engine(engine, LAMBDA_INTERPRETER)
    outdir = tmp_root / "cdk.out"
    app = build_app(
        {"deps_layer_path": str(deps), "engine_layer_path": str(engine), **context}, outdir=str(outdir)
    )
    (stack,) = [child for child in app.node.children if isinstance(child, Stack)]
    return Synthesized(stack, Template.from_stack(stack), Annotations.from_stack(stack), outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as `cdk.json` configures it (stage dev, no IP allowlist)."""
    return _synthesize(tmp_path_factory.mktemp("synth-default"))


@pytest.fixture(scope="session")
def synthesized_with_allowlist(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The `prod` stage with no allowlist flag: outside `dev` the TradingView allowlist is the default."""
    return _synthesize(tmp_path_factory.mktemp("synth-allowlist"), stage="prod")


@pytest.fixture(scope="session")
def template_json(synthesized: Synthesized) -> dict[str, Any]:
    return dict(synthesized.template.to_json())


def logical_id_of(reference: Any) -> str | None:
    """`{"Fn::GetAtt": [id, attr]}` or `{"Ref": id}` -> id."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            return str(reference["Fn::GetAtt"][0])
        if "Ref" in reference:
            return str(reference["Ref"])
    return None


def flatten(value: Any) -> str:
    """A resource expression as one string (Fn::Join parts concatenated, refs as <id>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(flatten(part) for part in parts)
        if "Fn::GetAtt" in value:
            return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
        if "Ref" in value:
            return f"<{value['Ref']}>"
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def role_statements(synthesized: Synthesized) -> Callable[[str], list[dict[str, Any]]]:
    """Function name -> every policy statement attached to its role."""
    functions = synthesized.of_type("AWS::Lambda::Function")
    policies = synthesized.of_type("AWS::IAM::Policy")

    def statements(function_name: str) -> list[dict[str, Any]]:
        (function,) = [
            value
            for value in functions.values()
            if value["Properties"].get("FunctionName", "").endswith("-" + function_name.replace("_", "-"))
        ]
        role_id = logical_id_of(function["Properties"]["Role"])
        found: list[dict[str, Any]] = []
        for policy in policies.values():
            if any(logical_id_of(role) == role_id for role in policy["Properties"]["Roles"]):
                found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return found

    return statements
