"""Core trading vocabulary shared by every layer: states, orders, groups, pyramids, queue entries.

Pure Python: no boto3, pynamodb or ccxt. Money, prices and quantities are ``Decimal``; times are
timezone-aware UTC ``datetime``. Stored orders mirror ccxt's order fields (``amount``, ``price``,
``filled``, ``average``, ``cost``, ``fee``) plus our own (group, pyramid, leg, purpose, status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Side(StrEnum):
    """Direction of a position group."""

    LONG = "long"
    SHORT = "short"


class OrderSide(StrEnum):
    """Exchange side of one order (ccxt's ``side``)."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Exchange order type (ccxt's ``type``)."""

    LIMIT = "limit"
    MARKET = "market"


class OrderPurpose(StrEnum):
    """Why the engine placed an order."""

    ENTRY = "entry"
    TP = "tp"
    EXIT = "exit"
    RISK_CLOSE = "risk_close"


class OrderWait(StrEnum):
    """What a live order is waiting for, when it waits on the engine (cleared once the exchange answers).

    The order's ``reason`` says the same to people; behaviour is decided by this field.
    """

    #: A send placed nothing (back-off, network): the executor retries.
    NOT_SENT = "not_sent"
    #: A cancel did not go through (back-off, network): retried.
    CANCEL_PENDING = "cancel_pending"
    #: order_sync re-drove a pending order that made no progress: look it up before creating it.
    REDRIVEN = "redriven"


class OrderStatus(StrEnum):
    """Our lifecycle of an order (DESIGN §3.5); ccxt's own value is kept as ``exchange_status``."""

    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


#: Orders that may still trade (or whose outcome is not yet known).
LIVE_ORDER_STATUSES = frozenset(
    {OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN}
)
#: Orders that will never change again.
FINAL_ORDER_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


class GroupStatus(StrEnum):
    """Lifecycle of a position group (DESIGN §3.5)."""

    LIVE = "live"
    PARTIALLY_FILLED = "partially_filled"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


#: Groups that hold a pool slot.
OPEN_GROUP_STATUSES = frozenset(
    {GroupStatus.LIVE, GroupStatus.PARTIALLY_FILLED, GroupStatus.ACTIVE, GroupStatus.CLOSING}
)
TERMINAL_GROUP_STATUSES = frozenset({GroupStatus.CLOSED, GroupStatus.FAILED})


class CloseReason(StrEnum):
    """Why a group closed (DESIGN §3.5): a code; the human text goes in ``Group.close_note``."""

    TAKE_PROFIT = "take_profit"
    EXIT = "exit"
    RISK = "risk"
    OPERATOR = "operator"
    STOP_LOSS = "stop_loss"
    TRAILING_TAKE_PROFIT = "trailing_take_profit"
    TRAILING_STOP = "trailing_stop"
    BREAKEVEN_STOP = "breakeven_stop"
    TIME_LIMIT = "time_limit"
    FAILED = "failed"


#: Purpose of the market order that closes a group for each reason (the rest close with ``exit``).
_CLOSE_PURPOSES: dict[CloseReason, OrderPurpose] = {
    CloseReason.TAKE_PROFIT: OrderPurpose.TP,
    CloseReason.RISK: OrderPurpose.RISK_CLOSE,
}


def close_purpose(reason: CloseReason | None) -> OrderPurpose:
    """Purpose of the close order of a group closing for ``reason``.

    ``take_profit`` -> ``tp``, ``risk`` -> ``risk_close``; everything else (exit signal, operator,
    protections, a missing reason) -> ``exit``.
    """
    if reason is None:
        return OrderPurpose.EXIT
    return _CLOSE_PURPOSES.get(CloseReason(reason), OrderPurpose.EXIT)


class TpMode(StrEnum):
    """Take-profit modes (DESIGN §3.4)."""

    PER_LEG = "per_leg"
    AGGREGATE = "aggregate"
    HYBRID = "hybrid"
    PYRAMID_AGGREGATE = "pyramid_aggregate"


class Outcome(StrEnum):
    """What the webhook did with a signal (DESIGN §3.1)."""

    OPENED = "opened"
    PYRAMIDED = "pyramided"
    QUEUED = "queued"
    REPLACED = "replaced"
    EXITED = "exited"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True)
class MarketPrecision:
    """Trading rules of one market: price tick, quantity step and the exchange minimums.

    Quantities (``step``, ``min_qty``) are in the base coin, as everywhere in the engine. A contract
    market (swap) trades whole ``contract_size``-sized contracts: the gateway converts base quantities
    to contracts on the way out and back on the way in (DESIGN §3.5); 1 for spot.
    """

    symbol: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    contract_size: Decimal = Decimal(1)


