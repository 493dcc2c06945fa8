"""The engine context: what a use case works with, built once per process and passed down explicitly.

``EngineContext`` bundles the stores, the configuration reader, the exchange gateway factory and the
clock. Handlers (``functions/*/handler.py``), the operator API and the local runtime get it from
:func:`engine_context` once per invocation and hand it to one use-case entry point; nothing below reads
the configuration, the clock or a gateway on its own.

Injection seam (tests, local tooling): :func:`use_engine_context` makes :func:`engine_context` return a
given context for the duration of a ``with`` block, e.g.
``with use_engine_context(dataclasses.replace(engine_context(), clock=lambda: T0)): handler(...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Protocol

from engine.config import DcaSelection, load_config, load_dca
from engine.domain.config import ConfigSnapshot
from engine.domain.models import utcnow
from engine.exchange.gateway import ExchangeGateway
from engine.store import (
    ControlStore,
    CounterStore,
    EquityStore,
    EventStore,
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

__all__ = [
    "ConfigReader",
    "EngineContext",
    "GatewayFactory",
    "LiveConfig",
    "LiveGateways",
    "Stores",
    "engine_context",
    "live_context",
    "stores",
    "use_engine_context",
]


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
    #: Per-account counters and the pre-trade checks' one read (pool table).
    counters: CounterStore = field(default_factory=CounterStore)
    #: The operator's engine control (pause/resume; pool table).
    control: ControlStore = field(default_factory=ControlStore)
    #: The append-only event log (DESIGN §1).
    events: EventStore = field(default_factory=EventStore)


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


class ConfigReader(Protocol):
    """Where a use case reads the live configuration (cached and versioned by the implementation)."""

    def snapshot(self) -> ConfigSnapshot:
        """The shared documents (engine, pool, queue, risk) with their versions and problems."""
        ...

    def dca(self, exchange: str, symbol: str, timeframe: int) -> DcaSelection:
        """The DCA settings of a market (``dca/<exchange>/<symbol>/<tf>`` else ``dca/default``)."""
        ...


class GatewayFactory(Protocol):
    """Builds (or reuses) the exchange gateway of account ``exchange`` under ``config``."""

    def __call__(self, exchange: str, config: ConfigSnapshot) -> ExchangeGateway: ...


class LiveConfig:
    """The SSM configuration through ``engine.config`` (Powertools cache, ``CONFIG_MAX_AGE_SECONDS``)."""

    def snapshot(self) -> ConfigSnapshot:
        """See :meth:`ConfigReader.snapshot`."""
        return load_config()

    def dca(self, exchange: str, symbol: str, timeframe: int) -> DcaSelection:
        """See :meth:`ConfigReader.dca`; an account's DCA documents are its exchange's (DESIGN §3.10)."""
        return load_dca(load_config().engine.exchange_of(exchange), symbol, timeframe)


@dataclass(frozen=True)
class LiveGateways:
    """The process-cached gateways of ``engine.app.gateways``, bound to ``stores`` (paper book, prices)."""

    stores: Stores

    def __call__(self, exchange: str, config: ConfigSnapshot) -> ExchangeGateway:
        """See :class:`GatewayFactory`. The gateways module (exchange factory, credentials) is imported on
        first use: the webhook never talks to an exchange, so its cold start skips it."""
        from engine.app.gateways import gateway_for_exchange

        return gateway_for_exchange(self.stores, exchange, config)


@dataclass(frozen=True)
class EngineContext:
    """Everything a use case needs from outside: stores, configuration, gateways and the clock."""

    stores: Stores
    config: ConfigReader
    gateways: GatewayFactory
    clock: Callable[[], datetime] = utcnow

    def now(self) -> datetime:
        """The current time (UTC) on this context's clock."""
        return self.clock()


def live_context(the_stores: Stores | None = None) -> EngineContext:
    """A context over the live configuration, cached gateways and the wall clock (``stores()`` by default)."""
    bound = the_stores if the_stores is not None else stores()
    return EngineContext(stores=bound, config=LiveConfig(), gateways=LiveGateways(bound), clock=utcnow)


@cache
def _default_context() -> EngineContext:
    return live_context()


_override: list[EngineContext] = []
_override_lock = threading.Lock()


def engine_context() -> EngineContext:
    """The context of this process: the innermost :func:`use_engine_context` one, else the live one."""
    with _override_lock:
        if _override:
            return _override[-1]
    return _default_context()


@contextmanager
def use_engine_context(ctx: EngineContext) -> Iterator[EngineContext]:
    """Make :func:`engine_context` return ``ctx`` inside the block (the injection seam for tests)."""
    with _override_lock:
        _override.append(ctx)
    try:
        yield ctx
    finally:
        with _override_lock:
            for index in range(len(_override) - 1, -1, -1):
                if _override[index] is ctx:
                    del _override[index]
                    break
