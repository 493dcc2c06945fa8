"""The paper exchange: fills along a price path, fees, balances, partial fills, idempotency."""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.domain.models import ExchangeOrder, OrderSide, OrderType
from engine.exchange.errors import BackOff, OrderRefused, TemporaryFailure
from engine.exchange.gateway import ExchangeGateway, OrderRequest
from engine.exchange.markets import paper_markets
from engine.exchange.paper import PaperBook, PaperGateway, PriceSource, reservation, split_symbol

D = Decimal
BTC = "BTC/USDT"


class MemoryBook:
    """In-memory PaperBook (the real one lives in engine.store)."""

    def __init__(self) -> None:
        self.orders: dict[tuple[str, str], ExchangeOrder] = {}
        self.balances: dict[str, dict[str, Decimal]] = {}
        self.ledgers: dict[str, dict[str, Decimal]] = {}

    def get(self, exchange, client_order_id):
        return self.orders.get((exchange, client_order_id))

    def put(self, order, *, replaces, reserved=None):
        key = (order.exchange, order.client_order_id)
        stored = self.orders.get(key)
        if (stored is None) != (replaces is None) or (
            stored is not None and (stored.status, stored.filled) != (replaces.status, replaces.filled)
        ):
            return False
        self.orders[key] = replace(order)
        ledger = self.ledgers.setdefault(order.exchange, {})
        for name, change in (reserved or {}).items():
            ledger[name] = ledger.get(name, Decimal(0)) + change
        return True

    def get_reserved(self, exchange):
        ledger = self.ledgers.get(exchange)
        return dict(ledger) if ledger is not None else None

    def put_reserved(self, exchange, reserved):
        self.ledgers[exchange] = dict(reserved)

    def list_open(self, exchange, symbol=None):
        return [
            o
            for (ex, _), o in self.orders.items()
            if ex == exchange and o.status == "open" and (symbol is None or o.symbol == symbol)
        ]

    def list_all(self, exchange):
        return [o for (ex, _), o in self.orders.items() if ex == exchange]

    def get_balances(self, exchange):
        balances = self.balances.get(exchange)
        return dict(balances) if balances is not None else None

    def put_balances(self, exchange, balances):
        self.balances[exchange] = dict(balances)


class Prices:
    """A settable PriceSource."""

    def __init__(self, **prices: str) -> None:
        self.prices: dict[tuple[str, str], Decimal] = {}
        for symbol, price in prices.items():
            self.set(symbol.replace("_", "/"), price)

    def set(self, symbol: str, price: str, exchange: str = "binance") -> None:
        self.prices[(exchange, symbol)] = D(price)

    def get(self, exchange, symbol):
        return self.prices.get((exchange, symbol))


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, minutes: int) -> None:
        self.at += timedelta(minutes=minutes)


@pytest.fixture
def book():
    return MemoryBook()


@pytest.fixture
def prices():
    return Prices(BTC_USDT="60000")


@pytest.fixture
def clock():
    return Clock()


def paper(book, prices, clock, *, ratio=None, balance="10000", fee="0.1", extra=None):
    return PaperGateway(
        "binance",
        book=book,
        prices=prices,
        fee_percent=D(fee),
        balance_usd=D(balance),
        markets=paper_markets(extra),
        partial_fill_ratio=D(ratio) if ratio else None,
        now=clock,
    )


def req(cid, side, type_, amount, price=None, symbol=BTC):
    return OrderRequest(
        cid, symbol, OrderSide(side), OrderType(type_), D(amount), D(price) if price else None
    )


def test_in_memory_book_and_prices_satisfy_the_protocols(book, prices, clock):
    assert isinstance(book, PaperBook)
    assert isinstance(prices, PriceSource)
    assert isinstance(paper(book, prices, clock), ExchangeGateway)


