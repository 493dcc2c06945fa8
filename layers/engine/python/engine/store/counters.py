"""Per-account counters in the pool table (``engine.domain.counters``) and the webhook's one read.

Counter items ``acct#<a>``, ``sym#<a>#<symbol>`` and ``day#<a>#<UTC date>`` carry ``open_groups``,
``exposure_usd``, ``realized_usd`` (numbers, so updates ``ADD`` to them), ``counter_version`` (+1 on
every change) and ``counted_at`` (time of the last change). Deltas are added by the transactions that
change what they count (:func:`add_counter_updates`); :meth:`CounterStore.correct` is the
reconciliation's write, conditioned on the counter version it read.

:meth:`CounterStore.entry_state` is the pre-trade checks' single strongly consistent read: one
``BatchGetItem`` of the key's lock, the key's queue lock, the pool counter, the account's counters, the
operator control (``control#engine``) and the market's precision.

The operator control item ``control#engine`` (:class:`ControlStore`): ``paused``, ``note`` (who/why) and
``changed_at``. The engine is paused when the ``engine`` document **or** this item says so; code never
rewrites the document. It lives in the pool table so the webhook's one batch read carries it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition

from engine.domain.counters import CounterDelta, account_pk, day_pk, symbol_pk
from engine.domain.models import ZERO, MarketPrecision
from engine.store.errors import StaleWrite
from engine.store.markets import REFRESH_MARKER, _precision
from engine.store.tables import (
    MarketModel,
    PoolModel,
    bind,
    key_lock_pk,
    pool_counter_pk,
    queue_lock_pk,
    table_name,
    transaction_connection,
)
from engine.store.tx import Transaction

#: The operator's engine control item (DESIGN §6 ``POST /engine/pause|resume``, :class:`ControlStore`).
CONTROL_PK = "control#engine"


#: Transaction label prefix of counter updates (a failed one means the exposure cap held).
COUNTER_LABEL = "counters:"
_MAX_BATCH_ROUNDS = 5
#: DynamoDB's BatchGetItem limit.
_BATCH_KEYS = 100


class CounterConflict(StaleWrite):
    """The exposure cap (a condition on the account counter) refused the write; nothing was written."""


def counter_label(pk: str) -> str:
    """The transaction label of the update of counter item ``pk``."""
    return f"{COUNTER_LABEL}{pk}"


def add_counter_updates(
    tx: Transaction,
    deltas: Mapping[str, CounterDelta],
    now: datetime,
    *,
    exposure_cap_usd: Decimal | None = None,
) -> None:
    """Add one update per counter item of ``deltas`` to ``tx`` (items are created on first use).

    With ``exposure_cap_usd``, an account item whose exposure grows carries the cap as its condition:
    the stored exposure must be ≤ cap - delta (a missing item counts as 0), so two writers that each fit
    alone cannot both commit past the cap.
    """
    bind(PoolModel)
    for pk, delta in deltas.items():
        actions: list[Any] = [PoolModel.counter_version.add(1), PoolModel.counted_at.set(now)]
        if delta.open_groups:
            actions.append(PoolModel.open_groups.add(delta.open_groups))
        if delta.exposure_usd:
            actions.append(PoolModel.exposure_usd.add(delta.exposure_usd))
        if delta.realized_usd:
            actions.append(PoolModel.realized_usd.add(delta.realized_usd))
        condition = None
        if exposure_cap_usd is not None and delta.exposure_usd > ZERO:
            limit = exposure_cap_usd - delta.exposure_usd
            condition = PoolModel.exposure_usd <= limit
            if limit >= ZERO:
                condition = condition | PoolModel.exposure_usd.does_not_exist()
        tx.update(counter_label(pk), PoolModel(pk=pk), actions, condition)


def counters_failed(failed: set[str]) -> bool:
    """True when a counter condition (the exposure cap) is among a transaction's failed labels."""
    return any(label.startswith(COUNTER_LABEL) for label in failed)


