"""``PaperGateway``: the built-in paper exchange (DESIGN §5), the default mode of every account.

Rules:

- Orders live in a :class:`PaperBook` (the paper orders table), so they survive between invocations.
  A client order id that is already in the book is not placed again: ``create_order`` returns the
  stored order (idempotent create).
- Amounts are truncated to the market's step and limit prices rounded to its tick (as ccxt does before
  sending); below the minimum quantity or notional -> ``OrderRefused`` (``InvalidOrder``).
- A *marketable* order (market, or a limit already crossed: buy limit >= price, sell limit <= price)
  fills at the current price when created. A *resting* limit fills at its limit price once the price
  crosses it (buy: price <= limit, sell: price >= limit).
- Every fill pays ``fee_percent`` of its notional, in the quote currency.
- Balances start at ``balance_usd`` of ``cash_currency`` (USDT) and are enforced when an order is
  created: a buy needs its notional plus fee in quote, a sell needs its amount in base, both net of
  what open orders already reserve (buy: remaining x limit x (1 + fee), sell: remaining). Short
  selling is not modelled (spot semantics). Not enough -> ``OrderRefused`` (``InsufficientFunds``).
  What open orders reserve is a ledger the book moves with every order write (:func:`reservation`:
  ``<quote>:buy`` the remaining notional of open buys at their limit, ``<base>:sell`` the remaining
  amount of open sells; the fee is applied when funds are checked), so a check costs the same with five
  open orders or five hundred. An account without a ledger gets one built from its open book once.
- Partial fills (``partial_fill_ratio``, e.g. 0.5): each matching step fills at most that share of a
  limit order's remaining amount (rounded down to the step; a remainder under the minimum quantity is
  filled with it). Market orders always fill completely, as on a real exchange.

When matching happens: at ``create_order`` (marketable orders), in :meth:`PaperGateway.match` (the
order sync's tick), in ``fetch_order`` and ``fetch_open_orders`` (so reads reflect current prices, as
a real exchange fills continuously) and in ``cancel_order`` (a crossed order fills before it can be
cancelled). ``fetch_closed_orders`` only reads. With partial fills, every one of these reads of an
open, crossed order is one matching step.

An order is written only if the book still holds the version it was read as (with its ledger change,
in one write); when another caller changed it meanwhile (the order sync filling an order the executor
is cancelling), nothing is written and ``TemporaryFailure`` asks the caller to try again. Balances are
written after the order they move, outside that write: the engine calls the exchange for one account's
order from one place at a time, which is what this relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from engine.domain.models import ZERO, ExchangeOrder, MarketPrecision, OrderSide, OrderType, utcnow
from engine.domain.money import plain, round_down, round_nearest
from engine.exchange.errors import BackOff, OrderRefused, TemporaryFailure
from engine.exchange.gateway import OrderRequest
from engine.exchange.prices import PriceSource

__all__ = ["PaperBook", "PaperGateway", "PriceSource", "reservation", "split_symbol"]

_HUNDRED = Decimal(100)


@runtime_checkable
class PaperBook(Protocol):
    """Persistence of paper orders and balances, per exchange account (implemented by engine.store)."""

    def get(self, exchange: str, client_order_id: str) -> ExchangeOrder | None:
        """The order with this client id, or ``None``."""
        ...

    def put(
        self,
        order: ExchangeOrder,
        *,
        replaces: ExchangeOrder | None,
        reserved: Mapping[str, Decimal] | None = None,
    ) -> bool:
        """Write ``order`` (keyed by ``order.exchange`` and ``order.client_order_id``) if the book still
        holds ``replaces`` as it was read (``None``: no order with this client id yet), moving the
        reservation ledger by ``reserved`` (key -> change) in the same write; False when it changed."""
        ...

    def get_reserved(self, exchange: str) -> dict[str, Decimal] | None:
        """The reservation ledger (key -> total), or ``None`` before it was first written."""
        ...

    def put_reserved(self, exchange: str, reserved: Mapping[str, Decimal]) -> None:
        """Write the reservation ledger afresh."""
        ...

    def list_open(self, exchange: str, symbol: str | None = None) -> list[ExchangeOrder]:
        """Orders with status ``open`` (of ``symbol`` when given)."""
        ...

    def list_all(self, exchange: str) -> list[ExchangeOrder]:
        """Every order of the account."""
        ...

    def get_balances(self, exchange: str) -> dict[str, Decimal] | None:
        """Balances per currency, or ``None`` before the first write."""
        ...

    def put_balances(self, exchange: str, balances: dict[str, Decimal]) -> None:
        """Replace the balances."""
        ...


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote currency of a ccxt symbol (``BTC/USDT`` or ``BTC/USDT:USDT``)."""
    base, _, rest = symbol.partition("/")
    quote = rest.split(":", 1)[0]
    if not base or not quote:
        raise OrderRefused(f"not a market symbol: {symbol!r}", error="BadSymbol")
    return base, quote