def test_starting_balance_is_the_configured_usd(book, prices, clock):
    assert paper(book, prices, clock).fetch_balance() == {"USDT": D(10000)}
    assert book.balances["binance"] == {"USDT": D(10000)}  # persisted on first use


def test_market_buy_fills_at_the_current_price_and_pays_fee_in_quote(book, prices, clock):
    gw = paper(book, prices, clock)

    order = gw.create_order(req("c1", "buy", "market", "0.1"))

    assert order.status == "closed"
    assert (order.filled, order.average, order.cost) == (D("0.1"), D(60000), D(6000))
    assert (order.fee_cost, order.fee_currency) == (D(6), "USDT")  # 0.1 % of 6000
    assert order.price is None
    assert order.last_trade_at == clock.at
    assert gw.fetch_balance() == {"USDT": D(3994), "BTC": D("0.1")}


def test_market_sell_receives_notional_minus_fee(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("c1", "buy", "market", "0.1"))
    prices.set(BTC, "61000")

    order = gw.create_order(req("c2", "sell", "market", "0.1"))

    assert (order.status, order.average, order.fee_cost) == ("closed", D(61000), D("6.1"))
    assert gw.fetch_balance() == {"USDT": D(3994) + D(6100) - D("6.1")}


@pytest.mark.parametrize(
    ("side", "limit", "path", "fills_at_step"),
    [
        # buy: fills once the price is at or below the limit
        ("buy", "59000", ["59500", "59000.01", "58900", "58000"], 2),
        ("buy", "59000", ["59000"], 0),
        ("buy", "59000", ["59500", "60000", "59000.01"], None),
        # sell: fills once the price is at or above the limit
        ("sell", "61000", ["60500", "60999.99", "61000"], 2),
        ("sell", "61000", ["61500"], 0),
        ("sell", "61000", ["60000", "59000"], None),
    ],
)
def test_resting_limit_fills_at_its_limit_when_the_price_path_crosses(
    book, prices, clock, side, limit, path, fills_at_step
):
    # Given a resting limit order (and BTC to sell)
    gw = paper(book, prices, clock)
    if side == "sell":
        gw.create_order(req("seed", "buy", "market", "0.01"))
    prices.set(BTC, "60000")
    order = gw.create_order(req("c1", side, "limit", "0.01", limit))
    assert order.status == "open"

    # When the price walks the path, one matching step per price
    filled_at = None
    for step, price in enumerate(path):
        prices.set(BTC, price)
        gw.match()
        if filled_at is None and gw.fetch_order("c1", BTC).status == "closed":
            filled_at = step

    # Then it filled exactly when the price first crossed, at the limit price (not the crossing price)
    assert filled_at == fills_at_step
    final = gw.fetch_order("c1", BTC)
    if fills_at_step is not None:
        assert final.average == D(limit)
        assert final.fee_cost == D("0.01") * D(limit) * D("0.001")


def test_marketable_limit_fills_at_the_current_price(book, prices, clock):
    gw = paper(book, prices, clock)

    order = gw.create_order(req("c1", "buy", "limit", "0.01", "65000"))

    assert (order.status, order.average, order.price) == ("closed", D(60000), D(65000))


def test_match_returns_only_the_orders_that_traded(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("near", "buy", "limit", "0.01", "59000"))
    gw.create_order(req("far", "buy", "limit", "0.01", "50000"))
    prices.set(BTC, "58000")

    traded = gw.match(BTC)

    assert [o.client_order_id for o in traded] == ["near"]
    assert gw.match() == []  # nothing left that can trade


