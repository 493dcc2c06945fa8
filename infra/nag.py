"""cdk-nag acknowledgements: one helper so every suppression carries a reason and, for granular
rules, the exact findings it covers.

Pass `NagPackSuppression` objects, never plain dicts: jsii passes a dict through as is, and its
`applies_to` key is then lost, turning a one-finding acknowledgement into a blanket one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct


def acknowledge(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: Sequence[str] | None = None,
    children: bool = False,
) -> None:
    """Acknowledge `AwsSolutions-<rule>` on `construct` (and its children if asked)."""
    suppression = NagPackSuppression(
        id=f"AwsSolutions-{rule}",
        reason=reason,
        applies_to=list(applies_to) if applies_to is not None else None,
    )
    NagSuppressions.add_resource_suppressions(construct, [suppression], apply_to_children=children)
