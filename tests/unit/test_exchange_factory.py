"""Choosing the gateway of an account."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.config import AccountConfig, PaperConfig, PaperMarket
from engine.exchange.ccxt_gateway import CcxtGateway
from engine.exchange.errors import OrderRefused
from engine.exchange.factory import gateway_for
from engine.exchange.paper import PaperGateway
from tests.unit.test_exchange_paper import MemoryBook, Prices


def build(account, paper=None, credentials=None, name="okx"):
    return gateway_for(
        name,
        account,
        book=MemoryBook(),
        prices=Prices(),
        paper=paper or PaperConfig(),
        credentials=credentials,
    )


def test_paper_account_gets_the_paper_exchange_with_the_configured_balance_and_markets():
    paper = PaperConfig(
        balance_usd=Decimal(2500),
        markets={"PEPE/USDT": PaperMarket(tick=Decimal("0.00000001"), step=Decimal(1))},
    )

    gw = build(AccountConfig(mode="paper"), paper=paper)

    assert isinstance(gw, PaperGateway)
    assert gw.name == "okx"
    assert gw.fetch_balance() == {"USDT": Decimal(2500)}
    assert {"PEPE/USDT", "BTC/USDT"} <= {m.symbol for m in gw.load_markets()}


def test_live_account_gets_a_ccxt_gateway_with_its_settings():
    account = AccountConfig(mode="live", market_type="swap", sandbox=True)

    gw = build(account, credentials={"api_key": "k", "secret": "s", "password": "p"})

    assert isinstance(gw, CcxtGateway)
    client = gw.client
    assert (client.apiKey, client.secret, client.password) == ("k", "s", "p")
    assert client.options["defaultType"] == "swap"
    assert client.isSandboxModeEnabled is True


@pytest.mark.parametrize("credentials", [None, {}, {"api_key": "k"}, {"secret": "s"}])
def test_live_account_without_credentials_is_refused(credentials):
    with pytest.raises(OrderRefused) as caught:
        build(AccountConfig(mode="live"), credentials=credentials)
    assert caught.value.error == "AuthenticationError"


def _live_gateway() -> CcxtGateway:
    gateway = gateway_for(
        "binance",
        AccountConfig(mode="live"),
        book=MemoryBook(),
        prices=Prices(),
        paper=PaperConfig(),
        credentials={"apiKey": "k", "secret": "s"},
    )
    assert isinstance(gateway, CcxtGateway)
    return gateway


def test_live_client_takes_its_request_timeout_from_the_environment(monkeypatch):
    """EXCHANGE_TIMEOUT_MS (set by the stack) bounds every ccxt request."""
    monkeypatch.setenv("EXCHANGE_TIMEOUT_MS", "5000")
    assert _live_gateway().client.timeout == 5000


@pytest.mark.parametrize("raw", [None, "", "soon", "0", "-1"])
def test_without_a_usable_timeout_ccxt_keeps_its_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("EXCHANGE_TIMEOUT_MS", raising=False)
    else:
        monkeypatch.setenv("EXCHANGE_TIMEOUT_MS", raw)
    assert _live_gateway().client.timeout == 10000