@pytest.mark.parametrize(
    ("ratio", "amount", "filled_after_each_step"),
    [
        # half of the remaining per step, rounded down to the 0.00001 step; a remainder under the
        # minimum quantity is filled with the last part
        (
            "0.5",
            "0.001",
            ["0.0005", "0.00075", "0.00087", "0.00093", "0.00096", "0.00098", "0.00099", "0.001"],
        ),
        ("0.25", "0.0004", ["0.0001", "0.00017", "0.00022", "0.00026", "0.00029", "0.00031", "0.00033"]),
        ("1", "0.001", ["0.001"]),
    ],
)
def test_partial_fills_take_a_share_of_the_remaining_per_step(
    book, prices, clock, ratio, amount, filled_after_each_step
):
    gw = paper(book, prices, clock, ratio=ratio)
    gw.create_order(req("c1", "buy", "limit", amount, "59000"))
    prices.set(BTC, "58000")

    observed = []
    for _ in filled_after_each_step:
        gw.match()
        observed.append(book.get("binance", "c1").filled)

    assert observed == [D(x) for x in filled_after_each_step]
    final = book.get("binance", "c1")
    expected_status = "closed" if D(filled_after_each_step[-1]) == D(amount) else "open"
    assert final.status == expected_status
    assert final.average == D(59000)
    assert final.cost == final.filled * D(59000)


def test_market_orders_fill_completely_even_with_partial_fills(book, prices, clock):
    gw = paper(book, prices, clock, ratio="0.5")
    order = gw.create_order(req("c1", "buy", "market", "0.001"))
    assert (order.status, order.filled) == ("closed", D("0.001"))


def test_partial_fill_moves_balances_by_the_filled_part_only(book, prices, clock):
    gw = paper(book, prices, clock, ratio="0.5")
    gw.create_order(req("c1", "buy", "limit", "0.1", "50000"))
    prices.set(BTC, "49000")

    gw.match()

    # 0.05 BTC at 50000 = 2500 plus 2.5 fee
    assert gw.fetch_balance() == {"USDT": D("7497.5"), "BTC": D("0.05")}


# -- balance enforcement ------------------------------------------------------------------------


def test_buy_beyond_the_quote_balance_is_refused_as_insufficient_funds(book, prices, clock):
    gw = paper(book, prices, clock, balance="100")

    with pytest.raises(OrderRefused) as caught:
        gw.create_order(req("c1", "buy", "market", "0.002"))  # 120 + fee

    assert caught.value.error == "InsufficientFunds"
    assert "insufficient USDT" in caught.value.reason
    assert book.get("binance", "c1") is None
    assert gw.fetch_balance() == {"USDT": D(100)}


def test_fee_counts_towards_the_funds_a_buy_needs(book, prices, clock):
    gw = paper(book, prices, clock, balance="60")
    with pytest.raises(OrderRefused):
        gw.create_order(req("c1", "buy", "market", "0.001"))  # 60 + 0.06 fee
    gw2 = paper(MemoryBook(), prices, clock, balance="60.06")
    assert gw2.create_order(req("c1", "buy", "market", "0.001")).status == "closed"


def test_open_limit_buys_reserve_quote(book, prices, clock):
    gw = paper(book, prices, clock, balance="1000")
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))  # reserves 590.59

    with pytest.raises(OrderRefused) as caught:
        gw.create_order(req("c2", "buy", "limit", "0.01", "59000"))

    assert "reserved by open orders" in caught.value.reason


def test_sell_needs_the_base_coin(book, prices, clock):
    gw = paper(book, prices, clock)
    with pytest.raises(OrderRefused) as caught:
        gw.create_order(req("c1", "sell", "limit", "0.01", "61000"))
    assert caught.value.error == "InsufficientFunds"
    assert "insufficient BTC" in caught.value.reason


def test_open_sells_reserve_the_base_coin(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("buy", "buy", "market", "0.01"))
    gw.create_order(req("tp1", "sell", "limit", "0.006", "61000"))

    with pytest.raises(OrderRefused):
        gw.create_order(req("tp2", "sell", "limit", "0.006", "62000"))
    assert gw.create_order(req("tp3", "sell", "limit", "0.004", "62000")).status == "open"


