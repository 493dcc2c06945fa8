"""The account gateway of engine.app.gateways: paper prices with the ticker fallback (AWS dry run), and
a live account whose secret is outside the stack's namespace."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from engine.app import gateways
from engine.domain.config import ConfigSnapshot, EngineConfig
from engine.domain.models import OrderSide, OrderType
from engine.exchange.errors import BackOff
from engine.exchange.gateway import OrderRequest
from engine.exchange.prices import CcxtPriceSource
from tests.unit.test_exchange_paper import MemoryBook, Prices

MARKET_BUY = OrderRequest(
    client_order_id="d" * 32, symbol="ETH/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal(1)
)


class _Ticker:
    def fetch_ticker(self, symbol: str) -> dict[str, str]:
        return {"symbol": symbol, "last": "2500"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    gateways.clear_gateway_cache()
    yield
    gateways.clear_gateway_cache()


@pytest.fixture
def books() -> SimpleNamespace:
    return SimpleNamespace(paper=MemoryBook(), prices=Prices(BTC_USDT="60000"))


def test_with_ticker_prices_a_paper_market_order_on_an_unpriced_symbol_fills(books, monkeypatch):
    # Given the AWS dry run (PAPER_PRICE_SOURCE=tickers), no stored ETH/USDT price, a ticker at 2500
    monkeypatch.setenv("PAPER_PRICE_SOURCE", "tickers")
    monkeypatch.setattr(CcxtPriceSource, "_client", lambda self, exchange_id: _Ticker())
    gateway = gateways.gateway_for_exchange(books, "binance", ConfigSnapshot())
    # When order_executor places a market order / Then it fills at the ticker (no BackOff into the DLQ)
    order = gateway.create_order(MARKET_BUY)
    assert (order.status, order.average) == ("closed", Decimal("2500"))


def test_with_table_prices_an_unpriced_market_order_still_backs_off(books, monkeypatch):
    # Given the local runtime (prices only from the table) / Then no network fallback: back off
    monkeypatch.delenv("PAPER_PRICE_SOURCE", raising=False)
    gateway = gateways.gateway_for_exchange(books, "binance", ConfigSnapshot(engine=EngineConfig()))
    with pytest.raises(BackOff):
        gateway.create_order(MARKET_BUY)


def test_a_live_account_with_a_secret_outside_the_namespace_is_refused_for_good(books, monkeypatch):
    from engine.domain.config import AccountConfig
    from engine.exchange.errors import OrderRefused

    # Given a live account whose secret_name lies outside <app>/<stage>/exchange/*
    monkeypatch.setenv("EXCHANGE_SECRET_PREFIX", "execution-engine/prod/exchange/")
    account = AccountConfig(mode="live", secret_name="other/prod/exchange/binance")
    config = ConfigSnapshot(engine=EngineConfig(accounts={"binance": account}))
    # When its gateway is asked for / Then a final refusal (ConfigInvalid), never a BackOff on the secret
    with pytest.raises(OrderRefused) as refused:
        gateways.gateway_for_exchange(books, "binance", config)
    assert refused.value.error == "ConfigInvalid"
