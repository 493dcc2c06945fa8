"""pynamodb models of every table (private to ``engine.store``) and their runtime binding.

Table names come from environment variables read at call time (``<NAME>_TABLE``, default
``execution-engine-local-<name>``), so tests and the local runtime can point the store elsewhere by
changing the environment. The endpoint honours ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` and
the region ``AWS_REGION`` / ``AWS_DEFAULT_REGION``; :func:`bind` copies all of these onto the model's
``Meta`` before each use and drops the cached connection when the endpoint or region changed.
"""

from __future__ import annotations

import os
import threading
from typing import Any, TypeVar

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection, TableConnection
from pynamodb.exceptions import TableError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from engine.botocore_data import share_data_loader
from engine.domain.models import (
    GroupStatus,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderWait,
    Side,
    TpMode,
)
from engine.store.attributes import (
    DecimalAttribute,
    DecimalNumberAttribute,
    DocumentAttribute,
    DocumentListAttribute,
    EnumAttribute,
    UTCDateTimeAttribute,
)

TABLE_PREFIX_DEFAULT = "execution-engine-local-"

M = TypeVar("M", bound=Model)
_lock = threading.RLock()
# Every session (pynamodb's, boto3's in Powertools) parses botocore's data files once per process.
share_data_loader()

#: One botocore client per (endpoint, region), shared by every model: a client costs ~0.1 s to build.
_shared_connections: dict[tuple[str | None, str | None], Connection] = {}


