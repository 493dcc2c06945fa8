"""Accounts, routes and per-account pools in the configuration documents (DESIGN §3.10, §4)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.config import ConfigError, default_documents, parse_document


def test_the_seeded_routes_send_each_exchange_to_its_own_account() -> None:
    routes = parse_document("routes", default_documents()["routes"])
    assert {
        name: [r.account for r in routes.targets(name) or []] for name in ("BINANCE", "BYBIT", "OKX")
    } == {
        "BINANCE": ["binance"],
        "BYBIT": ["bybit"],
        "OKX": ["okx"],
    }
    assert routes.targets("kraken") is None


def test_routes_are_case_insensitive_and_skip_disabled_accounts() -> None:
    routes = parse_document(
        "routes",
        '{"binance": [{"account": "Binance"}, {"account": "binance-sub", "size_multiplier": "0.5"},'
        ' {"account": "off", "enabled": false}]}',
    )
    targets = routes.targets("BINANCE") or []
    assert [(r.account, r.size_multiplier) for r in targets] == [
        ("binance", 1),
        ("binance-sub", Decimal("0.5")),
    ]


@pytest.mark.parametrize(
    "text", ['{"BINANCE": [{"account": ""}]}', '{"BINANCE": [{"account": "a", "size_multiplier": 0}]}']
)
def test_a_bad_route_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_document("routes", text)
    assert refused.value.document == "routes"


def test_an_account_names_its_exchange_and_its_own_limits() -> None:
    engine = parse_document(
        "engine",
        '{"accounts": {"binance": {}, "Binance-Sub": {"exchange": "BINANCE", "max_total_exposure_usd": 50,'
        ' "max_daily_loss_usd": 20}}}',
    )
    assert engine.exchange_of("binance-sub") == engine.exchange_of("binance") == "binance"
    assert engine.accounts_on("binance") == ["binance", "binance-sub"]
    own = engine.for_account("binance-sub")
    assert (own.max_total_exposure_usd, own.max_daily_loss_usd) == (50, 20)
    assert engine.for_account("binance") is engine


def test_the_pool_has_per_account_sizes() -> None:
    pool = parse_document("pool", '{"max_open_groups": 4, "accounts": {"Binance": {"max_open_groups": 1}}}')
    assert (pool.max_open_for("binance"), pool.max_open_for("bybit")) == (1, 4)
