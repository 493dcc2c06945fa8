"""Scenario helpers for the position / closing / slot / lifecycle integration tests.

- :func:`engine_env`: live config seeded in (moto) SSM with no cache, so an edit counts at once; returns
  the test's :class:`EngineContext`, injected (``use_engine_context``) until the test ends, so
  ``engine_context()`` — in the test and in every handler it invokes — is that context.
- :func:`engine_session`: the same under a test's own config prefix, with the gateway cache dropped.
- :func:`inject`: make another context (e.g. ``dataclasses.replace(ctx, clock=...)``) the current one.
- :class:`SwitchableGateways`: the gateway factory of the test context; ``install`` one gateway for
  every account (``tests.support.fake_exchange.install_exchange``).
- :func:`set_document`: edit one config document (merged over its current value).
- :func:`open_group`: a group opened exactly as the webhook would (pre-trade + grid + pool).
- :func:`fill` / :func:`cancel`: what order_sync / order_executor record after the exchange acted.
- :func:`queue_entry`: a queued entry signal as the webhook stores it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from engine.app.context import (
    EngineContext,
    LiveGateways,
    Stores,
    engine_context,
    live_context,
    use_engine_context,
)
from engine.app.gateways import clear_gateway_cache
from engine.app.intake import EntryRequest, evaluate_new_group
from engine.config import clear_cache, seed_defaults
from engine.config.settings import config_prefix
from engine.domain.config import ConfigSnapshot
from engine.domain.models import CloseReason, Group, Order, OrderPurpose, OrderStatus, QueueEntry, Side
from engine.exchange.gateway import ExchangeGateway
from engine.store import OpenResult

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


class SwitchableGateways:
    """A gateway factory for tests: the installed gateway for every account, else the live factory."""

    def __init__(self, live: LiveGateways) -> None:
        self.live = live
        self.gateway: ExchangeGateway | None = None

    def install(self, gateway: ExchangeGateway) -> None:
        """Answer ``gateway`` for every account from now on."""
        self.gateway = gateway

    def __call__(self, exchange: str, config: ConfigSnapshot) -> ExchangeGateway:
        return self.gateway if self.gateway is not None else self.live(exchange, config)


_injected = ExitStack()


def inject(ctx: EngineContext) -> EngineContext:
    """Make ``ctx`` what ``engine_context()`` returns until the test ends (see :func:`release`)."""
    _injected.enter_context(use_engine_context(ctx))
    return ctx


def release() -> None:
    """Undo every :func:`inject` (the integration conftest calls it after each test)."""
    _injected.close()


def engine_env(
    monkeypatch: pytest.MonkeyPatch, *, clock: Callable[[], datetime] | None = None
) -> EngineContext:
    """Seed the default config (read fresh on every call) and inject a fresh test context (live config,
    :class:`SwitchableGateways`, ``clock`` or the wall clock); returns it. Needs mock_aws."""
    monkeypatch.setenv("CONFIG_MAX_AGE_SECONDS", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EngineTest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    clear_cache()
    seed_defaults(overwrite=True)
    clear_cache()
    release()
    live = live_context()
    ctx = EngineContext(
        stores=live.stores,
        config=live.config,
        gateways=SwitchableGateways(LiveGateways(live.stores)),
        clock=clock or live.clock,
    )
    return inject(ctx)


@contextmanager
def engine_session(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Iterator[EngineContext]:
    """:func:`engine_env` under config ``prefix``; the process-wide gateway cache is dropped around it."""
    monkeypatch.setenv("CONFIG_PREFIX", prefix)
    clear_gateway_cache()
    try:
        yield engine_env(monkeypatch)
    finally:
        clear_cache()
        clear_gateway_cache()


def set_document(name: str, **fields: Any) -> None:
    """Merge ``fields`` into config document ``name`` in SSM (a new version) and drop the cache."""
    ssm = boto3.client("ssm", region_name="us-east-1")
    parameter = config_prefix() + name
    try:
        current = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        current = {}
    current.update(fields)
    ssm.put_parameter(Name=parameter, Value=json.dumps(current), Type="String", Overwrite=True)
    clear_cache()


def entry_request(
    *,
    symbol: str = "BTC/USDT",
    price: str = "100",
    timeframe: int = 60,
    side: Side = Side.LONG,
    candle: int = 1,
    signal_id: str | None = None,
    group_id: str | None = None,
) -> EntryRequest:
    """An entry on the binance paper account."""
    return EntryRequest(
        exchange="binance",
        symbol=symbol,
        timeframe=timeframe,
        side=side,
        entry_price=Decimal(price),
        signal_capital=None,
        candle=candle,
        signal_id=signal_id or f"sig-{symbol}-{candle}",
        group_id=group_id,
    )


def open_group(st: Stores, now: datetime = T0, **request: Any) -> tuple[Group, list[Order]]:
    """Open a group as the webhook does: pre-trade checks, the grid, then the pool transaction."""
    ctx = engine_context()
    config = ctx.config.snapshot()
    decision = evaluate_new_group(ctx, entry_request(**request), config, now)
    assert decision.action == "accept" and decision.plan is not None, decision.reason
    result = st.pool.open_group(
        decision.plan.group, decision.plan.orders, max_open=config.pool.max_open_groups
    )
    assert result is OpenResult.OPENED
    return decision.plan.group, decision.plan.orders


def group_of(st: Stores, group_id: str) -> Group:
    """The stored group (it must exist)."""
    group = st.groups.get(group_id)
    assert group is not None, group_id
    return group


def entries_of(st: Stores, group_id: str) -> list[Order]:
    """The group's entry legs, by pyramid and leg."""
    legs = [o for o in st.orders.list_for_group(group_id) if o.purpose == OrderPurpose.ENTRY]
    return sorted(legs, key=lambda o: (o.pyramid or 0, o.leg or 0))


