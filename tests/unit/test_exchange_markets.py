"""The paper market table (DESIGN §6)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.config import PaperMarket
from engine.domain.models import MarketPrecision
from engine.exchange.markets import PAPER_MARKETS, paper_markets

D = Decimal


def test_the_major_usdt_pairs_are_known():
    bases = {"BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC"}
    assert set(PAPER_MARKETS) == {f"{base}/USDT" for base in bases}


@pytest.mark.parametrize(
    ("symbol", "tick", "step"),
    [("BTC/USDT", "0.01", "0.00001"), ("ETH/USDT", "0.01", "0.0001"), ("SOL/USDT", "0.01", "0.001")],
)
def test_design_precision_of_the_main_pairs(symbol, tick, step):
    market = PAPER_MARKETS[symbol]
    assert (market.tick, market.step, market.min_notional) == (D(tick), D(step), D(5))


def test_every_market_has_positive_increments_and_5_usdt_min_notional():
    for symbol, market in PAPER_MARKETS.items():
        assert market.symbol == symbol
        assert market.tick > 0 and market.step > 0
        assert market.min_qty >= market.step
        assert market.min_notional == D(5)


def test_extra_markets_from_config_are_added_and_override():
    extra = {
        "PEPE/USDT": PaperMarket(tick=D("0.00000001"), step=D("1"), min_qty=D("1"), min_notional=D("1")),
        "BTC/USDT": PaperMarket(tick=D("0.1"), step=D("0.001")),
    }

    markets = paper_markets(extra)

    assert markets["PEPE/USDT"] == MarketPrecision("PEPE/USDT", D("0.00000001"), D(1), D(1), D(1))
    assert markets["BTC/USDT"] == MarketPrecision("BTC/USDT", D("0.1"), D("0.001"), D(0), D(0))
    assert markets["ETH/USDT"] == PAPER_MARKETS["ETH/USDT"]
    assert PAPER_MARKETS["BTC/USDT"].tick == D("0.01")  # the built-in table is not modified


def test_no_extra_markets():
    assert paper_markets() == dict(PAPER_MARKETS)
    assert paper_markets({}) == dict(PAPER_MARKETS)
