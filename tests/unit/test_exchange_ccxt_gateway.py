"""CcxtGateway against a fake ccxt client: retries, create reconciliation, conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import ccxt
import pytest

from engine.domain.models import MarketPrecision, OrderSide, OrderType
from engine.exchange.ccxt_gateway import CcxtGateway
from engine.exchange.errors import BackOff, OrderMissing, OrderRefused, OutcomeUnknown, TemporaryFailure
from engine.exchange.gateway import ExchangeGateway, OrderRequest

CID = "0123456789abcdef0123456789abcdef"
SYMBOL = "BTC/USDT"


class FakeExchange:
    """A scriptable stand-in for a ccxt exchange object.

    ``script[method]`` holds what the next calls do: an exception instance is raised, a callable is
    called with the arguments, anything else is returned. Without a script entry the fake behaves
    like an exchange that keeps every accepted order in ``orders`` (client id -> ccxt order dict).
    """

    def __init__(self, has=None, precision_mode=4):
        self.has = {"fetchTickers": True, "fetchCanceledAndClosedOrders": False, **(has or {})}
        self.precisionMode = precision_mode
        self.calls: list[tuple[str, tuple]] = []
        self.script: dict[str, list] = {}
        self.orders: dict[str, dict] = {}
        self.markets: dict[str, dict] = {}
        self.tickers: dict[str, dict] = {}
        self.balance: dict = {"total": {}}

    def _run(self, method, args, default):
        self.calls.append((method, args))
        queue = self.script.get(method) or []
        if queue:
            step = queue.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step(*args) if callable(step) else step
        return default(*args)

    def count(self, method):
        return sum(1 for name, _ in self.calls if name == method)

    # default behaviours
    def accept(self, symbol, type_, side, amount, price, params):
        cid = params["clientOrderId"]
        order = {
            "id": f"ex-{len(self.orders) + 1}",
            "clientOrderId": cid,
            "symbol": symbol,
            "type": type_,
            "side": side,
            "amount": amount,
            "price": price,
            "status": "open",
            "filled": 0.0,
            "average": None,
            "cost": 0.0,
            "fee": None,
            "timestamp": 1_700_000_000_000,
            "lastTradeTimestamp": None,
        }
        self.orders[cid] = order
        return dict(order)

    def _by_client_id(self, id_, symbol, params):
        cid = next(iter(params.values()))
        if cid not in self.orders:
            raise ccxt.OrderNotFound(f"Order {cid} does not exist")
        return dict(self.orders[cid])

    def _cancel(self, id_, symbol, params):
        order = self._by_client_id(id_, symbol, params)
        if order["status"] != "open":
            raise ccxt.OrderNotFound("Unknown order sent.")
        self.orders[order["clientOrderId"]]["status"] = "canceled"
        return dict(self.orders[order["clientOrderId"]])

    def _listing(self, open_):
        def listing(symbol=None, since=None, limit=None, params=None):
            return [
                dict(o)
                for o in self.orders.values()
                if (o["status"] == "open") == open_ and (symbol is None or o["symbol"] == symbol)
            ]

        return listing

    # ccxt methods
    def create_order(self, *args):
        return self._run("create_order", args, self.accept)

    def fetch_order(self, *args):
        return self._run("fetch_order", args, self._by_client_id)

    def cancel_order(self, *args):
        return self._run("cancel_order", args, self._cancel)

    def fetch_open_orders(self, *args):
        return self._run("fetch_open_orders", args, self._listing(True))

    def fetch_closed_orders(self, *args):
        return self._run("fetch_closed_orders", args, self._listing(False))

    def fetch_canceled_and_closed_orders(self, *args):
        return self._run("fetch_canceled_and_closed_orders", args, self._listing(False))

    def fetch_my_trades(self, *args):
        return self._run("fetch_my_trades", args, lambda *a: [])

    def load_markets(self, *args):
        return self._run("load_markets", args, lambda *a: self.markets)

    def fetch_tickers(self, *args):
        return self._run("fetch_tickers", args, lambda symbols: {s: self.tickers[s] for s in symbols})

    def fetch_ticker(self, *args):
        return self._run("fetch_ticker", args, lambda symbol: self.tickers[symbol])

    def fetch_balance(self, *args):
        return self._run("fetch_balance", args, lambda *a: self.balance)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def fake():
    return FakeExchange()


@pytest.fixture
def sleeps():
    return Sleeps()


def gateway(fake, sleeps, exchange_id="binance", **kwargs):
    return CcxtGateway(exchange_id, client=fake, sleep=sleeps, **kwargs)


def limit_buy(amount="0.001", price="60000.5"):
    return OrderRequest(CID, SYMBOL, OrderSide.BUY, OrderType.LIMIT, Decimal(amount), Decimal(price))


def test_ccxt_gateway_satisfies_the_gateway_protocol(fake, sleeps):
    assert isinstance(gateway(fake, sleeps), ExchangeGateway)


# -- reads: which failures are retried ----------------------------------------------------------

READ_MATRIX = [
    # ccxt error, raised as, calls made (3 = retried), sleeps between them
    (ccxt.RequestTimeout, TemporaryFailure, 3, 2),
    (ccxt.NetworkError, TemporaryFailure, 3, 2),
    (ccxt.BadResponse, TemporaryFailure, 3, 2),
    (ccxt.RateLimitExceeded, BackOff, 1, 0),
    (ccxt.DDoSProtection, BackOff, 1, 0),
    (ccxt.ExchangeNotAvailable, BackOff, 1, 0),
    (ccxt.OnMaintenance, BackOff, 1, 0),
    (ccxt.AuthenticationError, OrderRefused, 1, 0),
    (ccxt.PermissionDenied, OrderRefused, 1, 0),
    (ccxt.BadSymbol, OrderRefused, 1, 0),
    (ccxt.ArgumentsRequired, OrderRefused, 1, 0),
    (ccxt.ExchangeError, OrderRefused, 1, 0),
]


@pytest.mark.parametrize(("ccxt_class", "raised", "calls", "naps"), READ_MATRIX)
def test_read_retries_only_network_class_failures(fake, sleeps, ccxt_class, raised, calls, naps):
    # Given an exchange whose open-orders call keeps failing with one ccxt error
    fake.script["fetch_open_orders"] = [ccxt_class("failure")] * 5

    # When the gateway reads open orders
    with pytest.raises(raised):
        gateway(fake, sleeps).fetch_open_orders(SYMBOL)

    # Then only network-class failures were retried (3 tries in all), sleeping between tries
    assert fake.count("fetch_open_orders") == calls
    assert len(sleeps) == naps


def test_retry_succeeds_after_two_timeouts_with_growing_jittered_sleeps(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    fake.script["fetch_open_orders"] = [ccxt.RequestTimeout("t1"), ccxt.RequestTimeout("t2")]

    orders = gateway(fake, sleeps, backoff_seconds=1.0).fetch_open_orders(SYMBOL)

    assert [o.client_order_id for o in orders] == [CID]
    assert fake.count("fetch_open_orders") == 3
    # attempt n sleeps backoff * 2**(n-1) * uniform(0.5, 1.5)
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.5
    assert 1.0 <= sleeps[1] <= 3.0


def test_retries_are_configurable(fake, sleeps):
    fake.script["fetch_balance"] = [ccxt.NetworkError("down")] * 10
    with pytest.raises(TemporaryFailure):
        gateway(fake, sleeps, retries=5).fetch_balance()
    assert fake.count("fetch_balance") == 5


def test_programming_errors_are_not_retried_or_disguised(fake, sleeps):
    fake.script["fetch_balance"] = [KeyError("total")]
    with pytest.raises(KeyError):
        gateway(fake, sleeps).fetch_balance()
    assert fake.count("fetch_balance") == 1


# -- create: never twice ------------------------------------------------------------------------


def test_create_sends_the_client_order_id_and_converts_the_answer(fake, sleeps):
    order = gateway(fake, sleeps).create_order(limit_buy())

    ((method, args),) = fake.calls
    assert method == "create_order"
    assert args == (SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    assert order.client_order_id == CID
    assert order.exchange == "binance"
    assert order.amount == Decimal("0.001")  # through str(): not 0.001000000000000000020816...
    assert order.price == Decimal("60000.5")
    assert order.status == "open"
    assert order.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_market_create_sends_no_price(fake, sleeps):
    req = OrderRequest(CID, SYMBOL, OrderSide.SELL, OrderType.MARKET, Decimal("0.5"))
    order = gateway(fake, sleeps).create_order(req)
    assert fake.calls[0][1][4] is None
    assert order.type is OrderType.MARKET
    assert order.price is None


def test_accepted_create_that_times_out_is_found_and_never_sent_twice(fake, sleeps):
    # Given an exchange that accepts the order but the answer is lost in a timeout
    def accept_then_time_out(*args):
        fake.accept(*args)
        raise ccxt.RequestTimeout("read timed out")

    fake.script["create_order"] = [accept_then_time_out]

    # When the engine creates the order
    order = gateway(fake, sleeps).create_order(limit_buy())

    # Then the gateway looked it up by client id and returned it; exactly one create went out
    assert order.client_order_id == CID
    assert order.id == "ex-1"
    assert fake.count("create_order") == 1
    assert fake.calls[1] == ("fetch_order", (None, SYMBOL, {"clientOrderId": CID}))
    assert len(fake.orders) == 1


def test_accepted_create_missing_from_fetch_order_is_found_among_open_orders(fake, sleeps):
    def accept_then_drop(*args):
        fake.accept(*args)
        raise ccxt.NetworkError("connection reset")

    fake.script["create_order"] = [accept_then_drop]
    fake.script["fetch_order"] = [ccxt.OrderNotFound("not yet indexed")]

    order = gateway(fake, sleeps).create_order(limit_buy())

    assert order.client_order_id == CID
    assert fake.count("create_order") == 1
    assert fake.count("fetch_open_orders") == 1


CREATE_MATRIX = [
    # ccxt error from create (exchange kept nothing), raised as, whether the order was looked up
    (ccxt.RequestTimeout, OutcomeUnknown, True),
    (ccxt.NetworkError, OutcomeUnknown, True),
    (ccxt.ExchangeNotAvailable, OutcomeUnknown, True),  # binance 503: "execution status unknown"
    (ccxt.BadResponse, OutcomeUnknown, True),
    (ccxt.RateLimitExceeded, BackOff, False),
    (ccxt.DDoSProtection, BackOff, False),
    (ccxt.OnMaintenance, BackOff, False),
    (ccxt.InsufficientFunds, OrderRefused, False),
    (ccxt.InvalidOrder, OrderRefused, False),
    (ccxt.BadSymbol, OrderRefused, False),
    (ccxt.AuthenticationError, OrderRefused, False),
    (ccxt.AccountSuspended, OrderRefused, False),
]


@pytest.mark.parametrize(("ccxt_class", "raised", "looked_up"), CREATE_MATRIX)
def test_create_failure_matrix_sends_exactly_one_create(fake, sleeps, ccxt_class, raised, looked_up):
    # Given a create that fails and an exchange that did not keep the order
    fake.script["create_order"] = [ccxt_class("failure")]

    # When the engine creates the order
    with pytest.raises(raised) as caught:
        gateway(fake, sleeps).create_order(limit_buy())

    # Then one create went out, ambiguous failures were looked up, and nothing was resent
    assert fake.count("create_order") == 1
    assert (fake.count("fetch_order") > 0) is looked_up
    assert caught.value.error == ccxt_class.__name__
    assert fake.orders == {}


def test_create_whose_lookup_keeps_failing_is_outcome_unknown_without_a_resend(fake, sleeps):
    fake.script["create_order"] = [ccxt.RequestTimeout("timed out")]
    fake.script["fetch_order"] = [ccxt.NetworkError("down")] * 3

    with pytest.raises(OutcomeUnknown) as caught:
        gateway(fake, sleeps).create_order(limit_buy())

    assert fake.count("create_order") == 1
    assert fake.count("fetch_order") == 3
    assert "lookup failed" in caught.value.reason


def test_caller_resend_after_proven_absence_reaches_the_exchange_once(fake, sleeps):
    # Given a create that timed out before reaching the exchange
    gw = gateway(fake, sleeps)
    fake.script["create_order"] = [ccxt.RequestTimeout("timed out")]
    with pytest.raises(OutcomeUnknown):
        gw.create_order(limit_buy())

    # When the caller proves absence (two lookups spaced apart) and then resends with the same id
    assert gw.fetch_order(CID, SYMBOL) is None
    assert gw.fetch_order(CID, SYMBOL) is None
    order = gw.create_order(limit_buy())

    # Then the exchange holds exactly one order under that client id
    assert order.client_order_id == CID
    assert list(fake.orders) == [CID]
    assert fake.count("create_order") == 2


def test_duplicate_client_id_refusal_returns_the_existing_order(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    fake.script["create_order"] = [ccxt.InvalidOrder('okx {"sCode":"51016","sMsg":"Duplicated clOrdId"}')]

    order = gateway(fake, sleeps, exchange_id="okx").create_order(limit_buy())

    assert order.id == "ex-1"
    assert len(fake.orders) == 1


def test_create_answer_with_ids_only_is_completed_from_the_request(fake, sleeps):
    # okx answers a create with ids only
    fake.script["create_order"] = [{"id": "okx-9", "clientOrderId": CID, "status": None, "info": {}}]

    order = gateway(fake, sleeps, exchange_id="okx").create_order(limit_buy())

    assert (order.id, order.symbol, order.side, order.type) == (
        "okx-9",
        SYMBOL,
        OrderSide.BUY,
        OrderType.LIMIT,
    )
    assert (order.amount, order.price, order.status) == (Decimal("0.001"), Decimal("60000.5"), "open")


# -- lookups and cancels ------------------------------------------------------------------------


def test_fetch_order_of_an_unknown_client_id_is_none(fake, sleeps):
    assert gateway(fake, sleeps).fetch_order(CID, SYMBOL) is None


def test_fetch_order_converts_fills_and_fees(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.002, 60000.0, {"clientOrderId": CID})
    fake.orders[CID].update(
        status="closed",
        filled=0.002,
        average=59999.99,
        cost=119.99998,
        fee={"cost": 0.11999998, "currency": "USDT"},
        lastTradeTimestamp=1_700_000_060_000,
    )

    order = gateway(fake, sleeps).fetch_order(CID, SYMBOL)

    assert order is not None
    assert (order.status, order.filled, order.average) == ("closed", Decimal("0.002"), Decimal("59999.99"))
    assert (order.cost, order.fee_cost, order.fee_currency) == (
        Decimal("119.99998"),
        Decimal("0.11999998"),
        "USDT",
    )
    assert order.last_trade_at == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)


def test_bybit_looks_orders_up_by_order_link_id_in_open_then_closed_listings(sleeps):
    fake = FakeExchange(has={"fetchCanceledAndClosedOrders": True})
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    fake.orders[CID].update(status="closed", filled=0.001)  # closed = fully filled

    order = gateway(fake, sleeps, exchange_id="bybit").fetch_order(CID, SYMBOL)

    assert order is not None and order.status == "closed"
    assert fake.count("fetch_order") == 0  # bybit's fetchOrder needs the exchange id
    assert fake.calls == [
        ("fetch_open_orders", (SYMBOL, None, None, {"orderLinkId": CID})),
        ("fetch_canceled_and_closed_orders", (SYMBOL, None, None, {"orderLinkId": CID})),
    ]


def test_bybit_cancel_addresses_the_order_by_order_link_id(sleeps):
    fake = FakeExchange()
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})

    order = gateway(fake, sleeps, exchange_id="bybit").cancel_order(CID, SYMBOL)

    assert order is not None and order.status == "canceled"
    assert fake.calls[0] == ("cancel_order", (None, SYMBOL, {"orderLinkId": CID}))


def test_cancel_of_an_open_order(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    order = gateway(fake, sleeps).cancel_order(CID, SYMBOL)
    assert order is not None and order.status == "canceled"
    assert fake.calls[0] == ("cancel_order", (None, SYMBOL, {"clientOrderId": CID}))


def test_cancel_of_an_order_that_already_filled_returns_its_final_state(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    fake.orders[CID].update(status="closed", filled=0.001)

    order = gateway(fake, sleeps).cancel_order(CID, SYMBOL)

    assert order is not None and order.status == "closed" and order.filled == Decimal("0.001")


def test_cancel_of_an_unknown_order_is_none(fake, sleeps):
    assert gateway(fake, sleeps).cancel_order(CID, SYMBOL) is None


def test_cancel_retried_after_a_timeout_that_had_cancelled(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})

    def cancel_then_time_out(*args):
        fake._cancel(*args)
        raise ccxt.RequestTimeout("timed out")

    fake.script["cancel_order"] = [cancel_then_time_out]

    order = gateway(fake, sleeps).cancel_order(CID, SYMBOL)

    assert order is not None and order.status == "canceled"
    assert fake.count("cancel_order") == 2


def test_cancel_answer_with_ids_only_is_completed_by_a_fetch(fake, sleeps):
    fake.accept(SYMBOL, "limit", "buy", 0.001, 60000.5, {"clientOrderId": CID})
    fake.orders[CID]["status"] = "canceled"
    fake.script["cancel_order"] = [{"id": "ex-1", "clientOrderId": CID, "status": None}]

    order = gateway(fake, sleeps, exchange_id="okx").cancel_order(CID, SYMBOL)

    assert order is not None and order.status == "canceled" and order.amount == Decimal("0.001")


def test_cancel_of_a_missing_order_raises_nothing_else(fake, sleeps):
    fake.script["cancel_order"] = [ccxt.OrderNotFound("gone")]
    fake.script["fetch_order"] = [ccxt.OrderNotFound("gone")]
    assert gateway(fake, sleeps).cancel_order(CID, SYMBOL) is None


def test_fetch_closed_orders_passes_since_in_ms_and_drops_open_ones(fake, sleeps):
    fake.has["fetchCanceledAndClosedOrders"] = True
    fake.script["fetch_canceled_and_closed_orders"] = [
        [
            {**fake.accept(SYMBOL, "limit", "buy", 1.0, 1.0, {"clientOrderId": "a"}), "status": "closed"},
            {**fake.accept(SYMBOL, "limit", "buy", 1.0, 1.0, {"clientOrderId": "b"}), "status": "canceled"},
            fake.accept(SYMBOL, "limit", "buy", 1.0, 1.0, {"clientOrderId": "c"}),
        ]
    ]
    since = datetime(2024, 1, 1, tzinfo=UTC)

    orders = gateway(fake, sleeps).fetch_closed_orders(SYMBOL, since)

    assert [o.client_order_id for o in orders] == ["a", "b"]
    assert fake.calls[-1] == ("fetch_canceled_and_closed_orders", (SYMBOL, 1_704_067_200_000))


def test_fetch_order_error_other_than_not_found_is_raised(fake, sleeps):
    fake.script["fetch_order"] = [ccxt.AuthenticationError("bad key")]
    with pytest.raises(OrderRefused):
        gateway(fake, sleeps).fetch_order(CID, SYMBOL)


def test_order_missing_is_the_not_found_class(fake, sleeps):
    # fetch_order swallows OrderMissing into None; other callers see the class itself
    fake.script["fetch_open_orders"] = [ccxt.OrderNotFound("x")]
    with pytest.raises(OrderMissing):
        gateway(fake, sleeps).fetch_open_orders()


# -- markets, prices, balances ------------------------------------------------------------------


def ccxt_market(symbol, type_="spot", active=True, price=0.01, amount=0.00001, min_amount=0.00001, cost=5):
    return {
        "symbol": symbol,
        "type": type_,
        "active": active,
        "precision": {"price": price, "amount": amount},
        "limits": {"amount": {"min": min_amount, "max": None}, "cost": {"min": cost, "max": None}},
    }


def test_load_markets_reads_tick_size_precision_and_limits(fake, sleeps):
    fake.markets = {
        "BTC/USDT": ccxt_market("BTC/USDT"),
        "ETH/USDT": ccxt_market("ETH/USDT", amount=0.0001, min_amount=None, cost=None),
        "BTC/USDT:USDT": ccxt_market("BTC/USDT:USDT", type_="swap"),
        "OLD/USDT": ccxt_market("OLD/USDT", active=False),
    }

    markets = gateway(fake, sleeps).load_markets()

    assert markets == [
        MarketPrecision("BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal(5)),
        # missing minimums: one step and no notional minimum
        MarketPrecision("ETH/USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"), Decimal(0)),
    ]


def test_load_markets_always_asks_ccxt_to_reload(fake, sleeps):
    # Given a warm gateway whose ccxt client caches markets
    fake.markets = {"BTC/USDT": ccxt_market("BTC/USDT")}
    gw = gateway(fake, sleeps)
    gw.load_markets()
    # When the hourly refresh loads them again
    gw.load_markets()
    # Then every call asked ccxt for a reload, not its cache
    assert [args for method, args in fake.calls if method == "load_markets"] == [(True,), (True,)]


def test_load_markets_of_a_swap_account(fake, sleeps):
    fake.markets = {
        "BTC/USDT": ccxt_market("BTC/USDT"),
        "BTC/USDT:USDT": ccxt_market("BTC/USDT:USDT", "swap"),
    }
    markets = gateway(fake, sleeps, market_type="swap").load_markets()
    assert [m.symbol for m in markets] == ["BTC/USDT:USDT"]


def test_load_markets_converts_decimal_places_precision(sleeps):
    fake = FakeExchange(precision_mode=2)
    fake.markets = {"BTC/USDT": ccxt_market("BTC/USDT", price=2, amount=5)}
    (market,) = gateway(fake, sleeps).load_markets()
    assert (market.tick, market.step) == (Decimal("0.01"), Decimal("0.00001"))


def test_fetch_prices_uses_last_then_close(fake, sleeps):
    fake.tickers = {
        "BTC/USDT": {"last": 64000.5, "close": 64000.0},
        "ETH/USDT": {"last": None, "close": 3000.1},
        "SOL/USDT": {"last": None, "close": None},
    }
    prices = gateway(fake, sleeps).fetch_prices(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    assert prices == {"BTC/USDT": Decimal("64000.5"), "ETH/USDT": Decimal("3000.1")}


def test_fetch_prices_without_fetch_tickers_asks_one_by_one(sleeps):
    fake = FakeExchange(has={"fetchTickers": False})
    fake.tickers = {"BTC/USDT": {"last": 1.5}}
    assert gateway(fake, sleeps).fetch_prices(["BTC/USDT"]) == {"BTC/USDT": Decimal("1.5")}
    assert fake.count("fetch_ticker") == 1


def test_fetch_balance_returns_non_zero_totals(fake, sleeps):
    fake.balance = {"total": {"USDT": 1234.56, "BTC": 0.1, "ETH": 0.0, "XRP": None}, "free": {}}
    assert gateway(fake, sleeps).fetch_balance() == {"USDT": Decimal("1234.56"), "BTC": Decimal("0.1")}


# -- building the real ccxt client (offline) ----------------------------------------------------


def test_real_client_is_built_lazily_with_rate_limit_credentials_and_market_type():
    gw = CcxtGateway("bybit", api_key="k", secret="s", market_type="swap")
    client = gw.client
    assert isinstance(client, ccxt.bybit)
    assert client.enableRateLimit is True
    assert (client.apiKey, client.secret) == ("k", "s")
    assert client.options["defaultType"] == "swap"
    assert gw.client is client  # built once


def test_sandbox_switches_the_client_to_the_test_urls():
    live = CcxtGateway("binance").client
    sandbox = CcxtGateway("binance", sandbox=True).client
    assert sandbox.urls["api"] != live.urls["api"]
    assert sandbox.urls["api"] == live.urls["test"]


def test_unknown_exchange_id_is_refused():
    with pytest.raises(OrderRefused):
        _ = CcxtGateway("no-such-exchange").client


# -- real ccxt request building (offline: private endpoints are intercepted) --------------------


def offline_client(exchange_id, market_id):
    """A real ccxt exchange with one loaded market whose private endpoints record and time out."""
    client = getattr(ccxt, exchange_id)({"apiKey": "k", "secret": "s", "password": "p"})
    client.options.update(enableUnifiedMargin=False, enableUnifiedAccount=True)  # bybit: no account probe
    client.set_markets(
        [
            {
                "id": market_id,
                "symbol": SYMBOL,
                "base": "BTC",
                "quote": "USDT",
                "baseId": "BTC",
                "quoteId": "USDT",
                "settle": None,
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "contract": False,
                "linear": None,
                "inverse": None,
                "active": True,
                "contractSize": None,
                "precision": {"price": 0.01, "amount": 0.00001},
                "limits": {"amount": {"min": 0.00001}, "price": {}, "cost": {"min": 5}, "leverage": {}},
                "info": {"orderTypes": ["LIMIT", "MARKET"]},
            }
        ]
    )
    requests: list[tuple[str, dict]] = []

    def intercept(name):
        def endpoint(request, *args):
            requests.append((name, request))
            raise ccxt.RequestTimeout(f"{name} intercepted")

        return endpoint

    for name in dir(client):
        if name.startswith("private") and "Order" in name and callable(getattr(client, name, None)):
            setattr(client, name, intercept(name))
    return client, requests


@pytest.mark.parametrize(
    ("exchange_id", "market_id", "create_key"),
    [
        ("binance", "BTCUSDT", "newClientOrderId"),
        ("bybit", "BTCUSDT", "orderLinkId"),
        ("okx", "BTC-USDT", "clOrdId"),
    ],
)
def test_real_ccxt_sends_our_client_order_id_and_looks_it_up_after_a_timeout(
    exchange_id, market_id, create_key, sleeps
):
    # Given a real ccxt client whose private endpoints time out (nothing reaches the network)
    client, requests = offline_client(exchange_id, market_id)
    gw = CcxtGateway(exchange_id, client=client, sleep=sleeps)

    # When a create times out and its lookup times out too
    with pytest.raises(OutcomeUnknown):
        gw.create_order(limit_buy())

    # Then the create carried our client order id under the exchange's own parameter name ...
    create_name, create_request = requests[0]
    body = create_request[0] if isinstance(create_request, list) else create_request
    assert body[create_key] == CID
    # ... exactly one create went out, and every later request looked the order up by that id
    lookups = requests[1:]
    assert lookups, "the order must be looked up before giving up"
    assert all(name != create_name for name, _ in lookups)
    assert all(CID in request.values() for _, request in lookups)


@pytest.mark.parametrize(
    ("exchange_id", "market_id", "cancel_key"),
    [
        ("binance", "BTCUSDT", "origClientOrderId"),
        ("bybit", "BTCUSDT", "orderLinkId"),
        ("okx", "BTC-USDT", "clOrdId"),
    ],
)
def test_real_ccxt_cancels_by_our_client_order_id(exchange_id, market_id, cancel_key, sleeps):
    client, requests = offline_client(exchange_id, market_id)

    with pytest.raises(TemporaryFailure):
        CcxtGateway(exchange_id, client=client, sleep=sleeps).cancel_order(CID, SYMBOL)

    assert len(requests) == 3  # a cancel is safe to retry
    assert all(request[cancel_key] == CID for _, request in requests)
    assert all("orderId" not in request and "ordId" not in request for _, request in requests)