def test_cancel_releases_the_reservation(book, prices, clock):
    gw = paper(book, prices, clock, balance="1000")
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))

    cancelled = gw.cancel_order("c1", BTC)

    assert cancelled is not None and cancelled.status == "canceled"
    assert gw.create_order(req("c2", "buy", "limit", "0.01", "59000")).status == "open"
    assert gw.fetch_balance() == {"USDT": D(1000)}


# -- order rules --------------------------------------------------------------------------------


def test_same_client_order_id_returns_the_existing_order_without_trading_again(book, prices, clock):
    gw = paper(book, prices, clock)
    first = gw.create_order(req("c1", "buy", "market", "0.01"))
    balance = gw.fetch_balance()

    again = gw.create_order(req("c1", "buy", "market", "0.01"))

    assert again == first
    assert gw.fetch_balance() == balance
    assert len(book.list_all("binance")) == 1


def test_amount_is_truncated_to_the_step_and_price_rounded_to_the_tick(book, prices, clock):
    gw = paper(book, prices, clock)
    order = gw.create_order(req("c1", "buy", "limit", "0.0123456", "59000.126"))
    assert (order.amount, order.price) == (D("0.01234"), D("59000.13"))


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (req("c1", "buy", "limit", "0.000001", "59000"), "InvalidOrder"),  # under one step
        (req("c1", "buy", "limit", "0.00001", "59000"), "InvalidOrder"),  # 0.59 USDT < 5 min notional
        (req("c1", "buy", "limit", "0.01", None), "InvalidOrder"),  # limit without price
        (req("c1", "buy", "limit", "1", "1", symbol="PEPE/USDT"), "BadSymbol"),
    ],
)
def test_invalid_orders_are_refused(book, prices, clock, request_, error):
    with pytest.raises(OrderRefused) as caught:
        paper(book, prices, clock).create_order(request_)
    assert caught.value.error == error
    assert book.orders == {}


def test_market_order_without_a_price_is_not_placed(book, clock):
    gw = paper(book, Prices(), clock)
    with pytest.raises(BackOff):
        gw.create_order(req("c1", "buy", "market", "0.01"))
    assert book.orders == {}


def test_limit_order_without_a_price_rests_until_a_price_arrives(book, clock):
    prices = Prices()
    gw = paper(book, prices, clock)
    assert gw.create_order(req("c1", "buy", "limit", "0.01", "59000")).status == "open"
    prices.set(BTC, "58999")
    assert gw.fetch_order("c1", BTC).status == "closed"


def test_extra_markets_from_config_are_tradable(book, clock):
    class Rules:  # shaped like engine.domain.config.PaperMarket
        tick, step, min_qty, min_notional = D("0.0000001"), D("1000"), D("1000"), D("5")

    prices = Prices(PEPE_USDT="0.0000123")
    gw = paper(book, prices, clock, extra={"PEPE/USDT": Rules()})

    order = gw.create_order(req("c1", "buy", "market", "1000000", symbol="PEPE/USDT"))

    assert order.status == "closed"
    assert gw.fetch_balance()["PEPE"] == D(1000000)
    assert "PEPE/USDT" in {m.symbol for m in gw.load_markets()}


# -- reads and cancels --------------------------------------------------------------------------


def test_fetch_order_of_an_unknown_client_id_is_none(book, prices, clock):
    assert paper(book, prices, clock).fetch_order("nope", BTC) is None


def test_fetch_open_orders_matches_first(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))
    gw.create_order(req("c2", "buy", "limit", "0.01", "58000"))
    prices.set(BTC, "58500")

    assert [o.client_order_id for o in gw.fetch_open_orders()] == ["c2"]
    assert gw.fetch_open_orders("ETH/USDT") == []


def test_cancel_of_unknown_is_none_and_of_a_filled_order_returns_it_unchanged(book, prices, clock):
    gw = paper(book, prices, clock)
    filled = gw.create_order(req("c1", "buy", "market", "0.01"))

    assert gw.cancel_order("nope", BTC) is None
    assert gw.cancel_order("c1", BTC) == filled


