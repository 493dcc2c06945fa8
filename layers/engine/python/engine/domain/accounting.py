"""Position accounting (DESIGN §3.5): a group's figures and state recomputed from its orders.

Nothing is ever incremented: every call starts from the orders' cumulative ``filled``, ``average``,
``fee_cost`` and ``fee_currency`` and rebuilds the figures from scratch, so replays and duplicate
stream records cannot double-count.

Conventions (the decisions a reader needs):

* **Which orders count.** Entries are orders with purpose ``entry`` (buys for a long group, sells for a
  short one); closing orders are ``tp``, ``exit`` and ``risk_close`` (the opposite side). The side of
  a fill follows from its purpose.
* **Order of events.** Fills are known only cumulatively per order, so each order is one event placed
  at its ``last_fill_at`` (then ``created_at``, then ``id``). A closing order never sells more than is
  held at that point: when it would, the next entries are processed first (a leg that kept filling
  after its TP started filling).
* **Held quantity** = Σ entry fills - Σ closing fills - fees paid in the base coin.
* **Average entry** is the pure price average of the entry fills (average-cost method): an entry of
  ``q`` at ``p`` moves it to ``(held * avg + q * p) / (held + q)``; closes do not change it. Fees are
  *not* folded into it.
* **Fees.** Every fee is converted to USD (quote): a base-coin fee at that order's average fill price,
  any other currency taken at face value as quote (the engine's markets are USD-stable quoted).
  ``fees_usd`` is the total of all fees paid. Fees reach realised PnL as follows: a closing order's own
  fees in full; entry fees in proportion to the share of the held quantity that the closing order takes
  out (all of them once the position is fully closed). Entry fees of the part still held are in neither
  realised nor unrealised PnL until it is closed.
* **Realised PnL** of a closing fill of ``q`` at ``s`` = ``(s - avg) * q`` for long, ``(avg - s) * q``
  for short, minus the fees above. ``realized_by_day`` groups it by the UTC date of the closing order's
  ``last_fill_at`` (``updated_at`` when that is missing).
* **Invested** = held * avg entry; **unrealised** = ``(price - avg) * held`` (mirrored for short) at
  the given price; unrealised % is relative to invested.
* **filled_legs** counts entry legs that are *fully* filled (status ``filled`` or ``filled ≥ amount``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from engine.domain.models import (
    FINAL_ORDER_STATUSES,
    TERMINAL_GROUP_STATUSES,
    ZERO,
    CloseReason,
    GroupFigures,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderStatus,
    Side,
)

__all__ = [
    "CLOSING_PURPOSES",
    "base_currency_of",
    "compute_figures",
    "end_reason",
    "fee_in_base",
    "fee_usd",
    "fill_price",
    "held_by_pyramid",
    "is_fully_filled",
    "leg_held",
    "next_group_status",
    "pyramid_figures",
]

#: Purposes of orders that reduce a position.
CLOSING_PURPOSES = frozenset({OrderPurpose.TP, OrderPurpose.EXIT, OrderPurpose.RISK_CLOSE})

_HUNDRED = Decimal(100)


def base_currency_of(symbol: str) -> str:
    """Base coin of a ccxt symbol: ``BTC/USDT`` and ``BTC/USDT:USDT`` -> ``BTC``."""
    return symbol.split("/", 1)[0]


def fill_price(order: Order) -> Decimal:
    """Average fill price of an order: ``average``, else ``cost / filled``, else the limit price, else 0."""
    if order.average is not None and order.average > 0:
        return order.average
    if order.filled > 0 and order.cost > 0:
        return order.cost / order.filled
    return order.price if order.price is not None else ZERO


def fee_in_base(order: Order, base_currency: str) -> Decimal:
    """Fee the order paid in the base coin (reduces the held quantity), else 0."""
    currency = order.fee_currency
    if order.fee_cost and currency is not None and currency.upper() == base_currency.upper():
        return order.fee_cost
    return ZERO


def fee_usd(order: Order, base_currency: str) -> Decimal:
    """The order's fee in USD: a base-coin fee at its fill price, any other currency at face value."""
    base_fee = fee_in_base(order, base_currency)
    if base_fee:
        return base_fee * fill_price(order)
    return order.fee_cost


def is_fully_filled(order: Order) -> bool:
    """True when the order has filled its whole amount."""
    return order.status == OrderStatus.FILLED or (order.filled > 0 and order.filled >= order.amount)


def _event_time(order: Order) -> tuple[datetime, datetime, str]:
    return (order.last_fill_at or order.updated_at, order.created_at, order.id)


def _ordered_events(orders: Iterable[Order]) -> list[Order]:
    """Filled orders in processing order (see the module docstring)."""
    entries = sorted((o for o in orders if o.purpose == OrderPurpose.ENTRY and o.filled > 0), key=_event_time)
    closes = sorted((o for o in orders if o.purpose in CLOSING_PURPOSES and o.filled > 0), key=_event_time)
    events: list[Order] = []
    held = ZERO
    entry_index = 0
    for close in closes:
        while entry_index < len(entries) and (
            _event_time(entries[entry_index]) <= _event_time(close) or held < close.filled
        ):
            entry = entries[entry_index]
            events.append(entry)
            held += entry.filled
            entry_index += 1
        events.append(close)
        held -= close.filled
    events.extend(entries[entry_index:])
    return events


