"""Context -> settings, and the dependency-layer build commands (no network, no real build)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra import build_layers
from infra.settings import NAME_LIMITS, PROJECT_ROOT, NameTooLong, StackSettings, load_cdk_json_context


def _context(values: dict[str, object]) -> StackSettings:
    return StackSettings.from_context(values.get)


def test_defaults_name_everything_after_app_and_stage() -> None:
    settings = _context({})
    assert settings.table_name("groups") == "execution-engine-dev-groups"
    assert settings.parameter_prefix == "/execution-engine/dev/"
    assert settings.webhook_secret_name == "execution-engine/dev/webhook"
    assert settings.exchange_secret_name("okx") == "execution-engine/dev/exchange/okx"
    assert settings.deps_layer_path == PROJECT_ROOT / "build/layers/deps"
    assert settings.engine_layer_path == PROJECT_ROOT / "build/layers/engine"
    assert settings.tradingview_allowlist is False  # dev: open webhook unless asked
    assert settings.region == "ap-northeast-1"  # exchanges refuse US addresses


def test_cdk_json_pins_a_non_us_region_and_leaves_the_allowlist_to_the_stage() -> None:
    context = load_cdk_json_context()
    assert context["region"] == "ap-northeast-1"
    assert not context["region"].startswith("us-")
    assert "tradingview_allowlist" not in context  # else it would override the per-stage default


@pytest.mark.parametrize(
    ("stage", "flag", "expected"),
    [
        ("dev", None, False),
        ("prod", None, True),
        ("staging", "", True),
        ("prod", "false", False),
        ("prod", False, False),
        ("dev", "true", True),
    ],
)
def test_allowlist_is_on_outside_dev_unless_the_flag_says_otherwise(
    stage: str, flag: object, expected: bool
) -> None:
    assert _context({"stage": stage, "tradingview_allowlist": flag}).tradingview_allowlist is expected


def test_region_comes_from_context() -> None:
    assert _context({"region": "eu-west-1"}).region == "eu-west-1"


def test_longest_stage_the_name_limits_allow_is_22_with_the_default_app() -> None:
    StackSettings(stage="s" * 22)
    with pytest.raises(NameTooLong) as raised:
        StackSettings(stage="s" * 23)
    message = str(raised.value)
    assert "EventBridge rule name 'execution-engine-" in message
    assert "(limit 64)" in message
    assert "at most 39 characters" in message


def test_settings_check_the_longest_name_of_each_kind_the_template_sets(
    synthesized_with_allowlist: Any,
) -> None:
    """The names settings checks at synth are the stack's longest names of each limited kind."""
    name_properties = {
        "AWS::Events::Rule": ("EventBridge rule", "Name"),
        "AWS::Lambda::Function": ("Lambda function", "FunctionName"),
        "AWS::SQS::Queue": ("SQS queue", "QueueName"),
        "AWS::WAFv2::WebACL": ("WAF web ACL", "Name"),
        "AWS::Lambda::LayerVersion": ("Lambda layer", "LayerName"),
        "AWS::DynamoDB::Table": ("DynamoDB table", "TableName"),
        "AWS::CloudWatch::Alarm": ("CloudWatch alarm", "AlarmName"),
        "AWS::CloudWatch::Dashboard": ("CloudWatch dashboard", "DashboardName"),
    }
    checked = StackSettings(stage="prod").physical_names()
    for resource_type, (kind, prop) in name_properties.items():
        names = [
            value["Properties"][prop]
            for value in synthesized_with_allowlist.of_type(resource_type).values()
            if isinstance(value["Properties"].get(prop), str)
        ]
        longest = max(len(name) for name in names)
        assert longest <= NAME_LIMITS[kind], resource_type
        assert max(len(name) for k, name in checked if k == kind) == longest, resource_type


def test_context_overrides_app_stage_and_relative_layer_path() -> None:
    settings = _context({"app": "ee", "stage": "prod", "deps_layer_path": "elsewhere/deps"})
    assert settings.table_name("orders") == "ee-prod-orders"
    assert settings.parameter_prefix == "/ee/prod/"
    assert settings.deps_layer_path == PROJECT_ROOT / "elsewhere/deps"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        (None, False),
    ],
)
def test_allowlist_flag_accepts_cli_strings(raw: object, expected: bool) -> None:
    assert _context({"tradingview_allowlist": raw}).tradingview_allowlist is expected


@pytest.mark.parametrize("stage", ["Prod", "my stage", "x/y", ""])
def test_unusable_names_are_refused(stage: str) -> None:
    with pytest.raises(ValueError, match="stage"):
        StackSettings(stage=stage)


def test_pip_command_targets_lambda_arm64_python_312_wheels_only(tmp_path: Path) -> None:
    command = build_layers.pip_command(tmp_path / "python")
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--only-binary=:all:" in command
    assert "--python-version 3.12" in joined
    assert "--implementation cp" in joined
    assert f"--target {tmp_path / 'python'}" in joined
    assert "--no-compile" in command  # bytecode comes from the 3.12 compileall step only
    assert f"-r {build_layers.REQUIREMENTS}" in joined
    assert f"-c {build_layers.CONSTRAINTS}" in joined


def test_compile_command_uses_hash_based_pycs(tmp_path: Path) -> None:
    command = build_layers.compile_command("/usr/bin/python3.12", tmp_path)
    assert command[:3] == ["/usr/bin/python3.12", "-m", "compileall"]
    assert command[command.index("--invalidation-mode") + 1] == "unchecked-hash"


def test_find_interpreter_accepts_only_the_requested_version() -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert build_layers.find_interpreter(running, explicit=sys.executable) == sys.executable
    with pytest.raises(SystemExit, match=r"no Python 9\.9 interpreter"):
        build_layers.find_interpreter("9.9", explicit=sys.executable)


def test_prune_removes_only_the_listed_folders(tmp_path: Path) -> None:
    for folder in ("ccxt/async_support", "ccxt/pro", "ccxt/base"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.py").write_text("")
    build_layers.prune(tmp_path, ("ccxt/async_support", "ccxt/pro"))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")) == ["ccxt/base/x.py"]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def test_layer_requirements_pin_the_projects_runtime_versions() -> None:
    layer = _pins((PROJECT_ROOT / "layers/deps/requirements.txt").read_text().splitlines())
    project = _pins(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert layer == project
    assert set(layer) == {"aws-lambda-powertools", "boto3", "pydantic", "ccxt", "pynamodb"}


def test_synth_entry_point_fails_on_an_unacknowledged_nag_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make synth` must not pass with a cdk-nag error: main() exits 1 and names the rule."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks

    from infra import app as app_module

    def insecure_app(outdir: str | None = None, **_: object) -> cdk.App:
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "Insecure")
        sqs.Queue(stack, "PlainQueue")  # no SSL-only policy, no DLQ: AwsSolutions-SQS3/SQS4
        cdk.Aspects.of(stack).add(AwsSolutionsChecks())
        return app

    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "out"))
    monkeypatch.setattr(app_module, "build_app", insecure_app)
    assert app_module.main() == 1
    assert "AwsSolutions-SQS4" in capsys.readouterr().err
