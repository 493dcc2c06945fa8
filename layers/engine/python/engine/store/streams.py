"""DynamoDB stream images -> domain objects.

A stream record's ``NewImage`` / ``OldImage`` is DynamoDB JSON (``{"id": {"S": "..."}}``) — the same
shape as a stored item — so the models' own (de)serialisation applies (``Model.from_raw_data``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.domain.models import Group, Order
from engine.store.convert import group_from_model, order_from_model
from engine.store.tables import GroupModel, OrderModel


def order_from_image(image: Mapping[str, Any]) -> Order:
    """The order in an orders-table stream image."""
    return order_from_model(OrderModel.from_raw_data(dict(image)))


def group_from_image(image: Mapping[str, Any]) -> Group:
    """The group in a groups-table stream image."""
    return group_from_model(GroupModel.from_raw_data(dict(image)))