@dataclass
class _Book:
    """Running average-cost state while replaying fills."""

    held: Decimal = ZERO
    avg: Decimal = ZERO
    open_entry_fees: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO

    def enter(self, qty: Decimal, price: Decimal, base_fee: Decimal, fee: Decimal) -> None:
        """Apply an entry fill of ``qty`` at ``price`` (fees: ``base_fee`` in coin, ``fee`` in USD)."""
        position = max(self.held, ZERO)
        self.avg = (position * self.avg + qty * price) / (position + qty)
        self.held += qty - base_fee
        self.open_entry_fees += fee
        self.fees += fee

    def close(self, qty: Decimal, price: Decimal, base_fee: Decimal, fee: Decimal, sign: Decimal) -> Decimal:
        """Apply a closing fill; returns its realised PnL net of its fees and its share of entry fees."""
        taken = qty + base_fee
        share = Decimal(1) if self.held <= 0 or taken >= self.held else taken / self.held
        attributed = self.open_entry_fees * share
        self.open_entry_fees -= attributed
        pnl = sign * (price - self.avg) * qty - fee - attributed
        self.realized += pnl
        self.fees += fee
        self.held -= taken
        return pnl


def _sign(side: Side) -> Decimal:
    return Decimal(1) if Side(side) == Side.LONG else Decimal(-1)


def _closing_day(order: Order) -> str:
    when = order.last_fill_at or order.updated_at
    return (when.astimezone(UTC) if when.tzinfo is not None else when).date().isoformat()


def _figures(
    book: _Book, side: Side, price: Decimal | None, filled_legs: int, total_legs: int
) -> GroupFigures:
    held = max(book.held, ZERO)
    invested = held * book.avg
    unrealized = ZERO
    if price is not None and held > 0:
        unrealized = _sign(side) * (price - book.avg) * held
    return GroupFigures(
        quantity=held,
        avg_entry=book.avg,
        invested_usd=invested,
        realized_pnl_usd=book.realized,
        unrealized_pnl_usd=unrealized,
        unrealized_pnl_percent=unrealized / invested * _HUNDRED if invested > 0 else ZERO,
        fees_usd=book.fees,
        filled_legs=filled_legs,
        total_legs=total_legs,
        last_price=price,
    )


def compute_figures(
    orders: Sequence[Order],
    *,
    side: Side,
    base_currency: str,
    price: Decimal | None,
    total_legs: int,
) -> GroupFigures:
    """Recompute a group's figures from its orders (conventions in the module docstring).

    ``price`` is the latest market price (``None``: unrealised PnL stays 0); ``total_legs`` is the number
    of entry legs of all the group's pyramids. ``avg_entry`` keeps its last value once nothing is held.
    """
    book = _Book()
    sign = _sign(side)
    by_day: dict[str, Decimal] = {}
    for order in _ordered_events(orders):
        price_filled = fill_price(order)
        base_fee = fee_in_base(order, base_currency)
        fee = fee_usd(order, base_currency)
        if order.purpose == OrderPurpose.ENTRY:
            book.enter(order.filled, price_filled, base_fee, fee)
        else:
            pnl = book.close(order.filled, price_filled, base_fee, fee, sign)
            day = _closing_day(order)
            by_day[day] = by_day.get(day, ZERO) + pnl
    filled_legs = sum(1 for o in orders if o.purpose == OrderPurpose.ENTRY and is_fully_filled(o))
    figures = _figures(book, side, price, filled_legs, total_legs)
    figures.realized_by_day = by_day
    return figures


def pyramid_figures(
    orders: Sequence[Order], side: Side, base_currency: str, price: Decimal | None = None
) -> dict[int, GroupFigures]:
    """Figures of each pyramid on its own fills (for ``pyramid_aggregate`` take-profits).

    Entries and TP orders carry their ``pyramid``. A closing order without one (a whole-group exit or a
    risk partial close) is shared out over the pyramids in proportion to what each holds at that moment,
    which is what selling from one average-cost position means. Entry orders without a pyramid are
    ignored here. ``total_legs`` of each result is the number of that pyramid's entry orders.
    """
    books: dict[int, _Book] = {}
    sign = _sign(side)
    for order in _ordered_events(orders):
        price_filled = fill_price(order)
        base_fee = fee_in_base(order, base_currency)
        fee = fee_usd(order, base_currency)
        if order.purpose == OrderPurpose.ENTRY:
            if order.pyramid is not None:
                books.setdefault(order.pyramid, _Book()).enter(order.filled, price_filled, base_fee, fee)
        elif order.pyramid is not None and order.pyramid in books:
            books[order.pyramid].close(order.filled, price_filled, base_fee, fee, sign)
        else:
            holders = {index: book.held for index, book in books.items() if book.held > 0}
            total = sum(holders.values(), ZERO)
            for index, held in holders.items():
                part = held / total
                books[index].close(order.filled * part, price_filled, base_fee * part, fee * part, sign)
    result: dict[int, GroupFigures] = {}
    for index in sorted(books):
        own = [o for o in orders if o.purpose == OrderPurpose.ENTRY and o.pyramid == index]
        filled_legs = sum(1 for o in own if is_fully_filled(o))
        result[index] = _figures(books[index], side, price, filled_legs, len(own))
    return result


