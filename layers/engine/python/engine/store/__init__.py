"""engine.store: the only DynamoDB code (pynamodb). Callers get domain objects, never pynamodb items.

Table names come from ``<NAME>_TABLE`` environment variables read at call time (default
``execution-engine-local-<name>``); the endpoint from ``AWS_ENDPOINT_URL_DYNAMODB`` /
``AWS_ENDPOINT_URL``. Writes that must not be lost or doubled are conditional or transactional.
"""

from engine.store.audit import (
    EquityPoint,
    EquityStore,
    EventStore,
    RiskActionRecord,
    RiskActionStore,
    SignalAudit,
    SignalRecord,
    account_series,
    event_from_image,
    signal_event,
    signal_record,
)
from engine.store.counters import (
    ControlStore,
    CounterConflict,
    CounterStore,
    CounterValue,
    EngineControl,
    EntryState,
)
from engine.store.errors import AlreadyExists, ConcurrentUpdate, StaleWrite, StoreError, TransactionFailed
from engine.store.groups import GroupStore
from engine.store.markets import MarketStore, PriceStore
from engine.store.orders import OrderStore
from engine.store.paper import PaperOrderStore
from engine.store.pool import HandOverRefused, OpenResult, PoolStore
from engine.store.queue import QueueStore
from engine.store.setup import create_all_tables, delete_all_tables
from engine.store.state import StateStore
from engine.store.streams import group_from_image, order_from_image
from engine.store.tables import reset_connections, table_name

__all__ = [
    "AlreadyExists",
    "ConcurrentUpdate",
    "ControlStore",
    "CounterConflict",
    "CounterStore",
    "CounterValue",
    "EngineControl",
    "EntryState",
    "EquityPoint",
    "EquityStore",
    "EventStore",
    "GroupStore",
    "HandOverRefused",
    "MarketStore",
    "OpenResult",
    "OrderStore",
    "PaperOrderStore",
    "PoolStore",
    "PriceStore",
    "QueueStore",
    "RiskActionRecord",
    "RiskActionStore",
    "SignalAudit",
    "SignalRecord",
    "StaleWrite",
    "StateStore",
    "StoreError",
    "TransactionFailed",
    "account_series",
    "create_all_tables",
    "delete_all_tables",
    "event_from_image",
    "group_from_image",
    "order_from_image",
    "reset_connections",
    "signal_event",
    "signal_record",
    "table_name",
]
