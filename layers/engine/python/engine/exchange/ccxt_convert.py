"""Conversions between ccxt's unified structures (dicts of floats/strings) and the engine's types.

Numbers go through ``str`` into ``Decimal`` (``0.1`` stays ``0.1``). No ccxt import: ccxt's precision
mode constants are repeated here (they are part of ccxt's public API and stable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.domain.models import ZERO, ExchangeOrder, MarketPrecision, OrderSide, OrderType, utcnow
from engine.exchange.gateway import OrderRequest

__all__ = [
    "DECIMAL_PLACES",
    "SIGNIFICANT_DIGITS",
    "TICK_SIZE",
    "contract_size",
    "decimal_or_none",
    "fee_from_trades",
    "has_fee",
    "in_base",
    "in_contracts",
    "market_from_ccxt",
    "order_from_ccxt",
    "time_from_ms",
]

#: ccxt's order statuses that this module rewrites.
CLOSED = "closed"
CANCELED = "canceled"

# ccxt.base.decimal_to_precision constants
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4


def decimal_or_none(value: object) -> Decimal | None:
    """``Decimal(str(value))``; ``None`` for missing, empty or non-finite values."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def time_from_ms(value: object) -> datetime | None:
    """A ccxt millisecond timestamp as an aware UTC datetime."""
    number = decimal_or_none(value)
    if number is None:
        return None
    return datetime.fromtimestamp(float(number) / 1000, tz=UTC)


def _order_type(raw_type: object, price: Decimal | None) -> OrderType:
    text = str(raw_type or "").lower()
    if text == "market":
        return OrderType.MARKET
    if text == "limit" or price is not None:
        return OrderType.LIMIT
    return OrderType.MARKET


def _fee(raw: Mapping[str, Any]) -> tuple[Decimal, str | None]:
    fee = raw.get("fee")
    if isinstance(fee, Mapping) and decimal_or_none(fee.get("cost")) is not None:
        return decimal_or_none(fee.get("cost")) or ZERO, fee.get("currency")
    total, currency = ZERO, None
    for item in raw.get("fees") or []:
        cost = decimal_or_none(item.get("cost"))
        if cost is None:
            continue
        if currency is not None and item.get("currency") not in (None, currency):
            continue  # fees in a second currency are rare (BNB discounts) and not summed across currencies
        total += cost
        currency = currency or item.get("currency")
    return total, currency


def order_from_ccxt(
    raw: Mapping[str, Any], exchange: str, *, request: OrderRequest | None = None
) -> ExchangeOrder:
    """Build an ``ExchangeOrder`` from ccxt's order structure.

    Some exchanges answer a create with ids only (okx): ``request`` then supplies the missing symbol,
    side, type, amount and price, and a missing status reads as ``open``.

    An order that is no longer open and filled less than its amount is ``canceled`` (with its partial
    fill), whatever the exchange calls it: ccxt maps bybit's ``PartiallyFilledCanceled`` to ``closed``,
    which the engine would read as filled.
    """
    side_text = raw.get("side") or (request.side if request else None)
    symbol = raw.get("symbol") or (request.symbol if request else None)
    amount = decimal_or_none(raw.get("amount"))
    if amount is None and request is not None:
        amount = request.amount
    if not side_text or not symbol or amount is None:
        raise ValueError(f"incomplete order structure from {exchange}: {dict(raw)!r}")
    price = decimal_or_none(raw.get("price"))
    if price is None and request is not None:
        price = request.price
    order_type = _order_type(raw.get("type") or (request.type if request else None), price)
    if order_type is OrderType.MARKET and price == ZERO:
        price = None
    status = raw.get("status") or ("open" if request is not None else None)
    if status is None:
        raise ValueError(f"order structure without status from {exchange}: {dict(raw)!r}")
    filled = decimal_or_none(raw.get("filled"))
    if status == CLOSED and filled is not None and filled < amount:
        status = CANCELED  # no longer open and not fully filled (bybit PartiallyFilledCanceled)
    fee_cost, fee_currency = _fee(raw)
    average = decimal_or_none(raw.get("average"))
    return ExchangeOrder(
        id=str(raw.get("id") or ""),
        client_order_id=str(raw.get("clientOrderId") or (request.client_order_id if request else "")),
        exchange=exchange,
        symbol=str(symbol),
        side=OrderSide(str(side_text).lower()),
        type=order_type,
        amount=amount,
        price=price,
        status=str(status),
        filled=filled or ZERO,
        average=average if average else None,
        cost=decimal_or_none(raw.get("cost")) or ZERO,
        fee_cost=fee_cost,
        fee_currency=fee_currency,
        timestamp=time_from_ms(raw.get("timestamp")) or utcnow(),
        last_trade_at=time_from_ms(raw.get("lastTradeTimestamp")),
    )


