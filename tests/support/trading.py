"""Trading scenarios for integration tests: live config edits, groups opened and filled for real.

Two ways to get a group:

- :meth:`TradingWorld.open_group` — the real flow: the group and its entry orders are created through
  the pool (as ``entries`` would), the orders stream is delivered to ``order_executor`` and
  ``position_update`` (the paper exchange fills at the price set), the groups stream to ``slot_release``.
- :func:`stored_group` — figures computed by the domain from FILLED orders and stored directly, with no
  exchange and no stream: for tests of one service's decisions (the risk engine's timers and choices).

Markets: paper markets with step 1 (``AAA``, ``BBB``, ``CCC``, ``DDD``, ``EEE`` against USDT) so the
quantities of DESIGN §3.8's worked example are exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3

from engine.app.context import Stores, stores
from engine.config import clear_cache, seed_defaults
from engine.config.settings import config_prefix
from engine.domain.accounting import base_currency_of, compute_figures
from engine.domain.models import (
    Group,
    GroupStatus,
    Order,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    Pyramid,
    Side,
    TpMode,
    utcnow,
)
from engine.exchange.client_ids import client_order_id
from tests.support.builders import new_id
from tests.support.streams import Streams, drain, load_function

EXCHANGE = "binance"
STEP_ONE_MARKETS = {
    f"{coin}/USDT": {"tick": "0.01", "step": "1", "min_qty": "1", "min_notional": "5"}
    for coin in ("AAA", "BBB", "CCC", "DDD", "EEE")
}
PAPER = {"fee_percent": "0.1", "balance_usd": "1000000", "markets": STEP_ONE_MARKETS}

Leg = tuple[str, str]  # (price, quantity) of a filled entry leg


def configure(extra: Mapping[str, dict[str, Any]] | None = None, **named: dict[str, Any]) -> dict[str, int]:
    """Seed the default documents, then merge the given ones (name → top-level fields) into them.

    ``extra`` names documents that are not identifiers (``"dca/default"``). The engine document always
    gets the step-1 paper markets and a large paper balance. Returns the SSM version of every edited
    document.
    """
    seed_defaults()
    documents = {**(extra or {}), **named}
    documents.setdefault("engine", {})
    documents["engine"] = {"paper": PAPER, **documents["engine"]}
    ssm = boto3.client("ssm", region_name="us-east-1")
    versions: dict[str, int] = {}
    for name, changes in documents.items():
        parameter = config_prefix() + name
        current = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
        current.update(changes)
        reply = ssm.put_parameter(Name=parameter, Value=json.dumps(current), Type="String", Overwrite=True)
        versions[name] = int(reply["Version"])
    clear_cache()
    return versions


def entry_order(
    group: Group,
    pyramid: int,
    leg: int,
    *,
    amount: Decimal,
    price: Decimal | None,
    now: datetime,
    order_type: OrderType = OrderType.MARKET,
    tp_percent: Decimal | None = None,
    status: OrderStatus = OrderStatus.PENDING,
) -> Order:
    """An entry leg ``<group>-p<k>-l<n>``; FILLED status fills it completely at ``price``."""
    order_id = f"{group.id}-p{pyramid}-l{leg}"
    filled = status == OrderStatus.FILLED
    return Order(
        id=order_id,
        group_id=group.id,
        exchange=group.exchange,
        symbol=group.symbol,
        purpose=OrderPurpose.ENTRY,
        side=OrderSide.BUY if group.side == Side.LONG else OrderSide.SELL,
        type=order_type,
        amount=amount,
        price=price if order_type == OrderType.LIMIT or filled else None,
        client_order_id=client_order_id(order_id),
        status=status,
        pyramid=pyramid,
        leg=leg,
        filled=amount if filled else Decimal(0),
        average=price if filled else None,
        cost=amount * price if filled and price is not None else Decimal(0),
        tp_percent=tp_percent,
        created_at=now,
        updated_at=now,
        last_fill_at=now if filled else None,
    )


def new_group(
    symbol: str,
    *,
    now: datetime,
    side: Side = Side.LONG,
    pyramids: int = 1,
    legs: int = 1,
    tp_mode: TpMode = TpMode.PER_LEG,
    tp_aggregate_percent: Decimal = Decimal("1.0"),
    exchange: str = EXCHANGE,
) -> Group:
    """A live group with ``pyramids`` pyramids (index from 1) of ``legs`` legs each."""
    return Group(
        id=new_id("g"),
        exchange=exchange,
        symbol=symbol,
        timeframe=60,
        side=side,
        status=GroupStatus.LIVE,
        pyramids=[
            Pyramid(
                index=k,
                entry_price=Decimal(100),
                capital_usd=Decimal(1000),
                candle=k,
                leg_count=legs,
                created_at=now,
            )
            for k in range(1, pyramids + 1)
        ],
        tp_mode=tp_mode,
        tp_aggregate_percent=tp_aggregate_percent,
        created_at=now,
        updated_at=now,
    )


def stored_group(
    the_stores: Stores,
    symbol: str,
    pyramids: Sequence[Sequence[Leg]],
    *,
    price: str,
    now: datetime,
    resting: Sequence[Leg] = (),
    side: Side = Side.LONG,
    exchange: str = EXCHANGE,
) -> Group:
    """A group whose legs are FILLED (plus ``resting`` OPEN limit legs in its last pyramid), with figures
    computed by the domain at ``price`` and stored through the pool; no exchange, no price stored."""
    legs_per_pyramid = [len(legs) for legs in pyramids]
    group = new_group(symbol, now=now, side=side, pyramids=len(pyramids), legs=1, exchange=exchange)
    for pyramid, count in zip(group.pyramids, legs_per_pyramid, strict=True):
        pyramid.leg_count = count
    group.pyramids[-1].leg_count += len(resting)
    orders: list[Order] = []
    for k, legs in enumerate(pyramids, start=1):
        for n, (leg_price, qty) in enumerate(legs, start=1):
            orders.append(
                entry_order(
                    group,
                    k,
                    n,
                    amount=Decimal(qty),
                    price=Decimal(leg_price),
                    now=now,
                    status=OrderStatus.FILLED,
                )
            )
    last = len(pyramids)
    for n, (leg_price, qty) in enumerate(resting, start=len(pyramids[-1]) + 1):
        orders.append(
            entry_order(
                group,
                last,
                n,
                amount=Decimal(qty),
                price=Decimal(leg_price),
                now=now,
                order_type=OrderType.LIMIT,
                status=OrderStatus.OPEN,
            )
        )
    group.figures = compute_figures(
        orders,
        side=side,
        base_currency=base_currency_of(symbol),
        price=Decimal(price),
        total_legs=sum(p.leg_count for p in group.pyramids),
    )
    group.status = GroupStatus.ACTIVE if not resting else GroupStatus.PARTIALLY_FILLED
    the_stores.pool.open_group(group, orders, max_open=100)
    return group


def reprice(the_stores: Stores, group_id: str, price: str) -> Group:
    """Recompute a stored group's figures at ``price`` (what position_update does), timers untouched."""
    group = the_stores.groups.get(group_id)
    assert group is not None
    orders = the_stores.orders.list_for_group(group_id)
    group.figures = compute_figures(
        orders,
        side=group.side,
        base_currency=base_currency_of(group.symbol),
        price=Decimal(price),
        total_legs=sum(p.leg_count for p in group.pyramids),
    )
    the_stores.groups.save(group, now=utcnow())
    return group