@dataclass(frozen=True)
class CounterValue:
    """One counter item as stored (absent: all zero, version None)."""

    pk: str
    open_groups: int = 0
    exposure_usd: Decimal = ZERO
    realized_usd: Decimal = ZERO
    version: int | None = None
    counted_at: datetime | None = None

    @property
    def exists(self) -> bool:
        """True when the item is stored."""
        return self.version is not None or self.counted_at is not None


def _value(pk: str, item: PoolModel | None) -> CounterValue:
    if item is None:
        return CounterValue(pk)
    return CounterValue(
        pk=pk,
        open_groups=int(item.open_groups or 0),
        exposure_usd=item.exposure_usd or ZERO,
        realized_usd=item.realized_usd or ZERO,
        version=None if item.counter_version is None else int(item.counter_version),
        counted_at=item.counted_at,
    )


@dataclass(frozen=True)
class EntryState:
    """What the pre-trade checks of one entry read, all from one strongly consistent batch read."""

    #: Groups holding a slot of the account's pool (``pool_open``) and what the rest counts.
    #: Group id named by the key's lock (an open group, or one still releasing its slot), else None.
    key_holder: str | None
    #: Id of the entry queued for the key, else None.
    queued_entry: str | None
    pool_open: int
    account_open: int
    exposure_usd: Decimal
    symbol_open: int
    realized_today_usd: Decimal
    #: The stored market precision (None: not in the markets table).
    market: MarketPrecision | None
    #: The operator's pause (``POST /engine/pause``), read in the same batch.
    operator_paused: bool = False


