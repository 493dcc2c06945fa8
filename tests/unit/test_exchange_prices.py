"""CcxtPriceSource: paper prices from public tickers (dry run in AWS)."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from engine.exchange.errors import BackOff, TemporaryFailure
from engine.exchange.prices import CcxtPriceSource, PriceSource


class TickerClient:
    def __init__(self, tickers=None, error=None):
        self.tickers = tickers or {}
        self.error = error
        self.calls: list[str] = []

    def fetch_ticker(self, symbol):
        self.calls.append(symbol)
        if self.error is not None:
            raise self.error
        return self.tickers[symbol]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_is_a_price_source():
    assert isinstance(CcxtPriceSource("binance"), PriceSource)


@pytest.mark.parametrize(
    ("ticker", "price"),
    [
        ({"last": 64000.5, "close": 1.0}, Decimal("64000.5")),
        ({"last": None, "close": 0.1}, Decimal("0.1")),
        ({"last": None, "close": None}, None),
        ({"last": 0, "close": None}, None),
    ],
)
def test_price_is_last_then_close(ticker, price):
    source = CcxtPriceSource(clients={"binance": TickerClient({"BTC/USDT": ticker})})
    assert source.get("binance", "BTC/USDT") == price


def test_answers_are_cached_briefly():
    client, clock = TickerClient({"BTC/USDT": {"last": 1.5}}), Clock()
    source = CcxtPriceSource(clients={"okx": client}, max_age_seconds=5, clock=clock)

    source.get("okx", "BTC/USDT")
    clock.now += 4.9
    source.get("okx", "BTC/USDT")
    assert client.calls == ["BTC/USDT"]

    clock.now += 0.2
    source.get("okx", "BTC/USDT")
    assert client.calls == ["BTC/USDT", "BTC/USDT"]


def test_fixed_exchange_id_serves_every_account():
    client = TickerClient({"BTC/USDT": {"last": 2}})
    source = CcxtPriceSource("binance", clients={"binance": client})
    assert source.get("paper-account", "BTC/USDT") == Decimal(2)


def test_unknown_symbol_has_no_price():
    source = CcxtPriceSource(clients={"binance": TickerClient(error=ccxt.BadSymbol("no such market"))})
    assert source.get("binance", "NOPE/USDT") is None


@pytest.mark.parametrize(
    ("error", "raised"),
    [(ccxt.RequestTimeout("t"), TemporaryFailure), (ccxt.RateLimitExceeded("r"), BackOff)],
)
def test_network_failures_are_raised_not_guessed(error, raised):
    source = CcxtPriceSource(clients={"binance": TickerClient(error=error)})
    with pytest.raises(raised):
        source.get("binance", "BTC/USDT")


def test_real_client_is_built_on_first_use():
    source = CcxtPriceSource()
    client = source._client("bybit")
    assert isinstance(client, ccxt.bybit)
    assert client.enableRateLimit is True
    assert source._client("bybit") is client
