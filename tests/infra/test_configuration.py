"""SSM documents seeded once (never overwritten) and empty, retained secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.domain.config import default_documents
from infra.configuration import default_document_texts

DOCUMENTS = ("engine", "pool", "queue", "risk", "dca/default", "notify", "routes")


@pytest.fixture(scope="module")
def seeds(synthesized: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for value in synthesized.of_type("Custom::SeedConfigDocument").values():
        create = json.loads(value["Properties"]["Create"])
        found[create["parameters"]["Name"]] = value["Properties"]
    return found


def test_each_default_document_is_seeded_under_the_stage_prefix(seeds: dict[str, Any]) -> None:
    assert sorted(seeds) == sorted(f"/execution-engine/dev/{name}" for name in DOCUMENTS)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_seed_writes_the_engine_default_only_on_create_and_never_overwrites(
    name: str, seeds: dict[str, Any]
) -> None:
    properties = seeds[f"/execution-engine/dev/{name}"]
    create = json.loads(properties["Create"])
    assert create["service"] == "SSM"
    assert create["action"] == "putParameter"
    assert create["parameters"]["Overwrite"] is False
    assert create["parameters"]["Type"] == "String"
    assert create["parameters"]["Value"] == default_documents()[name]
    assert create["ignoreErrorCodesMatching"] == "ParameterAlreadyExists"
    # No Update and no Delete call: a redeploy or a stack deletion leaves the operator's edits alone.
    assert "Update" not in properties
    assert "Delete" not in properties


def test_seeder_may_only_put_these_parameters(synthesized: Any) -> None:
    put_resources: set[str] = set()
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "ssm:PutParameter" in actions:
                assert actions == ["ssm:PutParameter"]
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                put_resources |= {
                    "".join(map(str, r["Fn::Join"][1])).split(":parameter")[1] for r in resources
                }
    assert put_resources == {f"/execution-engine/dev/{name}" for name in DOCUMENTS}


def test_default_documents_fit_a_standard_parameter() -> None:
    assert all(len(text.encode()) <= 4096 for text in default_document_texts().values())


def test_secrets_are_created_empty_and_retained(synthesized: Any) -> None:
    secrets = {
        value["Properties"]["Name"]: value
        for value in synthesized.of_type("AWS::SecretsManager::Secret").values()
    }
    assert sorted(secrets) == sorted(
        ["execution-engine/dev/webhook", "execution-engine/dev/telegram"]
        + [f"execution-engine/dev/exchange/{name}" for name in ("binance", "bybit", "okx")]
    )
    for secret in secrets.values():
        assert "GenerateSecretString" not in secret["Properties"]
        assert "SecretString" not in secret["Properties"]
        # Kept on delete and replacement, removed when their own create rolls back.
        assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
        assert secret["UpdateReplacePolicy"] == "Retain"
