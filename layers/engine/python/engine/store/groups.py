"""GroupStore: position groups (pyramids, figures, config versions) with optimistic locking.

New groups are created only through :meth:`engine.store.pool.PoolStore.open_group` (slot, key lock and
group in one transaction); this store reads, updates and adds pyramids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from pynamodb.exceptions import PutError

from engine.domain.counters import counted_of, counter_deltas
from engine.domain.events import Event, group_event
from engine.domain.models import OPEN_GROUP_STATUSES, ZERO, Group, GroupStatus, Order, Pyramid
from engine.store.audit import add_event
from engine.store.convert import group_from_model, group_to_model, order_to_model
from engine.store.counters import CounterConflict, add_counter_updates, counters_failed
from engine.store.errors import AlreadyExists, StaleWrite
from engine.store.tables import GroupModel, OrderModel, PoolModel, bind, key_lock_pk
from engine.store.tx import Transaction


def transition_event(group: Group, now: datetime) -> Event | None:
    """The event of writing ``group`` (its status differs from the stored one), else None.

    Its id names the version the write produces (``group.version + 1``): a replayed write is refused by
    the version check, so it never records the transition twice.
    """
    previous = group.stored_status
    if previous is None or previous == group.status:
        return None
    written = dataclasses.replace(group, version=group.version + 1)
    return group_event(written, GroupStatus(group.status).value, now, previous=previous)


class GroupStore:
    """Groups table access; every method returns domain :class:`Group` objects."""

    def get(self, group_id: str) -> Group | None:
        """The group with ``group_id`` (strongly consistent read), or None."""
        try:
            return group_from_model(bind(GroupModel).get(group_id, consistent_read=True))
        except GroupModel.DoesNotExist:
            return None

    def get_open_by_key(self, key: str) -> Group | None:
        """The open group holding ``key`` (via the pool's key lock), or None.

        None also when the key's holder is already closed/failed but its slot is not yet released:
        until ``release_slot`` runs, :meth:`PoolStore.open_group` answers ``KEY_TAKEN`` for that key.
        """
        try:
            lock = bind(PoolModel).get(key_lock_pk(key), consistent_read=True)
        except PoolModel.DoesNotExist:
            return None
        if lock.group_id is None:
            return None
        group = self.get(lock.group_id)
        return group if group is not None and group.is_open else None

    def list_by_status(self, statuses: Iterable[GroupStatus | str]) -> list[Group]:
        """Groups in any of ``statuses`` (GSI ``by_status``, eventually consistent), each once.

        One query per status, in lifecycle order, so a group that moves forward while the statuses
        are read (live -> partially_filled -> ...) is found again rather than missed; when it is
        found twice the newer version is kept.
        """
        model = bind(GroupModel)
        wanted = {GroupStatus(s) for s in statuses}
        newest: dict[str, Group] = {}
        for status in (s for s in GroupStatus if s in wanted):
            for item in model.by_status.query(status):
                group = group_from_model(item)
                seen = newest.get(group.id)
                if seen is None or group.version > seen.version:
                    newest[group.id] = group
        return list(newest.values())

    def list_open(self) -> list[Group]:
        """Groups in live / partially_filled / active / closing."""
        return self.list_by_status(OPEN_GROUP_STATUSES)

    def save(self, group: Group, *, now: datetime) -> None:
        """Overwrite ``group`` if the stored version equals ``group.version`` (0 = must not exist).

        Stamps ``updated_at`` with ``now`` and increments ``group.version`` on success; raises
        :class:`StaleWrite` (leaving ``group`` unchanged) when another writer got there first. When the
        write changes what the group counts (open, committed capital, realised PnL per day) the
        account's counters take the deltas (new - ``group.counted``) in the same transaction, so a
        replayed change adds zero.
        """
        stamped = dataclasses.replace(group, updated_at=now)
        item = group_to_model(stamped)
        counted = counted_of(stamped)
        deltas = counter_deltas(group.counted, counted)
        event = transition_event(stamped, now)
        if deltas or event is not None:
            tx = Transaction(f"group:{group.id}:{group.version}")
            tx.put("group", item)
            add_counter_updates(tx, deltas, now)
            if event is not None:
                add_event(tx, event)
            if tx.commit():
                raise StaleWrite(f"group {group.id} changed since version {group.version}")
        else:
            try:
                item.save()
            except PutError as error:
                if error.cause_response_code == "ConditionalCheckFailedException":
                    raise StaleWrite(f"group {group.id} changed since version {group.version}") from error
                raise
        group.updated_at = stamped.updated_at
        group.version = int(item.version)
        group.counted = counted
        group.stored_status = group.status

    def add_pyramid(
        self,
        group: Group,
        pyramid: Pyramid,
        orders: Sequence[Order],
        *,
        now: datetime,
        exposure_cap_usd: Decimal | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        """Append ``pyramid`` to ``group`` and create its ``orders``, all in one transaction.

        ``pyramid`` is appended unless ``group.pyramids`` already ends with it (callers may pass the
        group before or after appending). Other group changes (e.g. status back to partially_filled)
        are the caller's and are saved too. The group write is version-checked (:class:`StaleWrite`);
        an order id that already exists raises :class:`AlreadyExists`; either way nothing is written
        and ``group`` is left unchanged. On success ``group.version``/``updated_at`` advance and each
        order's ``version`` becomes 1; ``updated_at`` is ``now``. The pyramid's capital is committed to
        the account's exposure counter in the same transaction, with ``exposure_cap_usd`` as its
        condition (:class:`CounterConflict`, a :class:`StaleWrite`, when the cap would be passed).
        """
        if group.version < 1:
            raise ValueError("add_pyramid needs a stored group (version >= 1)")
        pyramids = list(group.pyramids)
        if not pyramids or pyramids[-1] != pyramid:
            pyramids.append(pyramid)
        stamped = dataclasses.replace(group, pyramids=pyramids, updated_at=now)
        group_item = group_to_model(stamped)
        order_items = [order_to_model(dataclasses.replace(order, version=0)) for order in orders]
        tx = Transaction(f"pyramid:{group.id}")
        tx.put("group", group_item)
        event = transition_event(stamped, now)
        if event is not None:
            add_event(tx, event)
        for extra in events:
            add_event(tx, extra)
        for item in order_items:
            tx.put(f"order:{item.id}", item, OrderModel.id.does_not_exist())
        counted = counted_of(stamped)
        add_counter_updates(
            tx, counter_deltas(group.counted, counted), now, exposure_cap_usd=exposure_cap_usd
        )
        failed = tx.commit()
        if "group" in failed:
            raise StaleWrite(f"group {group.id} changed since version {group.version}")
        if counters_failed(failed):
            raise CounterConflict(f"pyramid of {group.id} would pass the exposure cap")
        if failed:
            raise AlreadyExists(f"orders already exist: {sorted(failed)}")
        group.pyramids = pyramids
        group.counted = counted
        group.stored_status = group.status
        group.updated_at = stamped.updated_at
        group.version = int(group_item.version)
        for order, item in zip(orders, order_items, strict=True):
            order.version = int(item.version)

    def list_closed_on(self, day: date) -> list[Group]:
        """Groups closed (or failed) on UTC ``day`` (GSI ``by_closed_day``, eventually consistent)."""
        return [group_from_model(item) for item in bind(GroupModel).by_closed_day.query(day.isoformat())]

    def realized_on(self, day: date) -> Decimal:
        """Realised PnL (net of fees) booked on UTC ``day``: Σ ``figures.realized_by_day[day]``.

        Scans groups updated since the start of ``day`` (a fill on that day updates its group).
        """
        since = datetime(day.year, day.month, day.day, tzinfo=UTC)
        day_key = day.isoformat()
        total = ZERO
        for item in bind(GroupModel).scan(GroupModel.updated_at >= since):
            value = (item.figures or {}).get("realized_by_day", {}).get(day_key)
            if value is not None:
                total += Decimal(str(value))
        return total
