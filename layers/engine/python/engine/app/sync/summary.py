"""What one order_sync run did (both passes write into one summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.app.sync.figures import EngineFigures

__all__ = ["SyncSummary"]


@dataclass
class SyncSummary:
    """What one run did (``ran`` False: neither pass was due, nothing was done)."""

    ran: bool = False
    fast: bool = False
    minute: bool = False
    live: bool = False
    accounts: list[str] = field(default_factory=list)
    prices_updated: int = 0
    orders_polled: int = 0
    orders_updated: int = 0
    cancels_driven: int = 0
    triggers_fired: int = 0
    unknown_found: int = 0
    unknown_waiting: int = 0
    unknown_resent: int = 0
    redriven: int = 0
    markets_refreshed: list[str] = field(default_factory=list)
    groups_refreshed: int = 0
    promoted: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    figures: EngineFigures | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (Decimals as strings)."""
        data: dict[str, Any] = {key: value for key, value in vars(self).items() if key != "figures"}
        if self.figures is not None:
            data["figures"] = {
                key: str(value) if not isinstance(value, int | dict) else value
                for key, value in vars(self.figures).items()
                if key != "accounts"
            }
            data["figures"]["accounts"] = {
                name: figures.as_dict() for name, figures in self.figures.accounts.items()
            }
        return data