class StoreModel(Model):
    """Base of the store's models: every table shares one pynamodb ``Connection`` (one botocore client)."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table_connection = super()._get_connection()
        meta: Any = cls.Meta
        with _lock:
            shared = _shared_connection(meta.host, meta.region)
            if table_connection.connection is not shared:
                try:
                    shared.get_meta_table(meta.table_name)
                except TableError:
                    shared.add_meta_table(table_connection.connection.get_meta_table(meta.table_name))
                table_connection.connection = shared
        return table_connection


class _Meta:
    """Shared Meta defaults: on-demand billing, generous connection pool for threaded callers."""

    billing_mode = "PAY_PER_REQUEST"
    max_pool_connections = 50
    host: str | None = None
    region: str | None = None


# ---------------------------------------------------------------- groups


class GroupsByStatus(GlobalSecondaryIndex["GroupModel"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = EnumAttribute(GroupStatus, hash_key=True)


class GroupsByClosedDay(GlobalSecondaryIndex["GroupModel"]):
    """Sparse: closed/failed groups by the UTC day they closed (the day counter's reconciliation)."""

    class Meta:
        index_name = "by_closed_day"
        projection = AllProjection()

    closed_day = UnicodeAttribute(hash_key=True)


class GroupModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "groups"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute()
    exchange = UnicodeAttribute()
    symbol = UnicodeAttribute()
    timeframe = NumberAttribute()
    side = EnumAttribute(Side)
    status = EnumAttribute(GroupStatus)
    pyramids = DocumentListAttribute()
    figures = DocumentAttribute()
    tp_mode = EnumAttribute(TpMode)
    tp_aggregate_percent = DecimalAttribute()
    config_versions = DocumentAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    closed_at = UTCDateTimeAttribute(null=True)
    risk_timer_started_at = UTCDateTimeAttribute(null=True)
    risk_blocked = BooleanAttribute(default=False)
    risk_skip_once = BooleanAttribute(default=False)
    #: A ``CloseReason`` code; items written before the codes hold ``"<purpose>: <text>"`` (see convert).
    close_reason = UnicodeAttribute(null=True)
    close_note = UnicodeAttribute(null=True)
    #: UTC day (``YYYY-MM-DD``) of ``closed_at``; absent while open (index ``by_closed_day``).
    closed_day = UnicodeAttribute(null=True)
    #: What this version of the group adds to the per-account counters (``engine.domain.counters``).
    counted = DocumentAttribute(null=True)
    #: Stop-loss / trailing / time-limit state (DESIGN §3.9; ``convert.protection_to_doc``).
    protection = DocumentAttribute(null=True)
    version = VersionAttribute()
    by_status = GroupsByStatus()
    by_closed_day = GroupsByClosedDay()


# ---------------------------------------------------------------- orders


class OrdersByGroup(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_group"
        projection = AllProjection()

    group_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class OrdersByStatus(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = EnumAttribute(OrderStatus, hash_key=True)


class OrderModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "orders"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    id = UnicodeAttribute(hash_key=True)
    group_id = UnicodeAttribute()
    exchange = UnicodeAttribute()
    symbol = UnicodeAttribute()
    purpose = EnumAttribute(OrderPurpose)
    side = EnumAttribute(OrderSide)
    type = EnumAttribute(OrderType)
    amount = DecimalAttribute()
    price = DecimalAttribute(null=True)
    client_order_id = UnicodeAttribute()
    status = EnumAttribute(OrderStatus)
    pyramid = NumberAttribute(null=True)
    leg = NumberAttribute(null=True)
    filled = DecimalAttribute()
    average = DecimalAttribute(null=True)
    cost = DecimalAttribute()
    fee_cost = DecimalAttribute()
    fee_currency = UnicodeAttribute(null=True)
    exchange_order_id = UnicodeAttribute(null=True)
    exchange_status = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    wait = EnumAttribute(OrderWait, null=True)
    trigger_price = DecimalAttribute(null=True)
    tp_percent = DecimalAttribute(null=True)
    parent_order_id = UnicodeAttribute(null=True)
    cancel_requested = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    last_fill_at = UTCDateTimeAttribute(null=True)
    #: Fill ledger (DESIGN §3.5): maps with Decimals as strings and UTC ISO times, oldest first.
    fills = DocumentListAttribute(null=True)
    fee_usd = DecimalAttribute(null=True)
    version = VersionAttribute()
    by_group = OrdersByGroup()
    by_status = OrdersByStatus()


# ---------------------------------------------------------------- queue and pool


class QueueByKey(GlobalSecondaryIndex["QueueModel"]):
    class Meta:
        index_name = "by_key"
        projection = AllProjection()

    key = UnicodeAttribute(hash_key=True)


class QueueModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "queue"

    id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute()
    exchange = UnicodeAttribute()
    symbol = UnicodeAttribute()
    timeframe = NumberAttribute()
    side = EnumAttribute(Side)
    entry_price = DecimalAttribute()
    candle = NumberAttribute()
    payload = DocumentAttribute()
    queued_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    replacement_count = NumberAttribute(default=0)
    pyramid_continuation = BooleanAttribute(default=False)
    reason = UnicodeAttribute()
    by_key = QueueByKey()


class PoolModel(StoreModel):
    """Pool table items: ``counter#<account>``, ``slot#<group id>``, ``key#<group key>``,
    ``queued#<group key>``, the per-account counters ``acct#``/``sym#``/``day#``
    (``engine.domain.counters``) and the operator control ``control#engine`` (``engine.store.control``)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "pool"

    pk = UnicodeAttribute(hash_key=True)
    #: Open-group count on the ``counter`` item (stored as ``count``; ``Model.count`` is taken).
    open_count = NumberAttribute(null=True, attr_name="count")
    group_id = UnicodeAttribute(null=True)
    key = UnicodeAttribute(null=True)
    entry_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    #: Per-account counters: open groups (``acct#``, ``sym#``), committed exposure (``acct#``), realised
    #: PnL (``day#``); ``counter_version`` goes up with every change (the reconciliation's condition).
    open_groups = NumberAttribute(null=True)
    exposure_usd = DecimalNumberAttribute(null=True)
    realized_usd = DecimalNumberAttribute(null=True)
    counter_version = NumberAttribute(null=True)
    counted_at = UTCDateTimeAttribute(null=True)
    #: Operator control item ``control#engine`` (``engine.store.control``).
    paused = BooleanAttribute(null=True)
    note = UnicodeAttribute(null=True)
    changed_at = UTCDateTimeAttribute(null=True)


# ---------------------------------------------------------------- audit


class EventsByGroup(GlobalSecondaryIndex["EventModel"]):
    """Sparse: a group's events in time order (``GET /events?group_id=``)."""

    class Meta:
        index_name = "by_group"
        projection = AllProjection()

    group_id = UnicodeAttribute(hash_key=True)
    at = UTCDateTimeAttribute(range_key=True)


class EventsByDay(GlobalSecondaryIndex["EventModel"]):
    """Every event by its UTC day, in time order (``GET /events?since=``)."""

    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    at = UTCDateTimeAttribute(range_key=True)


class EventModel(StoreModel):
    """The append-only event log (DESIGN §1); ids are deterministic (``engine.domain.events``)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "events"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    id = UnicodeAttribute(hash_key=True)
    at = UTCDateTimeAttribute()
    day = UnicodeAttribute()
    kind = UnicodeAttribute()
    name = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    group_id = UnicodeAttribute(null=True)
    account = UnicodeAttribute(null=True)
    symbol = UnicodeAttribute(null=True)
    side = UnicodeAttribute(null=True)
    timeframe = NumberAttribute(null=True)
    data = DocumentAttribute(null=True)
    by_group = EventsByGroup()
    by_day = EventsByDay()


class RiskActionModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "risk-actions"

    id = UnicodeAttribute(hash_key=True)
    at = UTCDateTimeAttribute()
    action = UnicodeAttribute()
    group_id = UnicodeAttribute(null=True)
    related_group_ids = DocumentListAttribute()
    amount_usd = DecimalAttribute(null=True)
    reason = UnicodeAttribute()
    details = DocumentAttribute()


class EquityModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "equity"

    series = UnicodeAttribute(hash_key=True)
    at = UTCDateTimeAttribute(range_key=True)
    realized_usd = DecimalAttribute()
    equity_usd = DecimalAttribute()


# ---------------------------------------------------------------- markets, prices, paper exchange


class MarketModel(StoreModel):
    """One market's precision; symbol ``#refreshed`` is the per-exchange refresh marker."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "markets"

    exchange = UnicodeAttribute(hash_key=True)
    symbol = UnicodeAttribute(range_key=True)
    tick = DecimalAttribute(null=True)
    step = DecimalAttribute(null=True)
    min_qty = DecimalAttribute(null=True)
    min_notional = DecimalAttribute(null=True)
    #: Base coin per contract of a swap market (absent: 1, a spot market or an item stored before).
    contract_size = DecimalAttribute(null=True)
    refreshed_at = UTCDateTimeAttribute()


class PriceModel(StoreModel):
    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "prices"

    exchange = UnicodeAttribute(hash_key=True)
    symbol = UnicodeAttribute(range_key=True)
    price = DecimalAttribute()
    at = UTCDateTimeAttribute()


class PaperOrderModel(StoreModel):
    """Paper exchange orders; the item with client_order_id ``#balance`` holds ``balances`` only."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "paper-orders"

    exchange = UnicodeAttribute(hash_key=True)
    client_order_id = UnicodeAttribute(range_key=True)
    id = UnicodeAttribute(null=True)
    symbol = UnicodeAttribute(null=True)
    side = EnumAttribute(OrderSide, null=True)
    type = EnumAttribute(OrderType, null=True)
    amount = DecimalAttribute(null=True)
    price = DecimalAttribute(null=True)
    status = UnicodeAttribute(null=True)
    filled = DecimalAttribute(null=True)
    average = DecimalAttribute(null=True)
    cost = DecimalAttribute(null=True)
    fee_cost = DecimalAttribute(null=True)
    fee_currency = UnicodeAttribute(null=True)
    timestamp = UTCDateTimeAttribute(null=True)
    last_trade_at = UTCDateTimeAttribute(null=True)
    balances = DocumentAttribute(null=True)
    #: A reservation ledger item's total (``engine.store.paper``), changed with ``ADD``.
    reserved = DecimalNumberAttribute(null=True)


# ---------------------------------------------------------------- state and idempotency


class StateModel(StoreModel):
    """Schedule last-run items (``schedule#<name>``), once-markers (``marker#<id>``), JSON state, leases
    (``lease#<name>``: ``holder``, ``seq``, ``expires_at``)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "state"

    pk = UnicodeAttribute(hash_key=True)
    last_run_at = UTCDateTimeAttribute(null=True)
    data = DocumentAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    holder = UnicodeAttribute(null=True)
    seq = NumberAttribute(null=True)


class IdempotencyModel(StoreModel):
    """Powertools idempotency layout (the store never writes it; defined so the table can be created)."""

    class Meta(_Meta):
        table_name = TABLE_PREFIX_DEFAULT + "idempotency"

    id = UnicodeAttribute(hash_key=True)
    expiration = TTLAttribute(null=True)


#: Environment variable, default short name, model.
TABLES: tuple[tuple[str, str, type[Model]], ...] = (
    ("GROUPS_TABLE", "groups", GroupModel),
    ("ORDERS_TABLE", "orders", OrderModel),
    ("QUEUE_TABLE", "queue", QueueModel),
    ("POOL_TABLE", "pool", PoolModel),
    ("EVENTS_TABLE", "events", EventModel),
    ("RISK_ACTIONS_TABLE", "risk-actions", RiskActionModel),
    ("EQUITY_TABLE", "equity", EquityModel),
    ("MARKETS_TABLE", "markets", MarketModel),
    ("PRICES_TABLE", "prices", PriceModel),
    ("PAPER_ORDERS_TABLE", "paper-orders", PaperOrderModel),
    ("IDEMPOTENCY_TABLE", "idempotency", IdempotencyModel),
    ("STATE_TABLE", "state", StateModel),
)
_BY_MODEL: dict[type[Model], tuple[str, str]] = {model: (env, short) for env, short, model in TABLES}


class MissingTableName(LookupError):
    """Inside Lambda, a table's environment variable is unset: the stack did not wire this table."""


def table_name(model: type[Model]) -> str:
    """The table name for ``model`` from its environment variable.

    Outside Lambda (tests, local runtime) an unset variable means the local default. Inside Lambda
    (``AWS_LAMBDA_FUNCTION_NAME`` set) it raises :class:`MissingTableName`: the local name does not
    exist there, and falling back to it would hide a function the stack did not grant the table.
    """
    env, short = _BY_MODEL[model]
    name = os.environ.get(env)
    if name:
        return name
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        raise MissingTableName(
            f"{env} is not set in Lambda function {function!r}: this code path uses the {short!r} table, "
            "which the stack does not give this function (infra/functions.py FUNCTION_SPECS)"
        )
    return TABLE_PREFIX_DEFAULT + short


def endpoint_url() -> str | None:
    """DynamoDB endpoint override from ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` (None = AWS)."""
    return os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str | None:
    """Region from ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (None lets botocore decide)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def bind(model: type[M]) -> type[M]:
    """Point ``model`` at the table, endpoint and region the environment names now; returns it.

    pynamodb re-creates its cached connection itself when the table name changes; an endpoint or region
    change drops the connection here.
    """
    name, host, reg = table_name(model), endpoint_url(), region()
    meta: Any = model.Meta
    if meta.table_name == name and meta.host == host and meta.region == reg:
        return model
    with _lock:
        if meta.host != host or meta.region != reg:
            model._connection = None
        meta.host, meta.region, meta.table_name = host, reg, name
    return model


def transaction_connection() -> Connection:
    """The shared connection for multi-table transactions, at the current endpoint and region.

    Not bound to any one table: a transaction's items carry their own table names, and a function must
    be able to write one without being given a table it does not use (the order executor's paper book).
    """
    return _shared_connection(endpoint_url(), region())


def _shared_connection(host: str | None, region_name: str | None) -> Connection:
    """The one pynamodb ``Connection`` (botocore client) of ``(host, region_name)``, created on first use."""
    with _lock:
        shared = _shared_connections.get((host, region_name))
        if shared is None:
            shared = _shared_connections[(host, region_name)] = Connection(
                region=region_name, host=host, max_pool_connections=_Meta.max_pool_connections
            )
        return shared


def reset_connections() -> None:
    """Drop every cached pynamodb connection (use when the endpoint or credentials change)."""
    with _lock:
        _shared_connections.clear()
        for _env, _short, model in TABLES:
            model._connection = None


# ---------------------------------------------------------------- pool table keys

#: The pool counter of every account before the pools were per account (DESIGN §3.10); migrated by
#: :meth:`engine.store.pool.PoolStore.migrate_legacy_counter`.
COUNTER_PK = "counter"


def pool_counter_pk(account: str) -> str:
    """Pool item counting ``account``'s groups holding a slot (attribute ``count``)."""
    return f"{COUNTER_PK}#{account}"


def account_of_key(key: str) -> str:
    """The account of a group key (``account#symbol#timeframe#side``)."""
    return key.split("#", 1)[0]


def slot_pk(group_id: str) -> str:
    """Pool item marking that ``group_id`` holds a slot."""
    return f"slot#{group_id}"


def key_lock_pk(key: str) -> str:
    """Pool item naming the one non-terminal group of a group key."""
    return f"key#{key}"


def queue_lock_pk(key: str) -> str:
    """Pool item naming the one queued entry of a group key."""
    return f"queued#{key}"
