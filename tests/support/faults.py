"""Harness of the fault, crash-recovery and stream-replay suites (no tests of its own).

A :class:`World` runs TWO groups side by side in one moto account on one fake ccxt exchange (the real
``CcxtGateway`` over :class:`~tests.support.fake_exchange.FakeCcxtClient`): ``CLEAN/USDT`` never sees a
fault, ``FAULT/USDT`` gets the faults a test scripts with :class:`Faults`. Both follow the same
lifecycle (:func:`run_lifecycle`): open (5 limit legs from 60000), price 59500 (legs 1-2 fill, their
TPs are placed), price 60000 (the TP of leg 2 fills), exit (resting legs and TP 1 cancelled, one
market close order, filled at 60000). The clean group is the fault-free run the faulty group must
converge to: :meth:`World.snapshot` names orders relative to their group, so the two compare equal.

Driving: :meth:`World.drain` feeds moto's real stream records to the real handlers
(``order_executor`` + ``position_update`` on orders, ``slot_release`` on groups) until quiet; records
of one group can be dropped (a lost batch / a crash before the consumer ran) or held back (to be
delivered by the test). :meth:`World.settle` alternates ``order_sync`` runs (the clock moves one
minute per run, so stale pending orders are re-driven and absence is proven on spaced lookups) with
drains until nothing changes for a few runs. The fake market keeps trading at each symbol's last
price (:meth:`World.match` after every drain round and sync), so an order that reaches the exchange
late fills as it would have on time. Send claims (``StateStore.mark_once``) expire on the world's
clock. Orders hidden by an ``accept_then(..., hide=True)`` step
become visible after the next sync (an exchange whose reads lag its writes by under a minute).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from engine.app.context import Stores, engine_context
from engine.app.gateways import clear_gateway_cache
from engine.app.positions import request_close
from engine.app.sync import SyncSummary, run_sync
from engine.config.settings import config_prefix
from engine.domain.models import CloseReason, Order, utcnow
from engine.exchange.ccxt_convert import order_from_ccxt
from engine.exchange.client_ids import client_order_id
from tests.support.fake_exchange import FakeCcxtClient, install_exchange
from tests.support.reconciliation import Report, reconciliation_report
from tests.support.scenario import engine_env, open_group
from tests.support.streams import Streams, deliver, failed_items, load_function

EXCHANGE = "binance"
CLEAN = "CLEAN/USDT"
FAULTY = "FAULT/USDT"
SYMBOLS = (CLEAN, FAULTY)
MARKET_RULES = {"tick": "0.01", "step": "0.00001", "min_qty": "0.00001", "min_notional": "5"}
ENTRY_PRICE = 60000.0
LEG_FILL_PRICE = 59500.0  # legs 1 (60000) and 2 (59700) fill; 3-5 (59400, 58800, 57600) rest
TP_FILL_PRICE = 60000.0  # the TP of leg 2 (59700 + 0.5 % = 59998.5) fills; leg 1's (60600) rests

#: (method, index of the symbol argument) of the ccxt calls CcxtGateway makes.
_SYMBOL_ARG = {
    "create_order": 0,
    "fetch_open_orders": 0,
    "fetch_closed_orders": 0,
    "fetch_order": 1,
    "cancel_order": 1,
}


def record_group_id(record: dict[str, Any]) -> str:
    """The group a Lambda stream record belongs to (orders: ``group_id``, groups: ``id``)."""
    data = record["dynamodb"]
    image = data.get("NewImage") or data.get("OldImage") or {}
    value = image.get("group_id") or image.get("id") or {}
    return str(value.get("S", ""))


def _client_id_of(args: Sequence[Any]) -> str | None:
    params = args[-1] if args and isinstance(args[-1], dict) else {}
    value = next(iter(params.values()), None) if params else None
    return str(value) if value is not None else None


@dataclass
class Rule:
    """Steps played by the calls of ``methods`` on ``symbol`` (and ``client_id`` when given).

    A step is an exception (raised) or a callable (called with the call's arguments). ``persistent``:
    the last step is played forever.
    """

    methods: frozenset[str]
    steps: list[Any]
    symbol: str = FAULTY
    client_id: str | None = None
    persistent: bool = False
    #: Extra condition on the call's arguments.
    when: Callable[[Sequence[Any]], bool] | None = None
    played: int = 0

    def matches(self, method: str, args: Sequence[Any]) -> bool:
        if method not in self.methods or not self.steps:
            return False
        if self.when is not None and not self.when(args):
            return False
        position = _SYMBOL_ARG[method]
        symbol = args[position] if len(args) > position else None
        if symbol is not None and symbol != self.symbol:
            return False
        return self.client_id is None or _client_id_of(args) == self.client_id

    def play(self, args: Sequence[Any]) -> Any:
        step = self.steps[0] if self.persistent and len(self.steps) == 1 else self.steps.pop(0)
        self.played += 1
        if isinstance(step, BaseException):
            raise step
        return step(*args)


class Faults:
    """Fault rules on top of a :class:`FakeCcxtClient`; calls no rule matches behave normally.

    Also counts, per client order id, the creates the exchange *accepted* and the create attempts for
    a client id it already had (``duplicate_attempts``).
    """

    def __init__(self, client: FakeCcxtClient) -> None:
        self.client = client
        self.rules: list[Rule] = []
        self.accepted: Counter[str] = Counter()
        self.duplicate_attempts: Counter[str] = Counter()
        for method in _SYMBOL_ARG:
            setattr(client, method, self._wrapped(method, getattr(client, method)))
        accept = client.accept

        def counting_accept(*args: Any) -> Any:
            cid = str(args[5]["clientOrderId"])
            if cid in client.orders:
                self.duplicate_attempts[cid] += 1
            order = accept(*args)
            self.accepted[cid] += 1
            return order

        client.accept = counting_accept  # type: ignore[method-assign,assignment]

    def _wrapped(self, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            for rule in self.rules:
                if rule.matches(method, args):
                    self.client.calls.append((method, args))
                    return rule.play(args)
            return original(*args)

        return call

    def add(
        self,
        methods: str | Iterable[str],
        *steps: Any,
        client_id: str | None = None,
        symbol: str = FAULTY,
        persistent: bool = False,
        when: Callable[[Sequence[Any]], bool] | None = None,
    ) -> Rule:
        """Script ``steps`` for the next matching calls (see :class:`Rule`)."""
        names = frozenset([methods] if isinstance(methods, str) else methods)
        rule = Rule(names, list(steps), symbol=symbol, client_id=client_id, persistent=persistent, when=when)
        self.rules.append(rule)
        return rule

    def creates(self, client_id: str) -> int:
        """Create attempts that reached the exchange for ``client_id`` (scripted or not)."""
        return sum(
            1
            for name, args in self.client.calls
            if name == "create_order" and _client_id_of(args) == client_id
        )


@dataclass
class World:
    """Two groups, one fake exchange, the real handlers (module docstring)."""

    stores: Stores
    client: FakeCcxtClient
    faults: Faults
    streams: Streams = field(default_factory=Streams)
    now: datetime = field(default_factory=utcnow)
    groups: dict[str, str] = field(default_factory=dict)
    syncs: list[SyncSummary] = field(default_factory=list)
    executor: ModuleType = field(default_factory=lambda: load_function("order_executor"))
    position_update: ModuleType = field(default_factory=lambda: load_function("position_update"))
    slot_release: ModuleType = field(default_factory=lambda: load_function("slot_release"))
    #: Records whose group id is in ``drop`` are lost (never delivered); in ``hold`` kept for the test.
    drop: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    held: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Every distinct reason an order of the faulty group carried at the end of a drain round or sync.
    reasons: dict[str, list[str]] = field(default_factory=dict)
    #: The last traded price per symbol (see :meth:`match`).
    prices: dict[str, float] = field(default_factory=dict)

    # -- ids ------------------------------------------------------------------------------------

    @property
    def faulty_group(self) -> str:
        return self.groups[FAULTY]

    def order_id(self, suffix: str, symbol: str = FAULTY) -> str:
        """``"p1-l3"`` -> the order id of that order in the group of ``symbol``."""
        return f"{self.groups[symbol]}-{suffix}"

    def client_id(self, suffix: str, symbol: str = FAULTY) -> str:
        """The client order id of :meth:`order_id`."""
        return client_order_id(self.order_id(suffix, symbol))

    def order(self, suffix: str, symbol: str = FAULTY) -> Order:
        found = self.stores.orders.get(self.order_id(suffix, symbol))
        assert found is not None, suffix
        return found

    # -- driving --------------------------------------------------------------------------------

    def open_groups(self) -> None:
        """Open both groups as the webhook does (legs pending, nothing sent yet)."""
        for symbol in SYMBOLS:
            self.stores.prices.set(EXCHANGE, symbol, Decimal(str(ENTRY_PRICE)), self.now)
            group, _ = open_group(self.stores, self.now, symbol=symbol, price=str(int(ENTRY_PRICE)))
            self.groups[symbol] = group.id

    def drain(self, max_rounds: int = 20) -> int:
        """Deliver every new stream record to its consumers until quiet; returns records delivered."""
        consumers = {
            "orders": (self.executor, self.position_update),
            "groups": (self.slot_release,),
        }
        delivered = 0
        for _ in range(max_rounds):
            round_records = 0
            for table, handlers in consumers.items():
                for event in self.streams.new_events(table):
                    records = []
                    for record in event["Records"]:
                        group_id = record_group_id(record)
                        if group_id in self.drop:
                            continue
                        if group_id in self.hold:
                            self.held.setdefault(table, []).append(record)
                            continue
                        records.append(record)
                    if not records:
                        continue
                    round_records += len(records)
                    for handler in handlers:
                        try:
                            response = deliver(handler, {"Records": records})
                        except BatchProcessingError:  # every record failed: Lambda retries the batch
                            sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
                            self.failures.extend((handler.__name__, seq) for seq in sequence)
                            continue
                        self.failures.extend((handler.__name__, seq) for seq in failed_items(response))
            if round_records == 0:
                return delivered
            delivered += round_records
            self.match()
            self.observe()
        raise AssertionError(f"streams still busy after {max_rounds} rounds")

    def sync(self) -> SyncSummary:
        """One forced order_sync a minute after the previous one, then reveal lagging orders."""
        self.now = max(self.now, utcnow()) + timedelta(minutes=1)
        summary = run_sync(engine_context(), self.now, force=True)
        self.syncs.append(summary)
        self.match()
        self.observe()
        for cid in list(self.client.hidden):
            self.client.reveal(cid)
        return summary

    def observe(self) -> None:
        """Remember the reasons the faulty group's orders carry now (see :attr:`reasons`)."""
        if FAULTY not in self.groups:
            return
        for order in self.stores.orders.list_for_group(self.faulty_group):
            seen = self.reasons.setdefault(order.id, [])
            if order.reason and order.reason not in seen:
                seen.append(order.reason)

    def fingerprint(self) -> tuple[Any, ...]:
        orders = tuple(
            sorted(
                (o.id, o.version)
                for gid in self.groups.values()
                for o in self.stores.orders.list_for_group(gid)
            )
        )
        groups = tuple(
            sorted(
                (g.id, g.version, g.status.value)
                for g in (self.stores.groups.get(gid) for gid in self.groups.values())
                if g is not None
            )
        )
        exchange = tuple(sorted((cid, o["status"], o["filled"]) for cid, o in self.client.orders.items()))
        return orders, groups, exchange, self.stores.pool.count()

    def settle(self, *, quiet_rounds: int = 2, max_rounds: int = 20) -> None:
        """Drain, then sync + drain until nothing changes for ``quiet_rounds`` syncs in a row."""
        self.drain()
        quiet = 0
        before = self.fingerprint()
        for _ in range(max_rounds):
            self.sync()
            self.drain()
            after = self.fingerprint()
            quiet = quiet + 1 if after == before else 0
            before = after
            if quiet >= quiet_rounds:
                return
        raise AssertionError(f"no convergence after {max_rounds} syncs: {self.snapshot(FAULTY)}")

    def match(self) -> list[str]:
        """The market keeps trading at each symbol's last price: orders placed since then fill too."""
        return [cid for symbol, price in self.prices.items() for cid in self.cross(price, [symbol])]

    def cross(self, price: float, symbols: Iterable[str] = SYMBOLS) -> list[str]:
        """The market trades at ``price``: fill every order it crosses (hidden ones too); prices table.

        Limit orders fill at their limit price, market orders at ``price`` (a simplification that keeps
        runs comparable: an order that reaches the exchange late fills as it would have on time).
        """
        filled = []
        wanted = set(symbols)
        for symbol in wanted:
            self.prices[symbol] = price
        for cid, order in self.client.orders.items():
            if order["symbol"] not in wanted or order["status"] != "open":
                continue
            limit = order["price"]
            if order["type"] == "market" or limit is None:
                self.client.fill(cid, price=price)
            elif (order["side"] == "buy" and price <= limit) or (order["side"] == "sell" and price >= limit):
                self.client.fill(cid, price=limit)
            else:
                continue
            filled.append(cid)
        for symbol in wanted:
            self.stores.prices.set(EXCHANGE, symbol, Decimal(str(price)), self.now)
        return filled

    def exit(self, symbols: Iterable[str] = SYMBOLS) -> None:
        """Exit signals: both groups start closing (cancels requested; the close order follows)."""
        for symbol in symbols:
            assert request_close(
                engine_context(),
                self.groups[symbol],
                reason=CloseReason.EXIT,
                note="exit signal",
                now=self.now,
            )

    # -- observing ------------------------------------------------------------------------------

    def snapshot(self, symbol: str) -> dict[str, Any]:
        """The group and its orders (engine and exchange side), ids relative to the group."""
        group_id = self.groups[symbol]
        group = self.stores.groups.get(group_id)
        assert group is not None
        by_cid = {}
        orders = {}
        for order in self.stores.orders.list_for_group(group_id):
            name = order.id.replace(group_id, "G")
            by_cid[order.client_order_id] = name
            orders[name] = (
                order.purpose.value,
                order.side.value,
                order.type.value,
                order.status.value,
                order.amount,
                order.price,
                order.filled,
                order.average,
            )
        exchange = {
            by_cid.get(cid, f"stray:{cid}"): (o["side"], o["status"], o["amount"], o["filled"])
            for cid, o in self.client.orders.items()
            if o["symbol"] == symbol
        }
        figures = group.figures
        return {
            "status": group.status.value,
            "quantity": figures.quantity,
            "avg_entry": figures.avg_entry,
            "realized_pnl_usd": figures.realized_pnl_usd,
            "filled_legs": figures.filled_legs,
            "total_legs": figures.total_legs,
            "orders": orders,
            "exchange": exchange,
        }

    def report(self, now: datetime | None = None) -> Report:
        """The reconciliation report against the fake exchange's book (read directly: no faults)."""

        def book() -> list[Any]:
            return [order_from_ccxt(dict(raw), EXCHANGE) for raw in self.client.orders.values()]

        return reconciliation_report(self.stores, now or self.now, sources={EXCHANGE: book})

    def assert_no_duplicates(self) -> None:
        """No client id was accepted twice or sent again once the exchange had it."""
        assert max(self.faults.accepted.values(), default=0) <= 1, self.faults.accepted
        assert not self.faults.duplicate_attempts, dict(self.faults.duplicate_attempts)


def make_world(monkeypatch: pytest.MonkeyPatch) -> World:
    """Config seeded (two extra paper markets), the fake exchange installed, streams positioned."""
    world_clock: list[World] = []
    # Claims (send markers) expire on the world's clock, which the syncs move on a minute at a time:
    # the handlers read it through the injected context.
    stores = engine_env(monkeypatch, clock=lambda: world_clock[0].now).stores
    clear_gateway_cache()
    ssm = boto3.client("ssm", region_name="us-east-1")
    name = config_prefix() + "engine"
    document = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    paper = document.get("paper") or {}
    paper["markets"] = {**(paper.get("markets") or {}), **{symbol: MARKET_RULES for symbol in SYMBOLS}}
    document["paper"] = paper
    ssm.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
    from engine.config import clear_cache

    clear_cache()
    assert FAULTY in engine_context().config.snapshot().engine.paper.markets
    client = FakeCcxtClient()
    install_exchange(client)
    world = World(stores=stores, client=client, faults=Faults(client))
    world_clock.append(world)
    world.streams.skip("orders", "groups")
    return world


Phase = Callable[[World], None]


def run_lifecycle(world: World, before: dict[str, Phase] | None = None) -> None:
    """The scenario of the module docstring; ``before[phase]`` runs just before a phase's settle.

    Hooks: ``open`` (groups written, nothing sent), ``fill`` (before the price moves to 59500),
    ``filled`` (legs 1-2 filled on the exchange, nothing recorded yet), ``tp`` (before 60000), ``exit``
    (before the exit), ``close`` (the close order exists; price 60000 then fills it).
    """
    hooks = before or {}
    world.open_groups()
    hooks.get("open", _nothing)(world)
    world.settle()
    hooks.get("fill", _nothing)(world)
    world.cross(LEG_FILL_PRICE)
    hooks.get("filled", _nothing)(world)
    world.settle()
    hooks.get("tp", _nothing)(world)
    world.cross(TP_FILL_PRICE)
    world.settle()
    hooks.get("exit", _nothing)(world)
    world.exit()
    world.settle()
    hooks.get("close", _nothing)(world)
    world.cross(TP_FILL_PRICE)
    world.settle()


def _nothing(world: World) -> None:
    return None
