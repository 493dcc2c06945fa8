"""Which events become messages and what the trader reads on the phone (DESIGN §3.11)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.app.notify import message_text, notify_name
from engine.domain.events import (
    KIND_CONFIG,
    KIND_FILL,
    KIND_GROUP,
    KIND_OPERATOR,
    KIND_PROTECTION,
    KIND_RISK,
    KIND_SIGNAL,
    Event,
)

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WHO = {"account": "binance-sub", "symbol": "ETH/USDT", "side": "long", "timeframe": 15}


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (KIND_GROUP, "opened", "opened"),
        (KIND_GROUP, "closed", "closed"),
        (KIND_GROUP, "failed", "error"),
        (KIND_GROUP, "active", None),
        (KIND_SIGNAL, "rejected", "rejected"),
        (KIND_SIGNAL, "opened", None),
        (KIND_RISK, "risk_offset", "risk_action"),
        (KIND_PROTECTION, "stop_loss", "protection"),
        (KIND_OPERATOR, "block", "operator"),
        (KIND_CONFIG, "config_invalid", "error"),
        (KIND_FILL, "fill", None),
    ],
)
def test_each_event_falls_under_one_notify_name(kind: str, name: str, expected: str | None) -> None:
    assert notify_name(Event(id="e", at=AT, kind=kind, name=name)) == expected


def test_a_closed_group_names_symbol_side_account_prices_pnl_and_reason() -> None:
    event = Event(
        id="group#g#v9",
        at=AT,
        kind=KIND_GROUP,
        name="closed",
        group_id="g",
        data={
            "avg_entry": "3000.5",
            "last_price": "3100",
            "realized_pnl_usd": "-12.345",
            "close_reason": "stop_loss",
            "close_note": "stop 2950 hit",
        },
        **WHO,
    )
    assert message_text(event) == (
        "CLOSED ETH/USDT long · binance-sub 15m\n"
        "entry 3000.5 -> exit 3100 · PnL -12.35 USD\n"
        "stop_loss: stop 2950 hit"
    )


def test_an_opened_group_shows_entry_and_capital() -> None:
    event = Event(
        id="group#g#v1",
        at=AT,
        kind=KIND_GROUP,
        name="opened",
        data={"entry_price": "3000", "capital_usd": "100"},
        **WHO,
    )
    assert message_text(event) == "OPENED ETH/USDT long · binance-sub 15m\nentry 3000 · capital 100.00 USD"


def test_a_long_reason_is_cut_to_fit_a_phone() -> None:
    event = Event(id="s", at=AT, kind=KIND_SIGNAL, name="rejected", reason="x" * 5000, **WHO)
    text = message_text(event)
    assert len(text) <= 600 and text.endswith("…")
