"""Planning entries (DESIGN §3.2, §3.3, §3.7): a new group with its first pyramid, or a further pyramid.

Shared by the webhook, slot_release promotion, the order_sync queue sweep and the operator's promote.
Nothing here writes: callers persist the plan (``PoolStore.open_group`` / ``hand_over_slot`` /
``GroupStore.add_pyramid``) so the slot, the group and its legs appear in one transaction.

Decisions written down here:

- **Open exposure** (the ``engine.max_total_exposure_usd`` cap) = the account's committed capital: the
  ``acct#`` counter (DESIGN §1), Σ ``capital_usd`` of every pyramid of its open groups, committed when
  accepted and released when the group closes or fails. The checks read it with the rest of their
  inputs in ONE strongly consistent batch read (``CounterStore.entry_state``: the key's locks, the pool
  counter, the account's counters, the market); the opening transaction re-checks the cap as a
  condition, so two entries that each fit alone cannot both pass it.
- **Market precision**: the markets table (refreshed from the exchange by order_sync), else — for a paper
  account only — the paper exchange's own market table (``engine.exchange.markets``, ccxt-free, plus
  ``engine.paper.markets``); else unknown (the webhook answers 400 ``unknown_symbol``).
- **Ids**: a group id is the request's ``group_id`` when given (the webhook derives one from the signal's
  idempotency key, a promotion uses the queue entry id, so a retried write finds its own earlier work) or
  a fresh uuid4 hex. Leg orders are ``<group id>-p<k>-l<n>`` (k pyramid, n leg, both 1-based) with the
  client order id derived from that (``engine.exchange.client_ids``).
- **Market legs** keep the grid's reference price in ``Order.price`` (gateways ignore the price of a
  market order); waiting legs carry ``trigger_price`` and are sent by order_sync when it is reached.
- **Pyramids and the pool**: :func:`plan_pyramid` never queues. Whether a pyramid needs a slot
  (``pool.pyramids_bypass`` false) is the caller's check. The daily loss breaker queues new groups and
  rejects pyramids (DESIGN §3.7, ``engine.domain.pretrade``); :func:`pyramid_breaker` lets a caller refuse a
  pyramid before it would queue it for a slot.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from engine.app.context import EngineContext, Stores
from engine.config import DcaSelection
from engine.domain.config import ConfigSnapshot, DcaConfig, DcaLevel
from engine.domain.counters import account_of
from engine.domain.grid import GridPlan, GridRejected, build_grid, pyramid_settings, resolve_capital
from engine.domain.models import (
    Group,
    GroupFigures,
    GroupStatus,
    MarketPrecision,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    ProtectionState,
    Pyramid,
    QueueEntry,
    Side,
    group_key,
)
from engine.domain.pretrade import breaker_reason, check_entry
from engine.exchange.client_ids import client_order_id
from engine.exchange.markets import paper_markets
from engine.store import EntryState

EntryAction = Literal["accept", "queue", "reject"]
#: Capital before the exposure cap is applied (the cap is applied by the pre-trade checks).
_UNCAPPED = Decimal("Infinity")


class EntryRefused(Exception):
    """A pyramid (or promotion) that cannot be placed; ``reason`` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EntryRequest:
    """An entry to place: what the signal asked for, normalised.

    ``entry_price`` is the signal's price (or the current price when it had none); ``signal_capital``
    the capital its ``order_size`` asks for in USD (None = use the DCA document's); ``payload`` is kept
    with a queued entry (see :meth:`queue_payload`).
    """

    exchange: str
    symbol: str
    timeframe: int
    side: Side
    entry_price: Decimal
    signal_capital: Decimal | None
    candle: int
    payload: dict[str, object] = field(default_factory=dict)
    signal_id: str | None = None
    #: Id of the group to create (None = a fresh uuid4 hex).
    group_id: str | None = None
    #: The route's size multiplier (DESIGN §3.10): scales the DCA document's capital when the signal has
    #: no ``order_size`` (``signal_capital`` is already scaled).
    size_multiplier: Decimal = Decimal(1)

    def _alert_price(self, name: str) -> Decimal | None:
        """The signal's ``risk.<name>`` kept in ``payload["signal"]`` (also for a queued entry), or None."""
        signal = self.payload.get("signal")
        value = signal.get(name) if isinstance(signal, dict) else None
        return None if value is None or value == "" else Decimal(str(value))

    @property
    def stop_loss(self) -> Decimal | None:
        """The alert's absolute ``risk.stop_loss`` (DESIGN §3.9), or None."""
        return self._alert_price("stop_loss")

    @property
    def take_profit(self) -> Decimal | None:
        """The alert's absolute ``risk.take_profit``, or None."""
        return self._alert_price("take_profit")

    @property
    def max_slippage_percent(self) -> Decimal | None:
        """The alert's ``risk.max_slippage_percent`` for its market entry legs, or None."""
        return self._alert_price("max_slippage_percent")

    @property
    def key(self) -> str:
        """The key of the group this entry opens or extends."""
        return group_key(self.exchange, self.symbol, self.timeframe, self.side)

    def queue_payload(self) -> dict[str, object]:
        """The payload to store with a queue entry: ours plus what :meth:`from_queue` needs back."""
        capital = None if self.signal_capital is None else str(self.signal_capital)
        payload = {**self.payload, "signal_id": self.signal_id, "signal_capital": capital}
        if self.size_multiplier != 1:
            payload["size_multiplier"] = str(self.size_multiplier)
        return payload

    @classmethod
    def from_queue(cls, entry: QueueEntry) -> EntryRequest:
        """The request of a queued entry; its group id is the queue entry id (a replayed promotion
        then finds the group it already created)."""
        capital = entry.payload.get("signal_capital")
        signal_id = entry.payload.get("signal_id")
        multiplier = entry.payload.get("size_multiplier")
        return cls(
            exchange=entry.exchange,
            symbol=entry.symbol,
            timeframe=entry.timeframe,
            side=Side(entry.side),
            entry_price=entry.entry_price,
            signal_capital=None if capital in (None, "") else Decimal(str(capital)),
            candle=entry.candle,
            payload=dict(entry.payload),
            signal_id=None if signal_id is None else str(signal_id),
            group_id=entry.id,
            size_multiplier=Decimal(1) if multiplier in (None, "") else Decimal(str(multiplier)),
        )