def reservation(order: ExchangeOrder | None) -> dict[str, Decimal]:
    """What ``order`` holds back while it is open, by ledger key: ``<quote>:buy`` its remaining notional at
    its limit (a buy), ``<base>:sell`` its remaining amount (a sell); nothing once it is not open."""
    if order is None or order.status != "open":
        return {}
    base, quote = split_symbol(order.symbol)
    if order.side is OrderSide.BUY:
        return {f"{quote}:buy": order.remaining * (order.price or ZERO)}
    return {f"{base}:sell": order.remaining}


def _ledger_change(before: ExchangeOrder | None, after: ExchangeOrder) -> dict[str, Decimal]:
    held, holds = reservation(before), reservation(after)
    change = {key: holds.get(key, ZERO) - held.get(key, ZERO) for key in held.keys() | holds.keys()}
    return {key: amount for key, amount in change.items() if amount}


def _changed_meanwhile(client_order_id: str, what: str) -> TemporaryFailure:
    """Another caller wrote the order between this caller's read and its write: try again."""
    return TemporaryFailure(
        f"paper order {client_order_id} {what}; try again",
        error="PaperOrderChanged",
        label="paper order changed meanwhile",
    )


class PaperGateway:
    """``ExchangeGateway`` that simulates an exchange account (rules in the module docstring)."""

    def __init__(
        self,
        exchange: str,
        *,
        book: PaperBook,
        prices: PriceSource,
        fee_percent: Decimal,
        balance_usd: Decimal,
        markets: Mapping[str, MarketPrecision],
        partial_fill_ratio: Decimal | None = None,
        now: Callable[[], datetime] = utcnow,
        cash_currency: str = "USDT",
    ) -> None:
        if partial_fill_ratio is not None and not ZERO < partial_fill_ratio <= 1:
            raise ValueError("partial_fill_ratio must be in (0, 1]")
        self._name = exchange
        self._book = book
        self._prices = prices
        self._fee_rate = Decimal(fee_percent) / _HUNDRED
        self._balance_usd = Decimal(balance_usd)
        self._markets = dict(markets)
        self._ratio = partial_fill_ratio
        self._now = now
        self._cash = cash_currency

    @property
    def name(self) -> str:
        """The paper account's exchange name."""
        return self._name

    # -- markets, prices, balances ---------------------------------------------------------------

    def load_markets(self) -> list[MarketPrecision]:
        """The paper market table (built-in pairs plus ``engine.paper.markets``)."""
        return list(self._markets.values())

    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Current prices from the price source; symbols without a price are left out."""
        prices = {}
        for symbol in dict.fromkeys(symbols):
            price = self._prices.get(self._name, symbol)
            if price is not None:
                prices[symbol] = price
        return prices

    def fetch_balance(self) -> dict[str, Decimal]:
        """Total holdings per currency (reservations of open orders included), zeros left out."""
        return {currency: amount for currency, amount in self._balances().items() if amount}

    def _balances(self) -> dict[str, Decimal]:
        balances = self._book.get_balances(self._name)
        if balances is None:
            balances = {self._cash: self._balance_usd}
            self._book.put_balances(self._name, dict(balances))
        return dict(balances)

    def _available(self, balances: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """Balances minus what open orders reserve (buys: their notional plus the fee)."""
        available = dict(balances)
        for key, total in self._reserved().items():
            currency, _, side = key.rpartition(":")
            held = total * (1 + self._fee_rate) if side == "buy" else total
            available[currency] = available.get(currency, ZERO) - held
        return available

    def _reserved(self) -> dict[str, Decimal]:
        reserved = self._book.get_reserved(self._name)
        if reserved is None:  # an account from before the ledger: build it from the open book, once
            reserved = {}
            for order in self._book.list_open(self._name):
                for key, amount in reservation(order).items():
                    reserved[key] = reserved.get(key, ZERO) + amount
            self._book.put_reserved(self._name, reserved)
        return reserved

    def _write(self, order: ExchangeOrder, replaces: ExchangeOrder) -> None:
        """Write a change of ``replaces`` (as read) with its ledger change; TemporaryFailure when another
        caller changed the order meanwhile."""
        if not self._book.put(order, replaces=replaces, reserved=_ledger_change(replaces, order)):
            raise _changed_meanwhile(order.client_order_id, "changed while it was being updated")

    # -- orders ----------------------------------------------------------------------------------

    def create_order(self, req: OrderRequest) -> ExchangeOrder:
        """Place ``req`` on paper (idempotent per client order id); marketable orders fill at once."""
        existing = self._book.get(self._name, req.client_order_id)
        if existing is not None:
            return existing
        market = self._market(req.symbol)
        amount = round_down(req.amount, market.step)
        if amount <= 0 or amount < market.min_qty:
            raise OrderRefused(
                f"amount {plain(req.amount)} is below the minimum {plain(market.min_qty)} of {req.symbol}",
                error="InvalidOrder",
            )
        current = self._prices.get(self._name, req.symbol)
        limit: Decimal | None = None
        if req.type is OrderType.LIMIT:
            if req.price is None or req.price <= 0:
                raise OrderRefused("a limit order needs a positive price", error="InvalidOrder")
            limit = round_nearest(req.price, market.tick)
            reference = limit
        elif current is None:
            raise BackOff(
                f"no price for {req.symbol} yet: market order not placed",
                error="NoPrice",
                label=f"no price for {req.symbol} yet",
            )
        else:
            reference = current
        notional = amount * reference
        if notional < market.min_notional:
            raise OrderRefused(
                f"order value {plain(notional)} is below the minimum {plain(market.min_notional)} "
                f"of {req.symbol}",
                error="InvalidOrder",
            )
        self._check_funds(req.symbol, req.side, amount, notional)
        now = self._now()
        order = ExchangeOrder(
            id=f"paper-{req.client_order_id}",
            client_order_id=req.client_order_id,
            exchange=self._name,
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            amount=amount,
            price=limit,
            status="open",
            timestamp=now,
        )
        if not self._book.put(order, replaces=None, reserved=_ledger_change(None, order)):
            placed = self._book.get(self._name, req.client_order_id)  # placed meanwhile by another caller
            if placed is None:
                raise _changed_meanwhile(req.client_order_id, "could not be placed")
            return placed
        if current is not None and _marketable(order, current):
            order = self._fill(order, current, whole=order.type is OrderType.MARKET)
        return order

    def _market(self, symbol: str) -> MarketPrecision:
        market = self._markets.get(symbol)
        if market is None:
            raise OrderRefused(f"{symbol} is not a paper market", error="BadSymbol")
        return market

    def _check_funds(self, symbol: str, side: OrderSide, amount: Decimal, notional: Decimal) -> None:
        base, quote = split_symbol(symbol)
        balances = self._balances()
        available = self._available(balances)
        currency, need = (quote, notional * (1 + self._fee_rate)) if side is OrderSide.BUY else (base, amount)
        have = available.get(currency, ZERO)
        if need > have:
            reserved = balances.get(currency, ZERO) - have
            raise OrderRefused(
                f"insufficient {currency}: the order needs {plain(need)}, {plain(max(have, ZERO))} is "
                f"available ({plain(reserved)} reserved by open orders)",
                error="InsufficientFunds",
            )

    def _fill(self, order: ExchangeOrder, price: Decimal, *, whole: bool) -> ExchangeOrder:
        """Fill (part of) ``order`` at ``price``; persists the order, then the balances."""
        quantity = order.remaining if whole else self._step_quantity(order)
        notional = quantity * price
        fee = notional * self._fee_rate
        base, quote = split_symbol(order.symbol)
        balances = self._balances()
        if order.side is OrderSide.BUY:
            balances[quote] = balances.get(quote, ZERO) - notional - fee
            balances[base] = balances.get(base, ZERO) + quantity
        else:
            balances[base] = balances.get(base, ZERO) - quantity
            balances[quote] = balances.get(quote, ZERO) + notional - fee
        filled = order.filled + quantity
        cost = order.cost + notional
        updated = replace(
            order,
            filled=filled,
            cost=cost,
            average=cost / filled,
            fee_cost=order.fee_cost + fee,
            fee_currency=quote,
            status="closed" if filled >= order.amount else "open",
            last_trade_at=self._now(),
        )
        self._write(updated, order)
        self._book.put_balances(self._name, balances)
        return updated

    def _step_quantity(self, order: ExchangeOrder) -> Decimal:
        remaining = order.remaining
        if self._ratio is None:
            return remaining
        market = self._markets.get(order.symbol)
        step = market.step if market else remaining
        floor = max(market.min_qty, step) if market else remaining
        quantity = round_down(remaining * self._ratio, step)
        if quantity <= 0 or remaining - quantity < floor:
            return remaining
        return quantity

    def match(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """One matching step for the open orders (of ``symbol``): returns the orders that traded."""
        return [updated for order, updated in self._matched(symbol) if updated is not order]

    def _matched(self, symbol: str | None) -> list[tuple[ExchangeOrder, ExchangeOrder]]:
        """(before, after) one matching step, for each open order (of ``symbol``)."""
        pairs = []
        prices: dict[str, Decimal | None] = {}
        for order in self._book.list_open(self._name, symbol):
            if order.symbol not in prices:
                prices[order.symbol] = self._prices.get(self._name, order.symbol)
            pairs.append((order, self._match_one(order, prices[order.symbol])))
        return pairs

    def _match_one(self, order: ExchangeOrder, current: Decimal | None) -> ExchangeOrder:
        if order.status != "open" or current is None or not _marketable(order, current):
            return order
        if order.type is OrderType.MARKET or order.price is None:
            return self._fill(order, current, whole=True)
        return self._fill(order, order.price, whole=False)

    def fetch_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """The order after one matching step; ``None`` when the book does not have it."""
        order = self._book.get(self._name, client_order_id)
        if order is None:
            return None
        return self._match_one(order, self._prices.get(self._name, order.symbol))

    def cancel_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """Cancel an open order (after one matching step); a final order is returned unchanged."""
        order = self.fetch_order(client_order_id, symbol)
        if order is None or order.status != "open":
            return order
        cancelled = replace(order, status="canceled")
        self._write(cancelled, order)
        return cancelled

    def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Open orders after one matching step (the book is read once: what matched is written back and
        the orders still open are answered as written)."""
        return [after for _, after in self._matched(symbol) if after.status == "open"]

    def fetch_closed_orders(self, symbol: str, since: datetime | None = None) -> list[ExchangeOrder]:
        """Closed and cancelled orders of ``symbol`` created at or after ``since`` (ccxt's meaning)."""
        result = []
        for order in self._book.list_all(self._name):
            if order.symbol != symbol or order.status == "open":
                continue
            if since is not None and order.timestamp < since:
                continue
            result.append(order)
        return result


def _marketable(order: ExchangeOrder, current: Decimal) -> bool:
    """True when ``order`` would trade at ``current``."""
    if order.type is OrderType.MARKET or order.price is None:
        return True
    if order.side is OrderSide.BUY:
        return current <= order.price
    return current >= order.price