def _increment(value: object, precision_mode: int) -> Decimal | None:
    number = decimal_or_none(value)
    if number is None:
        return None
    if precision_mode == TICK_SIZE:
        return number if number > 0 else None
    if precision_mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(number))
    return None  # SIGNIFICANT_DIGITS has no fixed increment


def contract_size(market: Mapping[str, Any] | None) -> Decimal:
    """Base coin per contract of a ccxt market: ``contractSize`` for a contract market, else 1."""
    if not market or not market.get("contract"):
        return Decimal(1)
    size = decimal_or_none(market.get("contractSize"))
    return size if size is not None and size > 0 else Decimal(1)


def in_contracts(quantity: Decimal, size: Decimal) -> Decimal:
    """A base-coin quantity as ccxt's amount for a market of ``size`` base coin per contract."""
    return quantity if size == 1 else quantity / size


def in_base(order: ExchangeOrder, size: Decimal) -> ExchangeOrder:
    """An order read from ccxt (amount and filled in contracts) with its quantities in the base coin.

    Prices and ``cost`` are already per base coin and in quote (ccxt multiplies by ``contractSize``);
    the fee is in the currency it was charged in.
    """
    if size == 1:
        return order
    return replace(order, amount=order.amount * size, filled=order.filled * size)


def market_from_ccxt(market: Mapping[str, Any], precision_mode: int) -> MarketPrecision | None:
    """Trading rules of one ccxt market; ``None`` when its precision cannot be expressed as increments.

    ccxt 4.5 uses TICK_SIZE for binance, bybit and okx: ``precision.price`` is the tick and
    ``precision.amount`` the quantity step. Minimums come from ``limits.amount.min`` (defaults to one
    step) and ``limits.cost.min`` (defaults to 0). A contract market's step and minimum quantity are in
    contracts in ccxt; they are returned in the base coin (times ``contractSize``, carried as
    ``contract_size`` for the gateway's conversions).
    """
    precision = market.get("precision") or {}
    tick = _increment(precision.get("price"), precision_mode)
    step = _increment(precision.get("amount"), precision_mode)
    if tick is None or step is None:
        return None
    limits = market.get("limits") or {}
    min_qty = decimal_or_none((limits.get("amount") or {}).get("min")) or step
    min_notional = decimal_or_none((limits.get("cost") or {}).get("min")) or ZERO
    size = contract_size(market)
    return MarketPrecision(
        str(market["symbol"]), tick, step * size, min_qty * size, min_notional, contract_size=size
    )


def has_fee(raw: Mapping[str, Any]) -> bool:
    """True when a ccxt order structure states its fee (binance's order endpoints never do)."""
    fee = raw.get("fee")
    if isinstance(fee, Mapping) and decimal_or_none(fee.get("cost")) is not None:
        return True
    return any(
        isinstance(item, Mapping) and decimal_or_none(item.get("cost")) is not None
        for item in raw.get("fees") or []
    )


def fee_from_trades(
    trades: Iterable[Mapping[str, Any]], order_id: str, base_currency: str
) -> tuple[Decimal, Decimal, str | None]:
    """Traded quantity and fee of order ``order_id`` from ccxt trade structures.

    Fees are summed per currency. An order pays one currency in practice; when it paid two (binance
    switching from BNB to the base coin mid-order), the base-coin total is the one reported, because
    it is the one that changes the held quantity. Returns ``(traded, fee_cost, fee_currency)``.
    """
    traded = ZERO
    fees: dict[str, Decimal] = {}
    for trade in trades:
        if str(trade.get("order") or order_id) != order_id:
            continue
        traded += decimal_or_none(trade.get("amount")) or ZERO
        items = trade.get("fees") or ([trade["fee"]] if isinstance(trade.get("fee"), Mapping) else [])
        for item in items:
            cost, currency = decimal_or_none(item.get("cost")), item.get("currency")
            if cost is not None and currency:
                fees[str(currency)] = fees.get(str(currency), ZERO) + cost
    if not fees:
        return traded, ZERO, None
    currency = base_currency if base_currency in fees else next(iter(fees))
    return traded, fees[currency], currency