class CounterStore:
    """Counter items of the pool table and the pre-trade checks' batch read."""

    def _batch_get(self, pool_pks: Sequence[str], market: tuple[str, str] | None) -> dict[str, Any]:
        """Raw items by pk (pool table) plus ``"#market"``; one ``BatchGetItem`` in steady state."""
        pool_table = table_name(bind(PoolModel))
        request: dict[str, Any] = {
            pool_table: {"Keys": [{"pk": {"S": pk}} for pk in pool_pks], "ConsistentRead": True}
        }
        market_table = table_name(bind(MarketModel))
        if market is not None:
            exchange, symbol = market
            request[market_table] = {
                "Keys": [{"exchange": {"S": exchange}, "symbol": {"S": symbol}}],
                "ConsistentRead": True,
            }
        client = transaction_connection().client
        found: dict[str, Any] = {}
        for _ in range(_MAX_BATCH_ROUNDS):
            answer = client.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(pool_table, []):
                found[item["pk"]["S"]] = item
            for item in answer.get("Responses", {}).get(market_table, []):
                found["#market"] = item
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise StaleWrite("batch read kept returning unprocessed keys")

    def entry_state(self, *, key: str, account: str, symbol: str, day: str, exchange: str) -> EntryState:
        """The key's locks, the pool counter, ``account``'s counters (``day`` = today, UTC), the operator
        control and the market of ``symbol`` on ``exchange``, in one strongly consistent read."""
        pks = [
            key_lock_pk(key),
            queue_lock_pk(key),
            pool_counter_pk(account),
            account_pk(account),
            symbol_pk(account, symbol),
            day_pk(account, day),
            CONTROL_PK,
        ]
        raw = self._batch_get(pks, None if symbol == REFRESH_MARKER else (exchange, symbol))
        items = {pk: PoolModel.from_raw_data(raw[pk]) for pk in pks if pk in raw}
        key_lock, queue_lock, counter = items.get(pks[0]), items.get(pks[1]), items.get(pks[2])
        acct, sym, today = (_value(pk, items.get(pk)) for pk in pks[3:6])
        market = None
        if "#market" in raw:
            try:
                market = _precision(MarketModel.from_raw_data(raw["#market"]))
            except ValueError:
                market = None
        return EntryState(
            key_holder=None if key_lock is None else key_lock.group_id,
            queued_entry=None if queue_lock is None else queue_lock.entry_id,
            pool_open=0 if counter is None else int(counter.open_count or 0),
            account_open=acct.open_groups,
            exposure_usd=acct.exposure_usd,
            symbol_open=sym.open_groups,
            realized_today_usd=today.realized_usd,
            market=market,
            operator_paused=control_from_item(items.get(CONTROL_PK)).paused,
        )

    def get(self, pk: str) -> CounterValue:
        """Counter item ``pk`` (strongly consistent; absent = zeros with version None)."""
        try:
            return _value(pk, bind(PoolModel).get(pk, consistent_read=True))
        except PoolModel.DoesNotExist:
            return _value(pk, None)

    def realized_on(self, account: str, day: str) -> Decimal:
        """``account``'s realised PnL booked on UTC ``day`` (the day counter)."""
        return self.get(day_pk(account, day)).realized_usd

    def realized_by_day(self, accounts: Sequence[str], days: Sequence[str]) -> dict[str, Decimal]:
        """Σ over ``accounts`` of each UTC day's realised PnL (the ``day#`` counters; absent = 0).

        Batch reads of at most 100 keys each (analytics: one call for a month of one account).
        """
        pks = {day_pk(account, day): day for account in accounts for day in days}
        totals = dict.fromkeys(days, ZERO)
        keys = list(pks)
        for start in range(0, len(keys), _BATCH_KEYS):
            raw = self._batch_get(keys[start : start + _BATCH_KEYS], None)
            for pk, item in raw.items():
                if pk in pks:
                    totals[pks[pk]] += _value(pk, PoolModel.from_raw_data(item)).realized_usd
        return totals

    def list_open_counters(self) -> list[CounterValue]:
        """Every ``acct#`` and ``sym#`` counter item (a strongly consistent scan; minute pass only)."""
        model = bind(PoolModel)
        condition = PoolModel.pk.startswith("acct#") | PoolModel.pk.startswith("sym#")
        return [_value(item.pk, item) for item in model.scan(condition, consistent_read=True)]

    def correct(self, value: CounterValue, target: CounterDelta, now: datetime) -> bool:
        """Set counter ``value.pk`` to ``target`` if its version is still ``value.version``.

        Creates the item when it was absent (and still is). Returns False, writing nothing, when the
        counter changed since it was read.
        """
        model = bind(PoolModel)
        item = model(pk=value.pk)
        actions: list[Any] = [
            PoolModel.open_groups.set(target.open_groups),
            PoolModel.exposure_usd.set(target.exposure_usd),
            PoolModel.realized_usd.set(target.realized_usd),
            PoolModel.counter_version.set((value.version or 0) + 1),
            PoolModel.counted_at.set(now),
        ]
        condition: Condition
        if value.exists:
            condition = PoolModel.counter_version == value.version
            if value.version is None:
                condition = PoolModel.counter_version.does_not_exist()
        else:
            condition = PoolModel.pk.does_not_exist()
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True


@dataclass(frozen=True)
class EngineControl:
    """The operator control as stored (absent: not paused, never changed)."""

    paused: bool = False
    note: str | None = None
    changed_at: datetime | None = None


def control_from_item(item: PoolModel | None) -> EngineControl:
    """The control of a raw pool item (None: the default)."""
    if item is None:
        return EngineControl()
    return EngineControl(paused=bool(item.paused), note=item.note, changed_at=item.changed_at)


class ControlStore:
    """Reads and writes the operator control item."""

    def get(self) -> EngineControl:
        """The control now (strongly consistent)."""
        try:
            return control_from_item(bind(PoolModel).get(CONTROL_PK, consistent_read=True))
        except PoolModel.DoesNotExist:
            return EngineControl()

    def set_paused(self, paused: bool, now: datetime, note: str | None = None) -> EngineControl:
        """Store ``paused`` (a plain overwrite: the last operator wins)."""
        bind(PoolModel)
        PoolModel(pk=CONTROL_PK, paused=paused, note=note, changed_at=now).save()
        return EngineControl(paused=paused, note=note, changed_at=now)
