"""``CcxtGateway``: a real exchange account (binance, bybit, okx) through ccxt's unified API.

ccxt is imported only when the first call needs the client (``import ccxt`` costs ~0.4 s and ~75 MB).

Retries: only ``TemporaryFailure`` (network class) is retried, ``retries`` tries in all with jittered
exponential backoff (``backoff_seconds * 2**(n-1) * uniform(0.5, 1.5)``); reads and cancels only —
cancelling twice is harmless (the second answers "not found" and the order is then fetched).

Creates are sent at most once per ``create_order`` call. When a create fails in a way that does not
prove the exchange refused it (timeout, network error, unparsable answer, "exchange not available", an
error ccxt cannot classify such as bybit's "System error" or okx's "Order timed out"),
the order is looked up by client order id: found -> returned; not found or lookup failing ->
``OutcomeUnknown``. The gateway never resends: a resend is only safe once the order is *provably
absent* (two ``fetch_order`` lookups spaced apart, DESIGN §5), which is the caller's job, and it goes
out with the same client order id. Rate limits, DDoS protection and maintenance answers mean the
request was turned away, so they surface as ``BackOff``. A refusal for a duplicate client order id
means our order already exists: it is looked up and returned.

Quantities: the engine speaks the base coin; ccxt's amounts for a contract market (swap) are contracts.
A swap account's gateway divides by the market's ``contractSize`` when it sends an amount and multiplies
``amount``/``filled`` back when it reads an order (DESIGN §3.5). A spot account never converts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from engine.domain.models import ExchangeOrder, MarketPrecision, OrderType
from engine.exchange.ccxt_convert import (
    contract_size,
    decimal_or_none,
    fee_from_trades,
    has_fee,
    in_base,
    in_contracts,
    market_from_ccxt,
    order_from_ccxt,
)
from engine.exchange.errors import (
    BackOff,
    ExchangeFailure,
    OrderMissing,
    OrderRefused,
    OutcomeUnknown,
    TemporaryFailure,
    is_unclassified,
    map_ccxt_error,
)
from engine.exchange.gateway import OrderRequest

__all__ = ["CcxtGateway"]

T = TypeVar("T")

#: BackOff conditions in which the exchange turned the request away (nothing was placed).
_TURNED_AWAY = frozenset({"RateLimitExceeded", "DDoSProtection", "OnMaintenance"})


@dataclass(frozen=True)
class _Dialect:
    """How one exchange addresses an order by client id through ccxt (checked in ccxt 4.5.90)."""

    #: params key for cancel_order / fetch_order by client id
    client_id_param: str = "clientOrderId"
    #: fetch_order(params={client_id_param: cid}) finds open and closed orders
    fetch_by_client_id: bool = True
    #: params key that filters order listings by client id (None: scan the listing)
    list_filter_param: str | None = None
    #: fetch_my_trades(params={order_trades_param: order id}) lists one order's trades (any market
    #: type); None: fetch_order_trades where ccxt has it
    order_trades_param: str | None = None


_DIALECTS: dict[str, _Dialect] = {
    # binance: fetchOrder/cancelOrder send origClientOrderId when params.clientOrderId is given; its
    # order endpoints carry no commission, only myTrades / userTrades (filtered by orderId) do
    "binance": _Dialect(order_trades_param="orderId"),
    # okx: fetchOrder/cancelOrder send clOrdId when params.clientOrderId is given
    "okx": _Dialect(),
    # bybit: fetchOrder needs an exchange id (and only sees the last 500 orders); cancel takes
    # params.orderLinkId; order listings filter by orderLinkId
    "bybit": _Dialect(
        client_id_param="orderLinkId", fetch_by_client_id=False, list_filter_param="orderLinkId"
    ),
}
_GENERIC = _Dialect(fetch_by_client_id=False)


class CcxtGateway:
    """``ExchangeGateway`` over one ccxt exchange account (see the module docstring for retries)."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        sandbox: bool = False,
        market_type: str = "spot",
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        timeout_ms: int | None = None,
    ) -> None:
        if retries < 1:
            raise ValueError("retries must be at least 1")
        self._name = exchange_id
        self._credentials = {"apiKey": api_key, "secret": secret, "password": password}
        self._sandbox = sandbox
        self._market_type = market_type
        self._client = client
        self._sleep = sleep
        self._retries = retries
        self._backoff_seconds = backoff_seconds
        #: ccxt's per-request timeout (ms); None keeps ccxt's default (10 000)
        self._timeout_ms = timeout_ms
        self._dialect = _DIALECTS.get(exchange_id, _GENERIC)
        #: exchange order id -> (filled, fee cost, fee currency) last read from the order's trades
        self._trade_fees: dict[str, tuple[Decimal, Decimal, str | None]] = {}
        #: symbol -> base coin per contract (swap accounts; read from ccxt's markets)
        self._contract_sizes: dict[str, Decimal] = {}

    @property
    def name(self) -> str:
        """The ccxt exchange id."""
        return self._name

    @property
    def client(self) -> Any:
        """The ccxt exchange object, built (and ccxt imported) on first use."""
        if self._client is None:
            self._client = self._build_client()
        return self._client

    def _build_client(self) -> Any:
        import ccxt

        exchange_class = getattr(ccxt, self._name, None)
        if exchange_class is None or self._name not in ccxt.exchanges:
            raise OrderRefused(f"unknown exchange {self._name!r}", error="NotSupported")
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "options": {"defaultType": self._market_type, "warnOnFetchOpenOrdersWithoutSymbol": False},
        }
        config.update({key: value for key, value in self._credentials.items() if value})
        if self._timeout_ms is not None:
            config["timeout"] = self._timeout_ms
        client = exchange_class(config)
        if self._sandbox:
            client.set_sandbox_mode(True)
        return client

    # -- retry machinery -------------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        return self._backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn``, retrying ``TemporaryFailure``; raise every failure mapped to our hierarchy."""
        for attempt in range(1, self._retries + 1):
            try:
                return fn(*args)
            except Exception as exc:
                failure = _classified(exc)
                if not isinstance(failure, TemporaryFailure) or attempt == self._retries:
                    raise failure from exc
                self._sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- markets, prices, balances ---------------------------------------------------------------

    def load_markets(self) -> list[MarketPrecision]:
        """Active markets of the account's market type (spot or swap) with their precision.

        Always reloads: ccxt caches markets per client, and a warm gateway must see fresh precision.
        """
        markets: Mapping[str, Any] = self._call(self.client.load_markets, True)
        mode = int(getattr(self.client, "precisionMode", 4))
        result = []
        for market in markets.values():
            if market.get("type") != self._market_type or market.get("active") is False:
                continue
            precision = market_from_ccxt(market, mode)
            if precision is not None:
                self._contract_sizes[precision.symbol] = precision.contract_size
                result.append(precision)
        return result

    def _contract_size(self, symbol: str) -> Decimal:
        """Base coin per contract of ``symbol``: 1 on a spot account (no call), else ccxt's
        ``contractSize`` (markets loaded once through ccxt's cache when needed)."""
        if self._market_type == "spot":
            return Decimal(1)
        known = self._contract_sizes.get(symbol)
        if known is None:
            markets = getattr(self.client, "markets", None) or self._call(self.client.load_markets)
            known = contract_size((markets or {}).get(symbol))
            self._contract_sizes[symbol] = known
        return known

    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Last (or close) price of each symbol from the public tickers."""
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return {}
        if self.client.has.get("fetchTickers"):
            tickers: Mapping[str, Any] = self._call(self.client.fetch_tickers, wanted)
        else:
            tickers = {symbol: self._call(self.client.fetch_ticker, symbol) for symbol in wanted}
        prices = {}
        for symbol in wanted:
            ticker = tickers.get(symbol) or {}
            price = decimal_or_none(ticker.get("last")) or decimal_or_none(ticker.get("close"))
            if price is not None and price > 0:
                prices[symbol] = price
        return prices

    def fetch_balance(self) -> dict[str, Decimal]:
        """Total holdings per currency (ccxt's ``total``), zero balances left out."""
        balance: Mapping[str, Any] = self._call(self.client.fetch_balance)
        result = {}
        for currency, amount in (balance.get("total") or {}).items():
            value = decimal_or_none(amount)
            if value:
                result[currency] = value
        return result

    # -- orders ----------------------------------------------------------------------------------

    def create_order(self, req: OrderRequest) -> ExchangeOrder:
        """Send ``req`` once; see the module docstring for what happens when the answer is lost."""
        price = float(req.price) if req.type is OrderType.LIMIT and req.price is not None else None
        params = {"clientOrderId": req.client_order_id}
        sent = replace(req, amount=in_contracts(req.amount, self._contract_size(req.symbol)))
        try:
            raw = self.client.create_order(
                req.symbol, req.type.value, req.side.value, float(sent.amount), price, params
            )
        except Exception as exc:
            failure = map_ccxt_error(exc)
            if isinstance(failure, OrderRefused) and not is_unclassified(failure):
                if "duplicat" in failure.reason.lower() or failure.error == "DuplicateOrderId":
                    existing = self._lookup_quietly(req)
                    if existing is not None:
                        return existing
                raise failure from exc
            if isinstance(failure, BackOff) and failure.error in _TURNED_AWAY:
                raise failure from exc
            return self._reconcile_create(req, failure)
        try:
            return self._order(raw, request=sent, client_order_id=req.client_order_id, strict=False)
        except ValueError as exc:  # accepted, but the answer is unusable: read it back
            return self._reconcile_create(req, ExchangeFailure(str(exc), error="BadResponse"))

    def _lookup_quietly(self, req: OrderRequest) -> ExchangeOrder | None:
        try:
            return self.fetch_order(req.client_order_id, req.symbol)
        except ExchangeFailure:
            return None

    def _reconcile_create(self, req: OrderRequest, failure: ExchangeFailure) -> ExchangeOrder:
        """After an ambiguous create failure: return the order if the exchange has it, else raise."""
        self._sleep(self._delay(1))
        try:
            found = self.fetch_order(req.client_order_id, req.symbol)
        except ExchangeFailure as lookup:
            raise OutcomeUnknown(
                f"create of {req.client_order_id} failed ({failure.reason}) and the lookup failed too "
                f"({lookup.reason}); reconcile by client order id before resending",
                error=failure.error,
            ) from lookup
        if found is not None:
            return found
        raise OutcomeUnknown(
            f"create of {req.client_order_id} failed ({failure.reason}) and the order is not on the "
            "exchange yet; prove it absent before resending",
            error=failure.error,
        )

    def fetch_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """Find an order by client id: ``fetch_order`` where the exchange supports it, then the open
        orders, then (when ``fetch_order`` is not usable) the closed orders. ``None`` = not found."""
        dialect = self._dialect
        if dialect.fetch_by_client_id:
            try:
                raw = self._call(
                    self.client.fetch_order, None, symbol, {dialect.client_id_param: client_order_id}
                )
                return self._order(raw, client_order_id=client_order_id)
            except OrderMissing:
                pass
        params = {dialect.list_filter_param: client_order_id} if dialect.list_filter_param else {}
        listings: list[Callable[..., Any]] = [self.client.fetch_open_orders]
        if not dialect.fetch_by_client_id:
            listings.append(self._closed_listing())
        for listing in listings:
            for raw in self._call(listing, symbol, None, None, params):
                if raw.get("clientOrderId") == client_order_id:
                    return self._order(raw, client_order_id=client_order_id)
        return None

    def _closed_listing(self) -> Callable[..., Any]:
        if self.client.has.get("fetchCanceledAndClosedOrders"):
            return self.client.fetch_canceled_and_closed_orders
        return self.client.fetch_closed_orders

    def cancel_order(self, client_order_id: str, symbol: str) -> ExchangeOrder | None:
        """Cancel by client id; an order the exchange no longer has open is fetched and returned."""
        try:
            raw = self._call(
                self.client.cancel_order, None, symbol, {self._dialect.client_id_param: client_order_id}
            )
        except OrderMissing:
            return self.fetch_order(client_order_id, symbol)
        try:
            # binance's cancel answer carries the cancel request's own id in clientOrderId
            return self._order(raw, client_order_id=client_order_id, strict=False)
        except ValueError:  # some exchanges answer a cancel with ids only
            return self.fetch_order(client_order_id, symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Open orders of ``symbol`` (or of every symbol)."""
        raws = self._call(self.client.fetch_open_orders, symbol)
        return [self._order(raw) for raw in raws]

    def fetch_closed_orders(self, symbol: str, since: datetime | None = None) -> list[ExchangeOrder]:
        """Filled, cancelled, expired and rejected orders of ``symbol`` since ``since``."""
        since_ms = int(since.timestamp() * 1000) if since is not None else None
        raws = self._call(self._closed_listing(), symbol, since_ms)
        return [self._order(raw) for raw in raws if raw.get("status") != "open"]

    # -- conversion and fees ---------------------------------------------------------------------

    def _order(
        self,
        raw: Mapping[str, Any],
        *,
        request: OrderRequest | None = None,
        client_order_id: str | None = None,
        strict: bool = True,
    ) -> ExchangeOrder:
        """``raw`` as an ``ExchangeOrder`` with our client id (when we addressed the order by it) and
        its fee, read from its trades when the order itself states none (binance); quantities in the
        base coin (``request``, if given, is in ccxt's units: contracts on a swap market).

        ``strict``: a failed trades lookup raises (reads); on create and cancel it leaves the fee as the
        order states it, so the answer to what was done is never lost (the next read fetches it).
        """
        order = order_from_ccxt(raw, self._name, request=request)
        if client_order_id is not None and order.client_order_id != client_order_id:
            order = replace(order, client_order_id=client_order_id)
        if order.filled > 0 and order.id and not has_fee(raw):
            order = self._with_trade_fees(order, strict=strict)
        return in_base(order, self._contract_size(order.symbol))

    def _with_trade_fees(self, order: ExchangeOrder, *, strict: bool) -> ExchangeOrder:
        """The order with the fees of its trades; the trades are fetched only when its fill changed."""
        known = self._trade_fees.get(order.id)
        if known is not None and known[0] == order.filled:
            return replace(order, fee_cost=known[1], fee_currency=known[2])
        try:
            trades = self._order_trades(order)
        except ExchangeFailure:
            if strict:
                raise
            return order
        traded, cost, currency = fee_from_trades(trades, order.id, order.symbol.split("/", 1)[0])
        if traded >= order.filled:  # every fill is in the trades: safe to reuse while it stays put
            self._trade_fees[order.id] = (order.filled, cost, currency)
        return replace(order, fee_cost=cost, fee_currency=currency)

    def _order_trades(self, order: ExchangeOrder) -> list[Mapping[str, Any]]:
        param = self._dialect.order_trades_param
        if param is not None:
            return self._call(self.client.fetch_my_trades, order.symbol, None, None, {param: order.id})
        if self.client.has.get("fetchOrderTrades"):
            return self._call(self.client.fetch_order_trades, order.id, order.symbol)
        return []


def _classified(exc: Exception) -> ExchangeFailure:
    """Map ``exc``; exceptions with no known exchange meaning (programming errors) are re-raised."""
    failure = map_ccxt_error(exc)
    if type(failure) is ExchangeFailure:
        raise exc
    return failure
