"""The stores a service works with, built once per process (Lambda container or local runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from engine.store import (
    EquityStore,
    GroupStore,
    MarketStore,
    OrderStore,
    PaperOrderStore,
    PoolStore,
    PriceStore,
    QueueStore,
    RiskActionStore,
    SignalAudit,
    StateStore,
)


@dataclass(frozen=True)
class Stores:
    """Every table the services touch, each through its store."""

    groups: GroupStore
    orders: OrderStore
    pool: PoolStore
    queue: QueueStore
    signals: SignalAudit
    risk_actions: RiskActionStore
    equity: EquityStore
    markets: MarketStore
    prices: PriceStore
    paper: PaperOrderStore
    state: StateStore


@cache
def stores() -> Stores:
    """The process-wide stores (they hold no connection state of their own)."""
    return Stores(
        groups=GroupStore(),
        orders=OrderStore(),
        pool=PoolStore(),
        queue=QueueStore(),
        signals=SignalAudit(),
        risk_actions=RiskActionStore(),
        equity=EquityStore(),
        markets=MarketStore(),
        prices=PriceStore(),
        paper=PaperOrderStore(),
        state=StateStore(),
    )