@dataclass
class TradingWorld:
    """Stores, stream taps and the stream consumers of the real flow."""

    stores: Stores = field(default_factory=stores)
    streams: Streams = field(default_factory=Streams)
    executor: ModuleType = field(default_factory=lambda: load_function("order_executor"))
    position_update: ModuleType = field(default_factory=lambda: load_function("position_update"))
    slot_release: ModuleType = field(default_factory=lambda: load_function("slot_release"))

    def drain(self, *, replay: int = 1) -> None:
        """Deliver every stream to its consumers until quiet (``replay`` = at-least-once delivery)."""
        drain(
            self.streams,
            {"orders": [self.executor, self.position_update], "groups": [self.slot_release]},
            replay=replay,
        )

    def set_price(self, symbol: str, price: str, exchange: str = EXCHANGE) -> None:
        """The paper price of ``symbol``."""
        self.stores.prices.set(exchange, symbol, Decimal(price), utcnow())

    def open_group(
        self,
        symbol: str,
        legs: Sequence[Leg],
        *,
        now: datetime,
        tp_percent: str | None = None,
        tp_mode: TpMode = TpMode.PER_LEG,
        tp_aggregate_percent: str = "1.0",
    ) -> Group:
        """Open a one-pyramid long group whose market legs fill at their prices, and deliver the streams."""
        group = new_group(
            symbol,
            now=now,
            legs=len(legs),
            tp_mode=tp_mode,
            tp_aggregate_percent=Decimal(tp_aggregate_percent),
        )
        return self._fill_pyramid(group, 1, legs, now=now, tp_percent=tp_percent, first=True)

    def add_pyramid(
        self, group_id: str, legs: Sequence[Leg], *, now: datetime, tp_percent: str | None = None
    ) -> Group:
        """Add a pyramid of market legs to an open group, filled at their prices."""
        group = self.stores.groups.get(group_id)
        assert group is not None
        index = len(group.pyramids) + 1
        pyramid = Pyramid(
            index=index,
            entry_price=Decimal(legs[0][0]),
            capital_usd=Decimal(1000),
            candle=index,
            leg_count=len(legs),
            created_at=now,
        )
        group.pyramids.append(pyramid)
        if group.status == GroupStatus.ACTIVE:
            group.status = GroupStatus.PARTIALLY_FILLED
        return self._fill_pyramid(group, index, legs, now=now, tp_percent=tp_percent, first=False)

    def _fill_pyramid(
        self,
        group: Group,
        index: int,
        legs: Sequence[Leg],
        *,
        now: datetime,
        tp_percent: str | None,
        first: bool,
    ) -> Group:
        tp = Decimal(tp_percent) if tp_percent is not None else None
        for n, (price, qty) in enumerate(legs, start=1):
            order = entry_order(group, index, n, amount=Decimal(qty), price=None, now=now, tp_percent=tp)
            self.set_price(group.symbol, price)
            if first and n == 1:
                self.stores.pool.open_group(group, [order], max_open=100)
            elif n == 1:
                self.stores.groups.add_pyramid(group, group.pyramids[-1], [order], now=now)
            else:
                assert self.stores.orders.put_new(order)
            self.drain()
        fresh = self.stores.groups.get(group.id)
        assert fresh is not None
        return fresh

    def group(self, group_id: str) -> Group:
        """The stored group (must exist)."""
        group = self.stores.groups.get(group_id)
        assert group is not None
        return group

    def orders(self, group_id: str) -> list[Order]:
        """The group's orders."""
        return self.stores.orders.list_for_group(group_id)