@dataclass(frozen=True)
class PlannedGroup:
    """A new group (status live, one pyramid) and its pending leg orders, not yet stored."""

    group: Group
    orders: list[Order]


@dataclass(frozen=True)
class EntryDecision:
    """What to do with a new-group entry: accept (with the plan), queue or reject, and why."""

    action: EntryAction
    reason: str
    plan: PlannedGroup | None = None


def utc_day(now: datetime) -> str:
    """``now``'s UTC day as ``YYYY-MM-DD`` (the day counter's key)."""
    return now.astimezone(UTC).date().isoformat()


def read_entry_state(stores: Stores, exchange: str, symbol: str, key: str, now: datetime) -> EntryState:
    """The pre-trade checks' inputs for an entry of ``key``: one strongly consistent batch read."""
    name = exchange.strip().lower()
    return stores.counters.entry_state(
        key=key, account=account_of(name), symbol=symbol, day=utc_day(now), exchange=name
    )


def entry_precision(
    state: EntryState, exchange: str, symbol: str, config: ConfigSnapshot
) -> MarketPrecision | None:
    """The market read with ``state``, else (a paper account) the paper table, else None."""
    if state.market is not None:
        return state.market
    account = config.engine.account(exchange.strip().lower())
    if account is not None and account.mode == "paper":
        return paper_markets(config.engine.paper.markets).get(symbol)
    return None


def _config_problem(config: ConfigSnapshot, dca: DcaSelection) -> str | None:
    if config.refusal_reason:
        return config.refusal_reason
    if dca.problem:
        return f"configuration invalid: {dca.problem}"
    return None


def _unknown_market(req: EntryRequest) -> str:
    return f"unknown market {req.symbol} on {req.exchange}: no trading rules known"


def _leg_orders(group: Group, grid: GridPlan, now: datetime) -> list[Order]:
    """Pending entry orders of ``grid`` for ``group`` (buys for a long group, sells for a short one)."""
    group_id = group.id
    side = OrderSide.BUY if Side(group.side) == Side.LONG else OrderSide.SELL
    orders: list[Order] = []
    for leg in grid.legs:
        order_id = f"{group_id}-p{grid.pyramid}-l{leg.leg}"
        orders.append(
            Order(
                id=order_id,
                group_id=group_id,
                exchange=group.exchange,
                symbol=group.symbol,
                purpose=OrderPurpose.ENTRY,
                side=side,
                type=leg.type,
                amount=leg.amount,
                price=leg.price,
                client_order_id=client_order_id(order_id),
                status=OrderStatus.PENDING,
                pyramid=grid.pyramid,
                leg=leg.leg,
                trigger_price=leg.trigger_price,
                tp_percent=leg.tp_percent,
                created_at=now,
                updated_at=now,
            )
        )
    return orders


