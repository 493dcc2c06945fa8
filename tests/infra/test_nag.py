"""cdk-nag AwsSolutions: no unacknowledged finding, every acknowledgement precise and reasoned."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

NAG = Match.string_like_regexp("AwsSolutions-.*")


def _describe(messages: Any) -> list[str]:
    return [f"{message.id}: {str(message.entry.data)[:160]}" for message in messages]


def test_no_unacknowledged_errors(synthesized: Any) -> None:
    assert _describe(synthesized.annotations.find_error("*", NAG)) == []


def test_no_unacknowledged_warnings(synthesized: Any) -> None:
    assert _describe(synthesized.annotations.find_warning("*", NAG)) == []


def test_no_unacknowledged_findings_with_the_allowlist_either(synthesized_with_allowlist: Any) -> None:
    annotations = synthesized_with_allowlist.annotations
    assert _describe(annotations.find_error("*", NAG)) + _describe(annotations.find_warning("*", NAG)) == []


def _suppressions(synthesized: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in synthesized.resources.items():
        for suppression in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            found.append((logical_id, suppression))
    return found


def test_every_acknowledgement_has_a_real_reason(synthesized: Any) -> None:
    suppressions = _suppressions(synthesized)
    assert suppressions
    for logical_id, suppression in suppressions:
        assert len(suppression["reason"]) >= 60, (logical_id, suppression)


def test_wildcard_acknowledgements_name_the_exact_findings(synthesized: Any) -> None:
    """IAM4/IAM5 are granular: a suppression without applies_to would hide any future wildcard too."""
    granular = [
        (lid, s)
        for lid, s in _suppressions(synthesized)
        if s["id"] in {"AwsSolutions-IAM4", "AwsSolutions-IAM5"}
    ]
    assert granular
    for logical_id, suppression in granular:
        applies_to = suppression.get("applies_to") or suppression.get("appliesTo")
        assert applies_to, (logical_id, json.dumps(suppression))
        assert all("*" not in finding or finding.endswith(("/*", "::*")) for finding in applies_to)
