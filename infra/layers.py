"""Lambda layers: the engine package and the third-party dependencies, arm64 / Python 3.12.

Neither layer is bundled by CDK (that wants Docker): both are folders `infra/build_layers.py` fills
(`make layers`), each with bytecode compiled by the runtime's Python (unchecked-hash, so the asset zip's
1980 file times do not invalidate it): Lambda cannot write `.pyc`, and a layer without it compiles
every module it imports on every cold start.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.settings import LAMBDA_PYTHON_VERSION, StackSettings

# Kept out of the functions' code assets: bytecode compiled by the developer's interpreter (3.11).
CODE_EXCLUDES = ("**/__pycache__", "**/*.pyc")

LAMBDA_RUNTIME = {"3.12": lambda_.Runtime.PYTHON_3_12, "3.13": lambda_.Runtime.PYTHON_3_13}[
    LAMBDA_PYTHON_VERSION
]
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64


class MissingDependencyLayer(FileNotFoundError):
    """A layer folder has not been built."""


def check_dependency_layer(path: Path, *, context_key: str = "deps_layer_path") -> None:
    if not (path / "python").is_dir():
        raise MissingDependencyLayer(
            f"layer not found at {path}/python: run `make layers` first "
            f"(or pass -c {context_key}=<folder containing python/>)"
        )


class Layers(Construct):
    """`engine` (our package) and `deps` (powertools, pydantic, ccxt, pynamodb, boto3)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        check_dependency_layer(settings.deps_layer_path)
        check_dependency_layer(settings.engine_layer_path, context_key="engine_layer_path")
        self.engine = lambda_.LayerVersion(
            self,
            "Engine",
            layer_version_name=f"{settings.resource_prefix}-engine",
            description="Execution Engine package (engine.*)",
            # Built by build_layers.py: the package without engine.local, with its __pycache__.
            code=lambda_.Code.from_asset(str(settings.engine_layer_path)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
        )
        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            layer_version_name=f"{settings.resource_prefix}-deps",
            description="Third-party dependencies (layers/deps/requirements.txt), manylinux2014_aarch64",
            # Its __pycache__ is the point: bytecode compiled for the runtime by build_layers.py.
            code=lambda_.Code.from_asset(str(settings.deps_layer_path)),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[LAMBDA_ARCHITECTURE],
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.deps, self.engine]
