"""The name of every CloudWatch metric the engine emits: one definition for the emitters and the CDK
dashboard and alarms (``infra/monitoring.py``), so renaming a metric cannot silently break an alarm.

Namespace: env ``POWERTOOLS_METRICS_NAMESPACE`` (``engine.config.settings.DEFAULT_METRICS_NAMESPACE``
when unset); every metric also carries Powertools' ``service`` dimension. A metric with a dimension of
its own names it in ``*_DIMENSION`` below. Pure constants: importing this module imports nothing else.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- order_sync gauges, once a minute

POOL_OPEN: Final = "PoolOpen"
POOL_MAX: Final = "PoolMax"
QUEUE_DEPTH: Final = "QueueDepth"
OPEN_GROUPS: Final = "OpenGroups"
#: Orders in state ``unknown`` now (a gauge; compare ORDERS_UNKNOWN, a count of executor outcomes).
UNKNOWN_ORDERS: Final = "UnknownOrders"
REALIZED_PNL_USD: Final = "RealizedPnlUsd"
UNREALIZED_PNL_USD: Final = "UnrealizedPnlUsd"
EQUITY_USD: Final = "EquityUsd"
#: Live orders per state, dimension ``State``.
ORDERS_BY_STATE: Final = "OrdersByState"
STATE_DIMENSION: Final = "State"

#: order_sync's counter reconciliation: one per counter corrected (or backfilled), dimension ``Counter``
#: (``acct``, ``sym`` or ``day``).
COUNTER_DRIFT: Final = "CounterDrift"
COUNTER_DIMENSION: Final = "Counter"

# ---------------------------------------------------------------- configuration

#: One per invalid configuration document read, dimension ``Parameter``.
CONFIG_INVALID: Final = "ConfigInvalid"
PARAMETER_DIMENSION: Final = "Parameter"

# ---------------------------------------------------------------- per-invocation counts of the functions

#: webhook: one per request, dimension ``Result`` (the outcome, or the error code).
WEBHOOK_SIGNALS: Final = "WebhookSignals"
RESULT_DIMENSION: Final = "Result"
#: order_sync: a run that did its work / one that found its interval not yet passed.
SYNC_RUNS: Final = "SyncRuns"
SYNC_SKIPPED: Final = "SyncSkipped"
#: risk_engine: 1 when a run took an action, else 0.
RISK_ACTIONS: Final = "RiskActions"
#: order_executor: stream records handled, orders the exchange rejected, sends whose outcome is unknown.
ORDER_RECORDS_PROCESSED: Final = "OrderRecordsProcessed"
ORDERS_REJECTED: Final = "OrdersRejected"
ORDERS_UNKNOWN: Final = "OrdersUnknown"

#: Every metric name above.
ALL: Final[frozenset[str]] = frozenset(
    {
        POOL_OPEN,
        POOL_MAX,
        QUEUE_DEPTH,
        OPEN_GROUPS,
        UNKNOWN_ORDERS,
        REALIZED_PNL_USD,
        UNREALIZED_PNL_USD,
        EQUITY_USD,
        ORDERS_BY_STATE,
        COUNTER_DRIFT,
        CONFIG_INVALID,
        WEBHOOK_SIGNALS,
        SYNC_RUNS,
        SYNC_SKIPPED,
        RISK_ACTIONS,
        ORDER_RECORDS_PROCESSED,
        ORDERS_REJECTED,
        ORDERS_UNKNOWN,
    }
)
