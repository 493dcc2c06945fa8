"""Position accounting (DESIGN §3.5): a group's figures and state recomputed from its orders, by lots.

Nothing is ever incremented: every call starts from the orders' fill ledgers (or, for orders recorded
before the ledger existed, their cumulative ``filled``, ``average``, ``fee_cost`` and ``fee_currency``)
and rebuilds the figures from scratch, so replays and duplicate stream records cannot double-count.

Conventions (the decisions a reader needs):

* **Ledger.** Each order's fills are :class:`~engine.domain.models.Fill` entries (``Order.fills``),
  recorded with :func:`derive_fill` from each observed increase of ``filled``. An order without a
  ledger counts as one fill of its whole ``filled`` at its average price and ``last_fill_at`` (then
  ``updated_at``); a ledger that covers less than ``filled`` gets one such entry for the missing part
  (first), one that covers more is cut at ``filled``.
* **Which orders count.** Entries are orders with purpose ``entry`` (buys for a long group, sells for a
  short one); closing orders are ``tp``, ``exit`` and ``risk_close`` (the opposite side).
* **Lots.** Each entry order is a lot: its fills at their own prices. A lot's ``price`` is the average
  of its fills (an entry of ``q`` at ``p`` moves it to ``(held * price + q * p) / (held + q)``); a sale
  does not change it. A closing fill takes units from lots:

  - a leg take-profit (``tp`` with ``parent_order_id``) from its own lot;
  - a pyramid take-profit (``tp`` without parent, with ``pyramid``: ``pyramid_aggregate``) from that
    pyramid's lots, pro rata to what each holds;
  - every other close (aggregate ``tp`` without pyramid, ``exit``, ``risk_close``) from all lots pro
    rata to what each holds;

  whatever the targeted lots cannot supply comes pro rata from the others (never expected).
* **Order of events.** All fills are replayed by time (``Fill.at``; entries before closes at the same
  instant). A closing fill never takes more than is held at that point: when it would, the next entry
  fills of the lots it targets (then any) are applied first (a leg that kept filling after its TP).
* **Held quantity** = Σ entry fills - Σ closing fills - fees paid in the base coin.
* **Average entry** (``avg_entry``) = cost-weighted average price of the remaining lots (it can rise
  after deep legs take profit: intended, DESIGN §3.5). Fees are not folded into it. It keeps its last
  value once nothing is held.
* **Fees.** A fill's fee in USD is its ``fee_usd`` when recorded, else a base-coin fee valued at the
  fill price and any other currency at face value. ``fees_usd`` is the total of all fees. A base-coin
  fee is a quantity (fewer units held or more units gone) whose cost stays in the lot, so it is not
  charged again; other fees reach realised PnL: a closing fill's own fee in full, and entry fees in
  proportion to the share of the lot that a sale takes out.
* **Realised PnL** of taking ``u`` units out of a lot for proceeds ``P`` (``s * q`` sold) =
  ``P - cost share`` for long (mirrored for short) minus the fees above, where the cost share is the
  lot's cost basis (Σ ``q * p`` of its fills) times ``u / held``. So once everything is sold, Σ
  realised = proceeds - costs - non-base fees. ``realized_by_day`` groups it by the UTC date of each
  closing fill.
* **Invested** = held * avg entry; **unrealised** = ``(price - avg) * held`` (mirrored for short) at the
  given price; unrealised % is relative to invested.
* **filled_legs** counts entry legs that are *fully* filled (status ``filled`` or ``filled ≥ amount``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from engine.domain.config import DEFAULT_USD_QUOTES
from engine.domain.models import (
    FINAL_ORDER_STATUSES,
    TERMINAL_GROUP_STATUSES,
    ZERO,
    CloseReason,
    Fill,
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
    "Lot",
    "LotBook",
    "base_currency_of",
    "compute_figures",
    "compute_lots",
    "convert_fee_usd",
    "derive_fill",
    "end_reason",
    "fee_in_base",
    "fee_usd",
    "fill_price",
    "flat_after_take_profit",
    "held_by_pyramid",
    "is_fully_filled",
    "ledger",
    "leg_held",
    "lots_held",
    "next_group_status",
    "pyramid_figures",
    "with_fill",
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
    """The order's fee in USD: its recorded ``fee_usd``, else a base-coin fee at its fill price and any
    other currency at face value (orders recorded before third-coin fees were converted)."""
    if order.fee_usd is not None:
        return order.fee_usd
    base_fee = fee_in_base(order, base_currency)
    if base_fee:
        return base_fee * fill_price(order)
    return order.fee_cost


def convert_fee_usd(
    fee: Decimal,
    currency: str | None,
    *,
    price: Decimal,
    base_currency: str,
    usd_quotes: Iterable[str] = DEFAULT_USD_QUOTES,
    coin_price_usd: Decimal | None = None,
) -> Decimal | None:
    """A fee in USD (DESIGN §3.5 "Money is USD").

    A fee in a USD quote (``usd_quotes``, or no currency) counts 1:1; a base-coin fee is valued at the
    fill ``price``; any other coin (BNB) at ``coin_price_usd``, its ``/USDT`` ticker, which the caller
    reads when the fill is recorded. Returns None when that price is needed but not given.
    """
    if not fee:
        return ZERO
    code = (currency or "").upper()
    if not code or code in {quote.upper() for quote in usd_quotes}:
        return fee
    if code == base_currency.upper():
        return fee * price
    if coin_price_usd is None:
        return None
    return fee * coin_price_usd


def derive_fill(
    previous: Order,
    *,
    filled: Decimal,
    average: Decimal | None,
    fee_cost: Decimal,
    fee_currency: str | None,
    at: datetime,
    cost: Decimal | None = None,
    usd_quotes: Iterable[str] = DEFAULT_USD_QUOTES,
    coin_price_usd: Decimal | None = None,
) -> Fill | None:
    """The ledger entry for an observed change of an order's cumulative fill, or None if it did not grow.

    ``previous`` is the order as stored before the observation; ``filled``/``average``/``cost``/
    ``fee_cost``/``fee_currency`` are the exchange's new cumulative values. The increment's price is
    ``(new cost - old cost) / Δfilled`` where a cost is ``filled * average`` (``cost`` when no average);
    its fee is the increase of the fee (the whole new fee when the currency changed), converted with
    :func:`convert_fee_usd` (``coin_price_usd``: the fee coin's USD price for a third coin).
    """
    delta = filled - previous.filled
    if delta <= 0:
        return None
    if average is not None and average > 0:
        new_cost = filled * average
    elif cost is not None and cost > 0:
        new_cost = cost
    else:
        new_cost = filled * fill_price(previous)
    old_cost = previous.filled * fill_price(previous) if previous.filled > 0 else ZERO
    price = (new_cost - old_cost) / delta
    if price <= 0:
        price = new_cost / filled
    same_currency = (previous.fee_currency or "").upper() == (fee_currency or "").upper()
    fee = fee_cost - previous.fee_cost if same_currency else fee_cost
    fee = max(fee, ZERO)
    usd = convert_fee_usd(
        fee,
        fee_currency,
        price=price,
        base_currency=base_currency_of(previous.symbol),
        usd_quotes=usd_quotes,
        coin_price_usd=coin_price_usd,
    )
    return Fill(quantity=delta, price=price, at=at, fee=fee, fee_currency=fee_currency, fee_usd=usd)


def with_fill(order: Order, fill: Fill) -> Order:
    """A copy of ``order`` with ``fill`` appended to its ledger and ``fee_usd`` its ledger's total
    (None while any entry's fee in USD is unknown)."""
    fills = [*ledger(order), fill]
    known = [entry.fee_usd for entry in fills]
    total = sum((value for value in known if value is not None), ZERO)
    return replace(order, fills=fills, fee_usd=None if any(v is None for v in known) else total)


def is_fully_filled(order: Order) -> bool:
    """True when the order has filled its whole amount."""
    return order.status == OrderStatus.FILLED or (order.filled > 0 and order.filled >= order.amount)


def ledger(order: Order) -> list[Fill]:
    """The order's fills, oldest first, always adding up to ``filled`` (see the module docstring)."""
    if order.filled <= 0:
        return []
    fills: list[Fill] = []
    recorded = ZERO
    for fill in order.fills:
        if recorded >= order.filled:
            break
        if recorded + fill.quantity > order.filled:
            fill = replace(fill, quantity=order.filled - recorded)
        fills.append(fill)
        recorded += fill.quantity
    missing = order.filled - recorded
    if missing <= 0:
        return fills
    average = fill_price(order)
    price = (order.filled * average - sum((f.cost for f in fills), ZERO)) / missing
    if price <= 0:
        price = average
    fee = max(order.fee_cost - sum((f.fee for f in fills), ZERO), ZERO)
    known = [f.fee_usd for f in fills]
    usd: Decimal | None = None
    if order.fee_usd is not None and all(v is not None for v in known):
        usd = max(order.fee_usd - sum((v for v in known if v is not None), ZERO), ZERO)
    at = fills[0].at if fills else (order.last_fill_at or order.updated_at)
    return [Fill(missing, price, at, fee, order.fee_currency, usd), *fills]


@dataclass
class Lot:
    """One entry order's lot (DESIGN §3.5): what it still holds and what its sales realised.

    ``price`` is the average price of its fills; ``cost`` the cost basis of what it holds (Σ ``q * p``,
    base-coin fee units included); ``open_fees`` the non-base entry fees (USD) not yet realised.
    """

    order_id: str
    pyramid: int | None
    leg: int | None
    quantity: Decimal = ZERO
    price: Decimal = ZERO
    cost: Decimal = ZERO
    open_fees: Decimal = ZERO
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    fees_usd: Decimal = ZERO
    realized_usd: Decimal = ZERO

    def enter(
        self, qty: Decimal, price: Decimal, base_fee: Decimal, fee: Decimal, fee_total: Decimal
    ) -> None:
        """Apply an entry fill of ``qty`` at ``price`` (``base_fee`` in coin, ``fee`` non-base USD)."""
        position = max(self.quantity, ZERO)
        if position + qty > 0:
            self.price = (position * self.price + qty * price) / (position + qty)
        self.quantity += qty - base_fee
        self.cost += qty * price
        self.bought += qty
        self.open_fees += fee
        self.fees_usd += fee_total

    def take(
        self, units: Decimal, proceeds: Decimal, fee: Decimal, fee_total: Decimal, sign: Decimal
    ) -> Decimal:
        """Take ``units`` out for ``proceeds`` (its share of the sale) and ``fee`` (USD); the realised PnL."""
        share = Decimal(1) if self.quantity <= 0 or units >= self.quantity else units / self.quantity
        cost = self.cost * share
        entry_fees = self.open_fees * share
        pnl = sign * (proceeds - cost) - entry_fees - fee
        self.cost -= cost
        self.open_fees -= entry_fees
        self.quantity -= units
        self.sold += units
        self.fees_usd += fee_total
        self.realized_usd += pnl
        return pnl


@dataclass
class LotBook:
    """Every lot of a group after replaying its fills, and the realised totals."""

    lots: dict[str, Lot] = field(default_factory=dict)
    #: Exact held quantity (Σ entry fills - Σ units taken out); lots' own quantities may carry
    #: sub-1e-18 residues of pro-rata division.
    quantity: Decimal = ZERO
    realized_usd: Decimal = ZERO
    fees_usd: Decimal = ZERO
    realized_by_day: dict[str, Decimal] = field(default_factory=dict)
    last_avg: Decimal = ZERO
    last_avg_by_pyramid: dict[int, Decimal] = field(default_factory=dict)

    @property
    def held(self) -> Decimal:
        """Quantity held by all lots (exact)."""
        return max(self.quantity, ZERO)

    def avg_entry(self, pyramid: int | None = None) -> Decimal:
        """Cost-weighted average price of the remaining lots (of one pyramid), else its last value."""
        lots = [
            lot
            for lot in self.lots.values()
            if lot.quantity > 0 and (pyramid is None or lot.pyramid == pyramid)
        ]
        held = sum((lot.quantity for lot in lots), ZERO)
        if held > 0:
            return sum((lot.quantity * lot.price for lot in lots), ZERO) / held
        if pyramid is None:
            return self.last_avg
        return self.last_avg_by_pyramid.get(pyramid, ZERO)

    def _remember_avg(self) -> None:
        if self.held > 0:
            self.last_avg = self.avg_entry()
        for pyramid in {lot.pyramid for lot in self.lots.values() if lot.quantity > 0}:
            if pyramid is not None:
                self.last_avg_by_pyramid[pyramid] = self.avg_entry(pyramid)


def _fill_fees(fill: Fill, base_currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(fee in base coin, non-base fee in USD, whole fee in USD) of one fill."""
    currency = (fill.fee_currency or "").upper()
    if fill.fee and currency == base_currency.upper():
        usd = fill.fee_usd if fill.fee_usd is not None else fill.fee * fill.price
        return fill.fee, ZERO, usd
    usd = fill.fee_usd if fill.fee_usd is not None else fill.fee
    return ZERO, usd, usd


def _sign(side: Side) -> Decimal:
    return Decimal(1) if Side(side) == Side.LONG else Decimal(-1)


def _day(when: datetime) -> str:
    return (when.astimezone(UTC) if when.tzinfo is not None else when).date().isoformat()


_Event = tuple[tuple[datetime, int, datetime, str, int], Order, Fill]


def _events(orders: Iterable[Order], closing: bool) -> list[_Event]:
    kind = 1 if closing else 0
    events: list[_Event] = []
    for order in orders:
        is_close = order.purpose in CLOSING_PURPOSES
        if (order.purpose == OrderPurpose.ENTRY and not closing) or (is_close and closing):
            for index, fill in enumerate(ledger(order)):
                events.append(((fill.at, kind, order.created_at, order.id, index), order, fill))
    events.sort(key=lambda event: event[0])
    return events


def _targets(book: LotBook, close: Order) -> list[Lot]:
    """Lots a closing order sells from (module docstring)."""
    if close.purpose == OrderPurpose.TP and close.parent_order_id is not None:
        lot = book.lots.get(close.parent_order_id)
        return [lot] if lot is not None else []
    if close.purpose == OrderPurpose.TP and close.pyramid is not None:
        return [lot for lot in book.lots.values() if lot.pyramid == close.pyramid]
    return list(book.lots.values())


def _targeted(close: Order, entry: Order) -> bool:
    """True when ``entry``'s lot is one ``close`` sells from first (see :func:`_targets`)."""
    if close.purpose == OrderPurpose.TP and close.parent_order_id is not None:
        return entry.id == close.parent_order_id
    if close.purpose == OrderPurpose.TP and close.pyramid is not None:
        return entry.pyramid == close.pyramid
    return True


def _available(lots: Iterable[Lot]) -> Decimal:
    return sum((lot.quantity for lot in lots if lot.quantity > 0), ZERO)


def _allocate(lots: Sequence[Lot], need: Decimal) -> dict[str, Decimal]:
    """Units to take from each lot: ``need`` pro rata to what each holds (all of it when short)."""
    holding = [lot for lot in lots if lot.quantity > 0]
    total = sum((lot.quantity for lot in holding), ZERO)
    if total <= 0 or need <= 0:
        return {}
    if need >= total:
        return {lot.order_id: lot.quantity for lot in holding}
    takes = {lot.order_id: need * lot.quantity / total for lot in holding[:-1]}
    last = holding[-1]
    takes[last.order_id] = min(max(need - sum(takes.values(), ZERO), ZERO), last.quantity)
    return takes


class _Replay:
    """Replays a group's fills into a :class:`LotBook` (see :func:`compute_lots`)."""

    def __init__(self, orders: Sequence[Order], side: Side, base_currency: str) -> None:
        self.book = LotBook()
        self.sign = _sign(side)
        self.base = base_currency
        self.pending = _events(orders, closing=False)
        self.closes = _events(orders, closing=True)

    def enter(self, event: _Event) -> None:
        """Apply one entry fill to its order's lot."""
        _, order, fill = event
        book = self.book
        lot = book.lots.get(order.id)
        if lot is None:
            lot = book.lots[order.id] = Lot(order.id, order.pyramid, order.leg)
        base_fee, fee, total = _fill_fees(fill, self.base)
        lot.enter(fill.quantity, fill.price, base_fee, fee, total)
        book.quantity += fill.quantity - base_fee
        book.fees_usd += total

    def _supply(self, close: Order, need: Decimal) -> None:
        """Apply the entry fills a closing fill needs first: its target lots', then any."""
        pending = self.pending
        while _available(_targets(self.book, close)) < need:
            index = next((i for i, event in enumerate(pending) if _targeted(close, event[1])), None)
            if index is None:
                break
            self.enter(pending.pop(index))
        while self.book.held < need and pending:
            self.enter(pending.pop(0))

    def close(self, key: tuple[datetime, int, datetime, str, int], close: Order, fill: Fill) -> None:
        """Apply one closing fill: take its units from the lots and book the realised PnL."""
        book, pending = self.book, self.pending
        while pending and pending[0][0] <= key:
            self.enter(pending.pop(0))
        base_fee, fee, total = _fill_fees(fill, self.base)
        need = fill.quantity + base_fee
        self._supply(close, need)
        book._remember_avg()
        takes = _allocate(_targets(book, close), need)
        short = need - sum(takes.values(), ZERO)
        if short > 0:
            takes.update(_allocate([lot for lot in book.lots.values() if lot.order_id not in takes], short))
        taken = sum(takes.values(), ZERO)
        book.quantity -= min(need, max(book.quantity, ZERO))
        proceeds = fill.quantity * fill.price
        pnl = self.sign * (fill.price - book.last_avg) * fill.quantity - fee
        if taken > 0:
            pnl = ZERO
            for order_id, units in takes.items():
                part = units / taken
                pnl += book.lots[order_id].take(units, proceeds * part, fee * part, total * part, self.sign)
        if book.quantity <= 0:
            for lot in book.lots.values():
                lot.quantity = ZERO
        book.realized_usd += pnl
        book.fees_usd += total
        day = _day(fill.at)
        book.realized_by_day[day] = book.realized_by_day.get(day, ZERO) + pnl
        book._remember_avg()

    def run(self) -> LotBook:
        """Replay everything; the resulting book."""
        for key, close, fill in self.closes:
            self.close(key, close, fill)
        for event in self.pending:
            self.enter(event)
        self.book._remember_avg()
        return self.book


def compute_lots(orders: Sequence[Order], side: Side, base_currency: str) -> LotBook:
    """Replay every fill of the group's orders into lots (conventions in the module docstring).

    A closing fill when nothing at all is held (inconsistent data) is booked against the last average.
    """
    return _Replay(orders, side, base_currency).run()


_TIDY = Decimal("1e-18")


def _tidy(quantity: Decimal) -> Decimal:
    """A lot-derived quantity without the residue of pro-rata division (never negative)."""
    return max(quantity, ZERO).quantize(_TIDY).normalize() if quantity > 0 else ZERO


def lots_held(orders: Sequence[Order], side: Side, base_currency: str) -> dict[str, Decimal]:
    """Quantity each entry order's lot still holds (entry order id -> quantity, never negative)."""
    book = compute_lots(orders, side, base_currency)
    return {order_id: _tidy(lot.quantity) for order_id, lot in book.lots.items()}


def _figures(
    held: Decimal,
    avg: Decimal,
    realized: Decimal,
    fees: Decimal,
    side: Side,
    price: Decimal | None,
    filled_legs: int,
    total_legs: int,
) -> GroupFigures:
    held = max(held, ZERO)
    invested = held * avg
    unrealized = ZERO
    if price is not None and held > 0:
        unrealized = _sign(side) * (price - avg) * held
    return GroupFigures(
        quantity=held,
        avg_entry=avg,
        invested_usd=invested,
        realized_pnl_usd=realized,
        unrealized_pnl_usd=unrealized,
        unrealized_pnl_percent=unrealized / invested * _HUNDRED if invested > 0 else ZERO,
        fees_usd=fees,
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
    """Recompute a group's figures from its orders' lots (conventions in the module docstring).

    ``price`` is the latest market price (``None``: unrealised PnL stays 0); ``total_legs`` is the number
    of entry legs of all the group's pyramids. ``avg_entry`` is the cost-weighted average of the remaining
    lots and keeps its last value once nothing is held.
    """
    book = compute_lots(orders, side, base_currency)
    filled_legs = sum(1 for o in orders if o.purpose == OrderPurpose.ENTRY and is_fully_filled(o))
    figures = _figures(
        book.quantity,
        book.avg_entry(),
        book.realized_usd,
        book.fees_usd,
        side,
        price,
        filled_legs,
        total_legs,
    )
    figures.realized_by_day = dict(book.realized_by_day)
    return figures


def pyramid_figures(
    orders: Sequence[Order], side: Side, base_currency: str, price: Decimal | None = None
) -> dict[int, GroupFigures]:
    """Figures of each pyramid on its own lots (for ``pyramid_aggregate`` take-profits).

    A pyramid's quantity, average and realised PnL are those of its entry orders' lots: its own TPs sell
    its lots, a group-wide close takes from every lot pro rata. Entry orders without a pyramid are
    ignored here. ``total_legs`` of each result is the number of that pyramid's entry orders.
    """
    book = compute_lots(orders, side, base_currency)
    result: dict[int, GroupFigures] = {}
    indexes = sorted({lot.pyramid for lot in book.lots.values() if lot.pyramid is not None})
    for index in indexes:
        lots = [lot for lot in book.lots.values() if lot.pyramid == index]
        own = [o for o in orders if o.purpose == OrderPurpose.ENTRY and o.pyramid == index]
        filled_legs = sum(1 for o in own if is_fully_filled(o))
        result[index] = _figures(
            _tidy(sum((lot.quantity for lot in lots if lot.quantity > 0), ZERO)),
            book.avg_entry(index),
            sum((lot.realized_usd for lot in lots), ZERO),
            sum((lot.fees_usd for lot in lots), ZERO),
            side,
            price,
            filled_legs,
            len(own),
        )
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


def flat_after_take_profit(
    orders: Sequence[Order], figures: GroupFigures, precision: MarketPrecision, newest_pyramid: int
) -> bool:
    """True when a take-profit left the group holding nothing and its newest pyramid has at least one fill.

    With ``close_when_flat`` (DCA document, default true) the caller then cancels the resting entry legs
    and closes the group with ``close_reason`` ``take_profit`` (DESIGN §3.5). "Nothing" is the dust rule
    of :func:`next_group_status`; the latest closing fill must be a ``tp`` order's.
    """
    if not _is_dust(figures, precision):
        return False
    newest = [o for o in orders if o.purpose == OrderPurpose.ENTRY and o.pyramid == newest_pyramid]
    if not any(o.filled > 0 for o in newest):
        return False
    closes = _events(orders, closing=True)
    return bool(closes) and closes[-1][1].purpose == OrderPurpose.TP


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
