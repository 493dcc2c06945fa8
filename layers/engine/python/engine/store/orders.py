"""OrderStore: the engine's orders (intent and exchange outcome), with optimistic locking."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime

from pynamodb.exceptions import PutError

from engine.domain.models import OPEN_GROUP_STATUSES, GroupStatus, Order, OrderStatus
from engine.store.convert import order_from_model, order_to_model
from engine.store.errors import StaleWrite
from engine.store.tables import GroupModel, OrderModel, bind
from engine.store.tx import Transaction

#: DynamoDB's per-transaction item limit.
MAX_TRANSACTION_ITEMS = 100


def _is_condition_failure(error: PutError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


class OrderStore:
    """Orders table access; every method returns domain :class:`Order` objects."""

    def get(self, order_id: str) -> Order | None:
        """The order with ``order_id`` (strongly consistent read), or None."""
        try:
            return order_from_model(bind(OrderModel).get(order_id, consistent_read=True))
        except OrderModel.DoesNotExist:
            return None

    def list_for_group(self, group_id: str) -> list[Order]:
        """All orders of a group, oldest first (GSI ``by_group``, eventually consistent)."""
        model = bind(OrderModel)
        return [order_from_model(item) for item in model.by_group.query(group_id, scan_index_forward=True)]

    def list_by_status(self, statuses: Iterable[OrderStatus | str]) -> list[Order]:
        """Orders in any of ``statuses`` (GSI ``by_status``, eventually consistent)."""
        model = bind(OrderModel)
        orders: list[Order] = []
        for status in dict.fromkeys(OrderStatus(s) for s in statuses):
            orders.extend(order_from_model(item) for item in model.by_status.query(status))
        return orders

    def put_new(self, order: Order) -> bool:
        """Create ``order`` if no order with its id exists; False (nothing written) if it does.

        On success ``order.version`` becomes 1.
        """
        item = order_to_model(dataclasses.replace(order, version=0))
        try:
            item.save(condition=OrderModel.id.does_not_exist())
        except PutError as error:
            if _is_condition_failure(error):
                return False
            raise
        order.version = int(item.version)
        return True

    def put_new_unless_closing(self, order: Order) -> bool | None:
        """Create ``order`` only while its group is open and not ``closing`` (one transaction).

        True = created; False = an order with its id exists; None = the group is closing or gone, nothing
        written. A partial close (the risk engine's winner close) uses it so that it never joins a full
        close another writer started (a protection trigger saves the group ``closing`` before it lists
        the group's orders and places its close, DESIGN §3.9).
        """
        item = order_to_model(dataclasses.replace(order, version=0))
        bind(GroupModel)
        tx = Transaction(f"order-new:{order.id}")
        tx.put("order", item, OrderModel.id.does_not_exist())
        trading = [status for status in OPEN_GROUP_STATUSES if status is not GroupStatus.CLOSING]
        tx.check("group", GroupModel, order.group_id, GroupModel.status.is_in(*trading))
        failed = tx.commit()
        if "group" in failed:
            return None
        if failed:
            return False
        order.version = int(item.version)
        return True

    def put_many_new(self, orders: Sequence[Order]) -> bool:
        """Create all ``orders`` in one transaction, or none: False if any id already exists.

        At most 100 orders (DynamoDB's transaction limit; ``ValueError`` beyond). On success each
        order's ``version`` becomes 1.
        """
        if not orders:
            return True
        if len(orders) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"put_many_new takes at most {MAX_TRANSACTION_ITEMS} orders")
        tx = Transaction(f"orders-new:{orders[0].id}")
        items = [order_to_model(dataclasses.replace(order, version=0)) for order in orders]
        for item in items:
            tx.put(f"order:{item.id}", item, OrderModel.id.does_not_exist())
        if tx.commit():
            return False
        for order, item in zip(orders, items, strict=True):
            order.version = int(item.version)
        return True

    def save(self, order: Order, *, now: datetime) -> None:
        """Overwrite ``order`` if the stored version equals ``order.version`` (0 = must not exist).

        Stamps ``updated_at`` with ``now`` and increments ``order.version`` on success; raises
        :class:`StaleWrite` (leaving ``order`` unchanged) when another writer got there first.
        """
        stamped = dataclasses.replace(order, updated_at=now)
        item = order_to_model(stamped)
        try:
            item.save()
        except PutError as error:
            if _is_condition_failure(error):
                raise StaleWrite(f"order {order.id} changed since version {order.version}") from error
            raise
        order.updated_at = stamped.updated_at
        order.version = int(item.version)
