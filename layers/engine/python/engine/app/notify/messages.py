"""Which events become messages, and the short phone-readable text of each (DESIGN §3.11).

The ``notify`` document lists event names: ``opened`` (a group was created), ``closed`` (a group closed),
``risk_action`` (a risk-engine action), ``protection`` (a protection closed a group), ``rejected`` (a
signal refused by a rule), ``error`` (a group failed, a configuration problem) and ``operator`` (an
operator's action; not in the defaults). One event makes at most one message; the text fits a phone's
notification (symbol, side, account, prices, PnL, reason), with no markup so every channel shows it as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from engine.domain.events import (
    KIND_CONFIG,
    KIND_GROUP,
    KIND_OPERATOR,
    KIND_PROTECTION,
    KIND_RISK,
    KIND_SIGNAL,
    Event,
)

__all__ = ["message_text", "notify_name"]

CENT = Decimal("0.01")
#: Telegram's limit is 4096 characters; a phone shows far fewer.
MAX_TEXT = 600


def notify_name(event: Event) -> str | None:
    """The ``notify.events`` name ``event`` falls under, or None when it is never a message."""
    if event.kind == KIND_GROUP:
        return {"opened": "opened", "closed": "closed", "failed": "error"}.get(event.name)
    if event.kind == KIND_SIGNAL:
        return "rejected" if event.name == "rejected" else None
    if event.kind == KIND_RISK:
        return "risk_action"
    if event.kind == KIND_PROTECTION:
        return "protection"
    if event.kind == KIND_OPERATOR:
        return "operator"
    if event.kind == KIND_CONFIG:
        return "error"
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _price(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return "?"
    text = f"{number.normalize():f}"
    return text if "." not in text or len(text.split(".")[1]) <= 8 else f"{number:.8f}".rstrip("0")


def _usd(value: Any, *, signed: bool = False) -> str:
    number = _decimal(value)
    if number is None:
        return "?"
    rounded = number.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{rounded:+.2f}" if signed else f"{rounded:.2f}"


def _who(event: Event) -> str:
    """``BTC/USDT long · binance 60m``: what the event is about."""
    parts = [event.symbol or "", event.side or ""]
    head = " ".join(part for part in parts if part)
    where = event.account or ""
    if event.timeframe:
        where = f"{where} {event.timeframe}m".strip()
    return f"{head} · {where}" if head and where else head or where or "engine"


def _group_text(event: Event, data: Mapping[str, Any]) -> str:
    who = _who(event)
    if event.name == "opened":
        capital = data.get("capital_usd")
        text = f"OPENED {who}\nentry {_price(data.get('entry_price'))}"
        return text + (f" · capital {_usd(capital)} USD" if capital is not None else "")
    if event.name == "closed":
        pnl = _usd(data.get("realized_pnl_usd"), signed=True)
        exit_price = data.get("last_price")
        text = (
            f"CLOSED {who}\nentry {_price(data.get('avg_entry'))} -> exit "
            f"{_price(exit_price) if exit_price is not None else 'market'} · PnL {pnl} USD"
        )
        why = data.get("close_reason")
        note = data.get("close_note")
        return text + (f"\n{why}: {note}" if why and note else f"\n{why}" if why else "")
    return f"FAILED {who}: {event.reason or data.get('close_note') or 'no leg was accepted'}"


def message_text(event: Event) -> str:
    """The message for ``event`` (module doc)."""
    data = event.data or {}
    if event.kind == KIND_GROUP:
        text = _group_text(event, data)
    elif event.kind == KIND_SIGNAL:
        text = f"REJECTED {_who(event)}: {event.reason or 'refused'}"
    elif event.kind == KIND_RISK:
        amount = data.get("amount_usd")
        extra = f" · {_usd(amount)} USD" if amount is not None else ""
        text = f"RISK {event.name} {_who(event)}{extra}\n{event.reason or ''}".rstrip()
    elif event.kind == KIND_PROTECTION:
        pnl = data.get("realized_pnl_usd")
        extra = f" · PnL {_usd(pnl, signed=True)} USD" if pnl is not None else ""
        text = f"PROTECTION {event.name} {_who(event)}{extra}\n{event.reason or ''}".rstrip()
    elif event.kind == KIND_OPERATOR:
        text = f"OPERATOR {event.name} {_who(event)}: {event.reason or ''}".rstrip(": ")
    elif event.kind == KIND_CONFIG:
        text = f"CONFIG ERROR: {event.reason or event.name}"
    else:
        text = f"{event.kind} {event.name}: {event.reason or ''}".rstrip(": ")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