def orders_of(st: Stores, group_id: str, purpose: OrderPurpose) -> list[Order]:
    """The group's orders of one purpose, by id."""
    return sorted((o for o in st.orders.list_for_group(group_id) if o.purpose == purpose), key=lambda o: o.id)


def fill(
    st: Stores,
    order_id: str,
    *,
    price: str,
    quantity: Decimal | str | None = None,
    at: datetime = T0,
    fee_rate: str = "0",
) -> Order:
    """Record a (cumulative) fill of ``quantity`` (default: all) at ``price`` as order_sync would."""
    order = st.orders.get(order_id)
    assert order is not None, order_id
    filled = order.amount if quantity is None else Decimal(str(quantity))
    order.filled = filled
    order.average = Decimal(price)
    order.cost = filled * Decimal(price)
    order.fee_cost = order.cost * Decimal(fee_rate)
    order.fee_currency = "USDT"
    order.status = OrderStatus.FILLED if filled >= order.amount else OrderStatus.PARTIALLY_FILLED
    order.exchange_status = "closed" if filled >= order.amount else "open"
    order.last_fill_at = at
    st.orders.save(order, now=at)
    return order


def cancel(st: Stores, order_id: str, now: datetime = T0) -> Order:
    """Record an order as cancelled (what order_executor does after cancelling on the exchange)."""
    order = st.orders.get(order_id)
    assert order is not None, order_id
    order.status = OrderStatus.CANCELLED
    order.exchange_status = "canceled"
    st.orders.save(order, now=now)
    return order


def close_flat(st: Stores, group_id: str, now: datetime = T0) -> None:
    """Close a group that holds nothing: exit, the executor cancels, position_update closes it."""
    from engine.app.positions import refresh_group, request_close

    ctx = engine_context()
    request_close(ctx, group_id, reason=CloseReason.EXIT, note="exit signal", now=now)
    cancel_requested(st, group_id, now)
    refresh_group(ctx, group_id, now)


def cancel_requested(st: Stores, group_id: str, now: datetime = T0) -> None:
    """Cancel every live order of the group that has ``cancel_requested`` (the executor's job)."""
    for order in st.orders.list_for_group(group_id):
        if order.cancel_requested and order.is_live:
            cancel(st, order.id, now)


def queue_entry(
    st: Stores,
    entry_id: str,
    *,
    symbol: str = "ETH/USDT",
    price: str = "2000",
    timeframe: int = 60,
    queued_minutes_ago: int = 10,
    replacements: int = 0,
    candle: int = 1,
    pyramid_continuation: bool = False,
    now: datetime = T0,
) -> QueueEntry:
    """Queue an entry signal as the webhook does (pool full)."""
    queued_at = now - timedelta(minutes=queued_minutes_ago)
    entry = QueueEntry(
        id=entry_id,
        exchange="binance",
        symbol=symbol,
        timeframe=timeframe,
        side=Side.LONG,
        entry_price=Decimal(price),
        candle=candle,
        payload={"signal_id": f"sig-{entry_id}", "signal_capital": None},
        queued_at=queued_at,
        updated_at=queued_at,
        replacement_count=replacements,
        pyramid_continuation=pyramid_continuation,
    )
    assert st.queue.enqueue(entry)
    return entry