def test_cancel_fills_a_crossed_order_first(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))
    prices.set(BTC, "58000")

    order = gw.cancel_order("c1", BTC)

    assert order is not None and order.status == "closed"


def test_fetch_closed_orders_by_symbol_and_creation_time(book, prices, clock):
    gw = paper(book, prices, clock)
    gw.create_order(req("old", "buy", "market", "0.01"))
    clock.advance(10)
    since = clock.at
    gw.create_order(req("new", "buy", "market", "0.01"))
    gw.create_order(req("open", "buy", "limit", "0.01", "50000"))
    gw.create_order(req("gone", "buy", "limit", "0.01", "50000"))
    gw.cancel_order("gone", BTC)

    assert {o.client_order_id for o in gw.fetch_closed_orders(BTC)} == {"old", "new", "gone"}
    assert {o.client_order_id for o in gw.fetch_closed_orders(BTC, since)} == {"new", "gone"}
    assert gw.fetch_closed_orders("ETH/USDT") == []


def test_fetch_prices_leaves_out_symbols_without_price(book, prices, clock):
    assert paper(book, prices, clock).fetch_prices([BTC, "ETH/USDT"]) == {BTC: D(60000)}


def test_accounts_are_separate(book, prices, clock):
    binance = paper(book, prices, clock)
    bybit = PaperGateway(
        "bybit", book=book, prices=prices, fee_percent=D("0.1"), balance_usd=D(50), markets=paper_markets()
    )
    binance.create_order(req("c1", "buy", "market", "0.01"))
    assert bybit.fetch_balance() == {"USDT": D(50)}
    assert bybit.fetch_order("c1", BTC) is None


@pytest.mark.parametrize(
    ("symbol", "parts"), [("BTC/USDT", ("BTC", "USDT")), ("BTC/USDT:USDT", ("BTC", "USDT"))]
)
def test_split_symbol(symbol, parts):
    assert split_symbol(symbol) == parts


def test_split_symbol_refuses_garbage():
    with pytest.raises(OrderRefused):
        split_symbol("BTCUSDT")


def test_partial_fill_ratio_must_be_a_share():
    with pytest.raises(ValueError):
        PaperGateway(
            "x",
            book=MemoryBook(),
            prices=Prices(),
            fee_percent=D(0),
            balance_usd=D(0),
            markets={},
            partial_fill_ratio=D("1.5"),
        )


class Tickers:
    """A public-ticker PriceSource that counts its calls."""

    def __init__(self, price: str) -> None:
        self.price = D(price)
        self.calls: list[tuple[str, str]] = []

    def get(self, exchange, symbol):
        self.calls.append((exchange, symbol))
        return self.price


def test_a_market_order_without_a_stored_price_fills_at_the_ticker_fallback(book, clock):
    from engine.exchange.prices import FallbackPriceSource

    # Given no stored price for ETH/USDT and a ticker at 2500
    tickers = Tickers("2500")
    gateway = PaperGateway(
        "binance",
        book=book,
        prices=FallbackPriceSource(Prices(BTC_USDT="60000"), tickers),
        fee_percent=D("0.1"),
        balance_usd=D("10000"),
        markets=paper_markets({}),
        now=clock,
    )
    request = OrderRequest(
        client_order_id="c" * 32, symbol="ETH/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=D("1")
    )
    # When a market order is placed / Then it fills at the ticker instead of backing off
    order = gateway.create_order(request)
    assert (order.status, order.average) == ("closed", D("2500"))
    # And a stored price wins over the ticker (no ticker call for BTC/USDT)
    assert gateway.fetch_prices([BTC]) == {BTC: D("60000")}
    assert tickers.calls == [("binance", "ETH/USDT")]


# ---------------------------------------------------------------------- the reservation ledger