@dataclass(frozen=True)
class Fill:
    """One entry of an order's fill ledger (DESIGN §3.5): an observed increase of ``filled``.

    ``price`` is the price of this increment ((new cost - old cost) / increment), ``fee`` the increase
    of the order's fee in ``fee_currency`` and ``fee_usd`` that fee in USD when it was known at record
    time (a third coin such as BNB converted at its ``/USDT`` ticker); ``None`` for old or unconverted
    entries (the accounting then values a base-coin fee at ``price`` and any other fee at face value).
    """

    quantity: Decimal
    price: Decimal
    at: datetime
    fee: Decimal = ZERO
    fee_currency: str | None = None
    fee_usd: Decimal | None = None

    @property
    def cost(self) -> Decimal:
        """Quote value of the fill: quantity * price."""
        return self.quantity * self.price


def group_key(exchange: str, symbol: str, timeframe: int, side: Side | str) -> str:
    """Identity of a group (DESIGN §3.2): at most one non-terminal group per key."""
    return f"{exchange.lower()}#{symbol}#{timeframe}#{Side(side).value}"


@dataclass
class Order:
    """One exchange order as the engine stores it (ccxt's fields plus our own)."""

    id: str
    group_id: str
    exchange: str
    symbol: str
    purpose: OrderPurpose
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None
    client_order_id: str
    status: OrderStatus = OrderStatus.PENDING
    pyramid: int | None = None
    leg: int | None = None
    filled: Decimal = ZERO
    average: Decimal | None = None
    cost: Decimal = ZERO
    fee_cost: Decimal = ZERO
    fee_currency: str | None = None
    exchange_order_id: str | None = None
    exchange_status: str | None = None
    reason: str | None = None
    #: Set while the order waits on the engine (a retry, a re-drive); ``reason`` says it to people.
    wait: OrderWait | None = None
    #: Price-triggered market leg: sent by order_sync once the price reaches this level.
    trigger_price: Decimal | None = None
    #: TP percent attached to an entry leg (per_leg mode) or None.
    tp_percent: Decimal | None = None
    #: For a TP: the entry leg order it takes profit on.
    parent_order_id: str | None = None
    cancel_requested: bool = False
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    last_fill_at: datetime | None = None
    version: int = 0
    #: Fill ledger (DESIGN §3.5), oldest first; empty on orders recorded before the ledger existed.
    fills: list[Fill] = field(default_factory=list)
    #: Total fee in USD (a third-coin fee converted when recorded); None when not known.
    fee_usd: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        """Quantity not yet filled."""
        return max(self.amount - self.filled, ZERO)

    @property
    def is_live(self) -> bool:
        """True while the order may still trade."""
        return self.status in LIVE_ORDER_STATUSES


@dataclass
class Pyramid:
    """One entry of a group: its own DCA grid from its own entry price (DESIGN §3.2)."""

    index: int
    entry_price: Decimal
    capital_usd: Decimal
    candle: int
    leg_count: int
    created_at: datetime = field(default_factory=utcnow)
    signal_id: str | None = None
    #: The alert's ``risk.max_slippage_percent``: the executor refuses a market entry leg whose current
    #: price is that much worse than ``entry_price`` (DESIGN §3.9). None = no limit.
    max_slippage_percent: Decimal | None = None


@dataclass
class ProtectionState:
    """What the protections (DESIGN §3.9) keep on a group between sync passes, and what they show.

    Set by the alert: ``alert_stop`` / ``alert_take_profit`` (absolute prices, ``risk.stop_loss`` /
    ``risk.take_profit``), recorded with the pyramid whose alert set them and the DCA document version
    in force then (``alert_pyramid``, ``alert_config_version``); a later pyramid alert carrying a stop
    replaces it.

    Kept by the evaluation (``engine.domain.protection``), changed only in whole ticks so price noise is
    never saved: ``stop_armed`` (the stop-loss stays armed once armed), ``trailing_armed`` and ``high``
    (the trailing take-profit's best price since it armed: highest for long, lowest for short; with
    ``trailing_pyramids`` the pyramid count it armed with), ``trailing_stop`` (the trailing stop's price,
    never moved against the position).

    Derived on each evaluation for the views (they change only with fills, marks or config):
    ``stop_price`` / ``stop_rule`` (the ruling stop and which rule set it), ``trail_price`` (where the
    trailing take-profit closes) and ``expires_at`` (the time limit).
    """

    alert_stop: Decimal | None = None
    alert_take_profit: Decimal | None = None
    alert_pyramid: int | None = None
    alert_config_version: int | None = None
    stop_armed: bool = False
    trailing_armed: bool = False
    trailing_pyramids: int | None = None
    high: Decimal | None = None
    trailing_stop: Decimal | None = None
    stop_price: Decimal | None = None
    stop_rule: str | None = None
    trail_price: Decimal | None = None
    expires_at: datetime | None = None


