"""Layers (arm64, Python 3.12, engine asset without the dev-only local runtime) and stack outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import build_layers
from infra.layers import MissingDependencyLayer, check_dependency_layer
from tests.infra.conftest import LAMBDA_INTERPRETER, flatten

LAMBDA_INTERPRETER_TAG = "".join(
    build_layers._interpreter_version(LAMBDA_INTERPRETER).split(".")  # type: ignore[union-attr]
)


@pytest.fixture(scope="module")
def layers(synthesized: Any) -> dict[str, dict[str, Any]]:
    return {
        value["Properties"]["LayerName"]: value["Properties"]
        for value in synthesized.of_type("AWS::Lambda::LayerVersion").values()
    }


def test_two_layers_for_arm64_python_312(layers: dict[str, Any]) -> None:
    assert sorted(layers) == ["execution-engine-dev-deps", "execution-engine-dev-engine"]
    for layer in layers.values():
        assert layer["CompatibleArchitectures"] == ["arm64"]
        assert layer["CompatibleRuntimes"] == ["python3.12"]


def test_every_function_uses_both_layers(synthesized: Any) -> None:
    layer_ids = set(synthesized.of_type("AWS::Lambda::LayerVersion"))
    for value in synthesized.of_type("AWS::Lambda::Function").values():
        if value["Properties"].get("Handler") == "handler.lambda_handler":
            assert {layer["Ref"] for layer in value["Properties"]["Layers"]} == layer_ids


def _asset_folder(synthesized: Any, layer: dict[str, Any]) -> Path:
    key = layer["Content"]["S3Key"]
    asset_hash = key.removesuffix(".zip")
    return synthesized.outdir / f"asset.{asset_hash}"


def test_engine_layer_ships_the_package_compiled_without_the_local_runtime(
    synthesized: Any, layers: dict[str, Any]
) -> None:
    folder = _asset_folder(synthesized, layers["execution-engine-dev-engine"])
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert "python/engine/__init__.py" in files
    assert "python/engine/domain/models.py" in files
    assert not [f for f in files if f.startswith("python/engine/local")]
    # Lambda cannot write .pyc: every module ships its bytecode, hash-based (asset zips reset times).
    sources = [f for f in files if f.endswith(".py")]
    tag = f"cpython-{LAMBDA_INTERPRETER_TAG}"
    for source in sources:
        directory, _, name = source.rpartition("/")
        assert f"{directory}/__pycache__/{name[:-3]}.{tag}.pyc" in files, source
    pyc = next(folder.rglob(f"models.{tag}.pyc")).read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked


def test_build_engine_leaves_out_only_the_top_level_local_package(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for folder in ("engine/local", "engine/domain/local", "engine/__pycache__"):
        (source / folder).mkdir(parents=True)
        (source / folder / "x.py").write_text("")
    (source / "engine" / "__init__.py").write_text("")
    build_layers.build_engine(tmp_path / "out", sys.executable, source=source)
    files = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.py")}
    assert files == {"python/engine/__init__.py", "python/engine/domain/local/x.py"}


def test_missing_dependency_layer_names_the_command_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyLayer, match="make layers"):
        check_dependency_layer(tmp_path / "nowhere")
    (tmp_path / "built" / "python").mkdir(parents=True)
    check_dependency_layer(tmp_path / "built")


def test_outputs(synthesized: Any) -> None:
    outputs = synthesized.template.to_json()["Outputs"]
    assert {"WebhookUrl", "OperatorApiUrl", "DashboardUrl", "ParameterPrefix"} <= set(outputs)
    assert outputs["ParameterPrefix"]["Value"] == "/execution-engine/dev/"
    webhook_url = flatten(outputs["WebhookUrl"]["Value"])
    assert webhook_url.startswith("https://<IngressApi")
    assert webhook_url.endswith("/webhook")
    assert "#dashboards:name=execution-engine-dev" in json.dumps(outputs["DashboardUrl"]["Value"])