def _from_the_open_book(book: MemoryBook, exchange: str = "binance") -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for order in book.list_open(exchange):
        for key, amount in reservation(order).items():
            totals[key] = totals.get(key, D(0)) + amount
    return {key: amount for key, amount in totals.items() if amount}


def _ledger(book: MemoryBook, exchange: str = "binance") -> dict[str, Decimal]:
    return {key: amount for key, amount in (book.get_reserved(exchange) or {}).items() if amount}


@pytest.mark.parametrize("seed", range(12))
def test_the_ledger_always_equals_what_the_open_book_reserves(book, clock, seed):
    # Given a random session of limit buys and sells, price moves with partial fills, and cancels
    rng = random.Random(seed)
    prices = Prices(BTC_USDT="60000")
    gw = paper(book, prices, clock, ratio="0.5", balance="100000")
    gw.create_order(req("seed", "buy", "market", "0.5"))
    for step in range(60):
        action = rng.choice(["buy", "sell", "move", "cancel", "cancel"])
        if action == "buy":
            price = str(rng.randrange(57000, 60000, 50))
            with contextlib.suppress(OrderRefused):
                gw.create_order(
                    req(f"b{step}", "buy", "limit", str(rng.choice(["0.01", "0.02", "0.05"])), price)
                )
        elif action == "sell":
            price = str(rng.randrange(60050, 63000, 50))
            with contextlib.suppress(OrderRefused):
                gw.create_order(req(f"s{step}", "sell", "limit", str(rng.choice(["0.01", "0.03"])), price))
        elif action == "move":
            prices.set(BTC, str(rng.randrange(56000, 64000, 100)))
            gw.match()
        else:
            open_orders = book.list_open("binance")
            if open_orders:
                gw.cancel_order(rng.choice(open_orders).client_order_id, BTC)
        # Then after every step the ledger holds exactly what the open orders reserve
        assert _ledger(book) == _from_the_open_book(book)
    # And funds are checked against it: what is available is the balance less the reservations
    available = gw._available(gw._balances())
    held = _from_the_open_book(book)
    fee = D("0.001")
    assert available["USDT"] == gw.fetch_balance()["USDT"] - held.get("USDT:buy", D(0)) * (1 + fee)


def test_an_account_from_before_the_ledger_gets_it_built_from_its_open_book_once(book, prices, clock):
    # Given open orders placed, then the ledger lost (an account written before it existed)
    gw = paper(book, prices, clock)
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))
    gw.create_order(req("c2", "buy", "limit", "0.02", "58000"))
    book.ledgers.clear()

    # When the next order is checked for funds
    gw.create_order(req("c3", "buy", "limit", "0.01", "57000"))

    # Then the ledger was built from the open book and moved by the new order
    assert _ledger(book) == {"USDT:buy": D("590") + D("1160") + D("570")}


class RacingBook(MemoryBook):
    """A book where another caller changes an order between this caller's read and its write (once)."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Any = None

    def put(self, order, *, replaces, reserved=None):
        if self.meanwhile is not None and replaces is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().put(order, replaces=replaces, reserved=reserved)


def test_a_cancel_racing_a_fill_writes_nothing_and_asks_to_try_again(prices, clock):
    # Given a resting buy, and the order sync filling it while the executor cancels it
    book = RacingBook()
    gw = paper(book, prices, clock)
    gw.create_order(req("c1", "buy", "limit", "0.01", "59000"))

    def sync_fills() -> None:
        prices.set(BTC, "58900")
        gw.match()

    book.meanwhile = sync_fills
    prices.set(BTC, "60000")

    # When the executor's cancel is written, then it is refused as temporary
    with pytest.raises(TemporaryFailure):
        gw.cancel_order("c1", BTC)

    # And the fill stands, the reservation was released once, and the retried cancel finds it filled
    assert book.get("binance", "c1").status == "closed"
    assert _ledger(book) == {} == _from_the_open_book(book)
    assert gw.cancel_order("c1", BTC).status == "closed"