def _pyramid_record(req: EntryRequest, grid: GridPlan, now: datetime) -> Pyramid:
    return Pyramid(
        index=grid.pyramid,
        entry_price=req.entry_price,
        capital_usd=grid.capital_usd,
        candle=req.candle,
        leg_count=len(grid.legs),
        created_at=now,
        signal_id=req.signal_id,
        max_slippage_percent=req.max_slippage_percent,
    )


def alert_protection(
    state: ProtectionState, req: EntryRequest, pyramid: int, version: int
) -> ProtectionState:
    """``state`` with the alert's absolute stop / take-profit (DESIGN §3.9), recorded with the pyramid whose
    alert set them and the DCA document version in force; unchanged when the alert carries neither (a
    later pyramid alert's stop replaces the earlier one, one without a stop keeps it)."""
    stop, target = req.stop_loss, req.take_profit
    if stop is None and target is None:
        return state
    return dataclasses.replace(
        state,
        alert_stop=stop if stop is not None else state.alert_stop,
        alert_take_profit=target if target is not None else state.alert_take_profit,
        alert_pyramid=pyramid,
        alert_config_version=version,
    )


def realized_today(stores: Stores, exchange: str, now: datetime) -> Decimal:
    """The account's realised PnL of ``now``'s UTC day (the daily loss breaker's input; day counter)."""
    return stores.counters.realized_on(account_of(exchange), utc_day(now))


def pyramid_breaker(stores: Stores, config: ConfigSnapshot, now: datetime, exchange: str) -> str | None:
    """Why the daily loss breaker refuses a pyramid on ``exchange``'s account now, or None."""
    return breaker_reason(config.engine.for_account(exchange), realized_today(stores, exchange, now))


def _pool_load(
    state: EntryState, config: ConfigSnapshot, slot_available: bool | None, account: str
) -> tuple[int, int]:
    """(open, max) for ``account``'s pool check: a handed-over slot always fits, False means no slot."""
    pool_max = config.pool.max_open_for(account)
    if slot_available is True:
        return 0, max(pool_max, 1)
    if slot_available is False:
        return pool_max, pool_max
    return state.pool_open, pool_max


def _pyramid_levels_and_capital(
    dca: DcaConfig, index: int, signal_capital: Decimal | None, size_multiplier: Decimal = Decimal(1)
) -> tuple[list[DcaLevel], Decimal]:
    """Pyramid ``index``'s levels and the capital it asks for, before the exposure headroom shrinks it
    (the DCA document's capital scaled by the route's ``size_multiplier``; a signal's is scaled already)."""
    levels, override = pyramid_settings(dca, index)
    requested = resolve_capital(
        signal_capital=signal_capital,
        override_capital=override,
        default_capital=dca.capital_usd,
        headroom_usd=_UNCAPPED,
    )
    if signal_capital is None:
        requested = requested * size_multiplier
    return levels, requested