def held_by_pyramid(orders: Sequence[Order], side: Side, base_currency: str) -> dict[int, Decimal]:
    """Quantity each pyramid still holds (see :func:`pyramid_figures` for group-wide closes)."""
    return {
        index: figures.quantity for index, figures in pyramid_figures(orders, side, base_currency).items()
    }


def leg_held(entry_order: Order, closing_orders_for_leg: Sequence[Order]) -> Decimal:
    """Quantity one entry leg still holds: its fill minus base-coin fees minus its closing orders' fills."""
    base = base_currency_of(entry_order.symbol)
    held = entry_order.filled - fee_in_base(entry_order, base)
    for close in closing_orders_for_leg:
        held -= close.filled + fee_in_base(close, base)
    return max(held, ZERO)


def _is_dust(figures: GroupFigures, precision: MarketPrecision) -> bool:
    held = figures.quantity
    if held < precision.step:
        return True
    price = figures.last_price if figures.last_price is not None else figures.avg_entry
    return price > 0 and held * price < precision.min_notional


def next_group_status(
    current: GroupStatus,
    orders: Sequence[Order],
    figures: GroupFigures,
    precision: MarketPrecision,
    first_pyramid: int = 1,
) -> GroupStatus:
    """The group's state after its orders changed (DESIGN §3.5).

    * Terminal states (``closed``, ``failed``) never change.
    * ``failed``: every entry leg of the first pyramid was rejected and nothing at all was filled.
    * ``closed``: what is held is dust (under one step, or worth less than ``min_notional`` at the last
      price — unsellable), no entry order is live, and either something was filled or every entry order
      is final (an untouched group whose entries were all cancelled also closes).
    * ``closing`` stays ``closing`` until closed.
    * Otherwise ``active`` when every entry leg of every pyramid is fully filled (``figures.filled_legs``
      reaches ``figures.total_legs``), ``partially_filled`` when at least one entry has a fill, else
      ``live``. A leg the exchange rejected in a later pyramid therefore keeps the group
      ``partially_filled``.
    """
    if current in TERMINAL_GROUP_STATUSES:
        return current
    entries = [o for o in orders if o.purpose == OrderPurpose.ENTRY]
    anything_filled = any(o.filled > 0 for o in orders)
    first = [o for o in entries if o.pyramid == first_pyramid]
    if first and not anything_filled and all(o.status == OrderStatus.REJECTED for o in first):
        return GroupStatus.FAILED
    live_entry = any(o.is_live for o in entries)
    all_final = bool(entries) and all(o.status in FINAL_ORDER_STATUSES for o in entries)
    if _is_dust(figures, precision) and not live_entry and (anything_filled or all_final):
        return GroupStatus.CLOSED
    if current == GroupStatus.CLOSING:
        return GroupStatus.CLOSING
    if figures.total_legs > 0 and figures.filled_legs >= figures.total_legs:
        return GroupStatus.ACTIVE
    if any(o.filled > 0 for o in entries):
        return GroupStatus.PARTIALLY_FILLED
    return GroupStatus.LIVE


#: ``close_note`` of a group that ended ``failed``.
FAILED_NOTE = "no entry leg of the first pyramid was accepted by the exchange"
#: ``close_note`` of a group its take-profits closed.
TAKE_PROFIT_NOTE = "take-profits sold the position"
#: ``close_note`` of a group whose entries ended without a fill and without a requested close.
UNFILLED_NOTE = "entry orders ended without a fill"


def end_reason(status: GroupStatus, orders: Sequence[Order]) -> tuple[CloseReason, str] | None:
    """``(close_reason, close_note)`` for a group that reached ``status`` without a requested close.

    A close that was requested (exit, aggregate take-profit, risk, operator) records its own reason
    first; this covers the groups the state machine ends on its own: ``failed`` -> ``failed``; ``closed``
    after a take-profit filled (per-leg or pyramid TPs sold everything) -> ``take_profit``; any other
    ``closed`` (entries cancelled or expired without a fill) -> ``exit``. None for a non-terminal status.
    """
    if status == GroupStatus.FAILED:
        return CloseReason.FAILED, FAILED_NOTE
    if status != GroupStatus.CLOSED:
        return None
    if any(o.purpose == OrderPurpose.TP and o.filled > 0 for o in orders):
        return CloseReason.TAKE_PROFIT, TAKE_PROFIT_NOTE
    return CloseReason.EXIT, UNFILLED_NOTE