@dataclass
class GroupFigures:
    """A group's position recomputed from its filled orders (DESIGN §3.5)."""

    quantity: Decimal = ZERO
    avg_entry: Decimal = ZERO
    invested_usd: Decimal = ZERO
    realized_pnl_usd: Decimal = ZERO
    unrealized_pnl_usd: Decimal = ZERO
    unrealized_pnl_percent: Decimal = ZERO
    fees_usd: Decimal = ZERO
    filled_legs: int = 0
    total_legs: int = 0
    last_price: Decimal | None = None
    #: Realised PnL (net of fees) by UTC day of the closing fills, ISO date -> USD.
    realized_by_day: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Counted:
    """What one group adds to its account's counters (computed by ``engine.domain.counters``)."""

    account: str
    symbol: str
    open_groups: int = 0
    exposure_usd: Decimal = ZERO
    realized_by_day: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass
class Group:
    """A position group: one key, one or more pyramids, figures recomputed from orders."""

    id: str
    exchange: str
    symbol: str
    timeframe: int
    side: Side
    status: GroupStatus
    pyramids: list[Pyramid] = field(default_factory=list)
    figures: GroupFigures = field(default_factory=GroupFigures)
    tp_mode: TpMode = TpMode.PER_LEG
    tp_aggregate_percent: Decimal = Decimal(1)
    config_versions: dict[str, int] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    closed_at: datetime | None = None
    #: Set when the risk timer started (DESIGN §3.8); None when not running.
    risk_timer_started_at: datetime | None = None
    risk_blocked: bool = False
    risk_skip_once: bool = False
    #: Why the group closed (a code, DESIGN §3.5); ``close_note`` holds the human text.
    close_reason: CloseReason | None = None
    close_note: str | None = None
    #: Stop-loss / trailing / time-limit state (DESIGN §3.9).
    protection: ProtectionState = field(default_factory=ProtectionState)
    version: int = 0
    #: What the stored version adds to the per-account counters (set by the store when read; None for
    #: a group not stored yet). A write adds ``counted_of(new) - counted`` (``engine.domain.counters``).
    counted: Counted | None = field(default=None, compare=False, repr=False)
    #: The status of the stored version (set by the store when read or written; None for a group not
    #: stored yet): a write that changes it records a group event (``engine.domain.events``).
    stored_status: GroupStatus | None = field(default=None, compare=False, repr=False)
    #: The account holding the group (DESIGN §3.10); empty = the account named like its exchange.
    account: str = ""

    def __post_init__(self) -> None:
        if not self.account:
            self.account = self.exchange.strip().lower()

    @property
    def key(self) -> str:
        """The group's identity key (exchange, symbol, timeframe, side)."""
        return group_key(self.exchange, self.symbol, self.timeframe, self.side)

    @property
    def is_open(self) -> bool:
        """True while the group holds a pool slot."""
        return self.status in OPEN_GROUP_STATUSES

    @property
    def pyramid_count(self) -> int:
        """Entries so far, including the first."""
        return len(self.pyramids)

    @property
    def last_candle(self) -> int | None:
        """Candle of the newest pyramid."""
        return self.pyramids[-1].candle if self.pyramids else None


@dataclass
class QueueEntry:
    """A valid entry signal waiting for a pool slot (DESIGN §3.6)."""

    id: str
    exchange: str
    symbol: str
    timeframe: int
    side: Side
    entry_price: Decimal
    candle: int
    payload: dict[str, object]
    queued_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    replacement_count: int = 0
    #: True when an open group of the same key exists (a pyramid waiting for the pool).
    pyramid_continuation: bool = False
    #: Why it was queued (pool full, daily-loss breaker, ...).
    reason: str = "pool full"

    @property
    def key(self) -> str:
        """The key of the group this entry would open or extend."""
        return group_key(self.exchange, self.symbol, self.timeframe, self.side)


@dataclass
class ExchangeOrder:
    """An order as an exchange reports it (a subset of ccxt's unified order structure).

    ``status`` is ccxt's value: ``open``, ``closed``, ``canceled``, ``expired`` or ``rejected``.
    """

    id: str
    client_order_id: str
    exchange: str
    symbol: str
    side: OrderSide
    type: OrderType
    amount: Decimal
    price: Decimal | None
    status: str
    filled: Decimal = ZERO
    average: Decimal | None = None
    cost: Decimal = ZERO
    fee_cost: Decimal = ZERO
    fee_currency: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    last_trade_at: datetime | None = None

    @property
    def remaining(self) -> Decimal:
        """Quantity not yet filled."""
        return max(self.amount - self.filled, ZERO)
