"""Fill events (DESIGN §1): each observed increase of an order's ``filled`` is one entry of the event log.

Recorded by position_update from the orders stream (old and new image of the order), with the id
``fill#<order id>#<filled>``: a replayed record, or the same increase seen twice, writes nothing. The
order write itself is not a transaction (the executor and order_sync save orders on their own), so the
event follows it on the stream rather than riding in it.
"""

from __future__ import annotations

from datetime import datetime

from engine.app.context import EngineContext
from engine.domain.events import KIND_FILL, Event
from engine.domain.models import ZERO, Order

__all__ = ["fill_event", "record_fill"]


def fill_event(old: Order | None, new: Order, at: datetime) -> Event | None:
    """The event of ``new``'s fill increase over ``old`` (None when ``filled`` did not grow)."""
    before = old.filled if old is not None else ZERO
    if new.filled <= before:
        return None
    return Event(
        id=f"fill#{new.id}#{new.filled.normalize()}",
        at=new.last_fill_at or at,
        kind=KIND_FILL,
        name="fill",
        reason=f"{new.purpose.value} {new.side.value} {new.filled - before} of {new.amount}",
        group_id=new.group_id,
        account=new.exchange.strip().lower(),
        symbol=new.symbol,
        data={
            "order_id": new.id,
            "purpose": new.purpose.value,
            "order_side": new.side.value,
            "quantity": str(new.filled - before),
            "filled": str(new.filled),
            "amount": str(new.amount),
            "average": None if new.average is None else str(new.average),
            "status": new.status.value,
        },
    )


def record_fill(ctx: EngineContext, old: Order | None, new: Order, now: datetime) -> bool:
    """Append the fill event of ``old`` -> ``new`` if there is one; True when it was written now."""
    event = fill_event(old, new, now)
    return event is not None and ctx.stores.events.record(event)
