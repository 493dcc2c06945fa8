"""The markets table keeps a swap market's contract size (issue 12 finding 14), moto-backed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.domain.models import MarketPrecision, utcnow
from engine.store import MarketStore
from engine.store.tables import MarketModel, bind

D = Decimal


def test_a_swap_markets_contract_size_survives_the_markets_table(dynamodb: Any) -> None:
    # Given order_sync storing okx's perpetual (rules in BTC, 0.01 BTC per contract) and a spot market
    perp = MarketPrecision("BTC/USDT:USDT", D("0.1"), D("0.0001"), D("0.0001"), D(0), contract_size=D("0.01"))
    spot = MarketPrecision("BTC/USDT", D("0.01"), D("0.00001"), D("0.00001"), D(5))
    MarketStore().put_many("okx", [perp, spot], utcnow())
    # When they are read back, then each keeps its contract size
    assert MarketStore().get("okx", perp.symbol) == perp
    assert MarketStore().get("okx", spot.symbol) == spot


def test_a_market_stored_before_contract_sizes_reads_as_one(dynamodb: Any) -> None:
    # Given an item written without a contract size (before this change)
    model = bind(MarketModel)
    model(
        exchange="binance",
        symbol="ETH/USDT",
        tick=D("0.01"),
        step=D("0.0001"),
        min_qty=D("0.0001"),
        min_notional=D(5),
        refreshed_at=utcnow(),
    ).save()
    # When it is read, then it counts one base coin per unit
    market = MarketStore().get("binance", "ETH/USDT")
    assert market is not None and market.contract_size == D(1)