def evaluate_new_group(
    ctx: EngineContext,
    req: EntryRequest,
    config: ConfigSnapshot,
    now: datetime,
    *,
    slot_available: bool | None = None,
    state: EntryState | None = None,
) -> EntryDecision:
    """Run the pre-trade checks for a new group and, when they pass, plan it (group + leg orders).

    ``slot_available``: True when a slot is being handed over (the pool count is not checked), False when
    there is none, None to read the pool counter. Refusals: a configuration problem, engine paused, the
    per-symbol limit, no exposure headroom or a leg under the market minimums -> ``reject``; the daily loss
    breaker or a full pool -> ``queue``. The market's DCA document is read through ``ctx.config``.
    ``state``: the entry's batch read when the caller already made it (:func:`read_entry_state`).
    """
    stores = ctx.stores
    dca = ctx.config.dca(req.exchange, req.symbol, req.timeframe)
    problem = _config_problem(config, dca)
    if problem:
        return EntryDecision("reject", problem)
    if state is None:
        state = read_entry_state(stores, req.exchange, req.symbol, req.key, now)
    precision = entry_precision(state, req.exchange, req.symbol, config)
    if precision is None:
        return EntryDecision("reject", _unknown_market(req))
    account = account_of(req.exchange)
    pool_open, pool_max = _pool_load(state, config, slot_available, account)
    levels, requested = _pyramid_levels_and_capital(dca.config, 1, req.signal_capital, req.size_multiplier)
    decision = check_entry(
        engine=config.engine.for_account(account),
        is_pyramid=False,
        pool_bypass=config.pool.pyramids_bypass,
        pool_open=pool_open,
        pool_max=pool_max,
        open_on_symbol=state.symbol_open,
        open_exposure_usd=state.exposure_usd,
        requested_capital_usd=requested,
        realized_today_usd=state.realized_today_usd,
        config_problem=None,
        operator_paused=state.operator_paused,
    )
    if not decision.accepted:
        return EntryDecision(decision.action, decision.reason)
    try:
        grid = build_grid(
            side=req.side,
            pyramid=1,
            entry_price=req.entry_price,
            capital_usd=decision.capital_usd,
            levels=levels,
            precision=precision,
            entry_order_type=dca.config.entry_order_type,
        )
    except GridRejected as rejected:
        return EntryDecision("reject", rejected.reason)
    group_id = req.group_id or uuid.uuid4().hex
    group = Group(
        id=group_id,
        exchange=req.exchange,
        symbol=req.symbol,
        timeframe=req.timeframe,
        side=Side(req.side),
        status=GroupStatus.LIVE,
        pyramids=[_pyramid_record(req, grid, now)],
        figures=GroupFigures(total_legs=len(grid.legs)),
        tp_mode=dca.config.tp_mode,
        tp_aggregate_percent=dca.config.tp_aggregate_percent,
        config_versions={**config.versions, dca.document: dca.version},
        created_at=now,
        updated_at=now,
        protection=alert_protection(ProtectionState(), req, 1, dca.version),
    )
    return EntryDecision("accept", decision.reason, PlannedGroup(group, _leg_orders(group, grid, now)))


def plan_pyramid(
    ctx: EngineContext,
    group: Group,
    req: EntryRequest,
    config: ConfigSnapshot,
    now: datetime,
    *,
    state: EntryState | None = None,
) -> tuple[Pyramid, list[Order]]:
    """Plan pyramid k = ``group.pyramid_count + 1`` of ``group`` from ``req`` (its own entry price).

    Levels and capital come from ``dca.pyramids[k-1]`` when configured (the signal's ``order_size`` still
    wins for capital), shrunk to the exposure headroom. Raises :class:`EntryRefused` for a configuration
    problem, engine paused, the ``max_pyramids`` cap, no headroom, an unknown market or a leg under the
    minimums, or the daily loss breaker. The pool is not checked here (see the module doc). ``state``:
    the entry's batch read when the caller already made it. The alert's ``risk.stop_loss`` /
    ``risk.take_profit`` are recorded on ``group.protection`` (the caller saves it with the pyramid).
    """
    stores = ctx.stores
    dca = ctx.config.dca(group.exchange, group.symbol, group.timeframe)
    problem = _config_problem(config, dca)
    if problem:
        raise EntryRefused(problem)
    index = group.pyramid_count + 1
    if index > dca.config.max_pyramids:
        raise EntryRefused(
            f"pyramid cap reached: {group.pyramid_count} of max_pyramids {dca.config.max_pyramids}"
        )
    if state is None:
        state = read_entry_state(stores, group.exchange, group.symbol, group.key, now)
    precision = entry_precision(state, group.exchange, group.symbol, config)
    if precision is None:
        raise EntryRefused(_unknown_market(req))
    levels, requested = _pyramid_levels_and_capital(
        dca.config, index, req.signal_capital, req.size_multiplier
    )
    decision = check_entry(
        engine=config.engine.for_account(group.exchange),
        is_pyramid=True,
        pool_bypass=True,
        pool_open=0,
        pool_max=max(config.pool.max_open_for(account_of(group.exchange)), 1),
        open_on_symbol=state.symbol_open,
        open_exposure_usd=state.exposure_usd,
        requested_capital_usd=requested,
        realized_today_usd=state.realized_today_usd,
        config_problem=None,
        operator_paused=state.operator_paused,
    )
    if not decision.accepted:
        raise EntryRefused(decision.reason)
    try:
        grid = build_grid(
            side=group.side,
            pyramid=index,
            entry_price=req.entry_price,
            capital_usd=decision.capital_usd,
            levels=levels,
            precision=precision,
            entry_order_type=dca.config.entry_order_type,
        )
    except GridRejected as rejected:
        raise EntryRefused(f"pyramid {index}: {rejected.reason}") from rejected
    group.protection = alert_protection(group.protection, req, index, dca.version)
    return _pyramid_record(req, grid, now), _leg_orders(group, grid, now)
