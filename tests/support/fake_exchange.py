"""A patched exchange for fault tests: a scriptable fake ccxt client behind the REAL ``CcxtGateway``.

The engine's own gateway code (error mapping, create reconciliation, read retries) runs unchanged;
only the ccxt exchange object is fake. :func:`install_exchange` makes the test's engine context
(``ctx.gateways``, see ``tests.support.scenario.engine_env``) answer that gateway for every account,
which is how the executor and order_sync reach an exchange.

``FakeCcxtClient`` behaves like an exchange that keeps every accepted order (client id -> ccxt order
dict) unless a script says otherwise: ``client.script["create_order"] = [step, ...]`` where a step is an
exception instance (raised), a callable (called with the method's arguments) or a value (returned).
``accept_then(error)`` builds the "the exchange took it but the answer was lost" step; ``hidden``
client ids are kept but not shown by lookups (an exchange whose read side lags its write side).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ccxt

from engine.app.context import engine_context
from engine.exchange.ccxt_gateway import CcxtGateway
from tests.support.scenario import SwitchableGateways

Step = Any


class FakeCcxtClient:
    """A scriptable stand-in for a ccxt exchange object (binance dialect: fetch_order by client id)."""

    def __init__(self) -> None:
        self.has = {"fetchTickers": True, "fetchCanceledAndClosedOrders": False}
        self.precisionMode = 4  # TICK_SIZE
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.script: dict[str, list[Step]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.hidden: set[str] = set()
        self.markets: dict[str, dict[str, Any]] = {}
        self.tickers: dict[str, dict[str, Any]] = {}

    # -- scripting ----------------------------------------------------------------------------------

    def _run(self, method: str, args: tuple[Any, ...], default: Callable[..., Any]) -> Any:
        self.calls.append((method, args))
        queue = self.script.get(method) or []
        if queue:
            step = queue.pop(0)
            if isinstance(step, BaseException):
                raise step
            return step(*args) if callable(step) else step
        return default(*args)

    def count(self, method: str) -> int:
        """How many times ``method`` was called."""
        return sum(1 for name, _ in self.calls if name == method)

    def accept_then(self, error: BaseException, *, hide: bool = False) -> Callable[..., Any]:
        """A create step that accepts the order, then raises ``error`` (the answer is lost).

        ``hide``: lookups do not see the order until :meth:`reveal` (read-after-write lag).
        """

        def step(*args: Any) -> Any:
            order = self.accept(*args)
            if hide:
                self.hidden.add(order["clientOrderId"])
            raise error

        return step

    def reveal(self, client_order_id: str) -> None:
        """Let lookups see a hidden order."""
        self.hidden.discard(client_order_id)

    def fill(self, client_order_id: str, *, price: float, amount: float | None = None) -> None:
        """Fill (part of) an accepted order at ``price``; a complete fill closes it."""
        order = self.orders[client_order_id]
        filled = order["amount"] if amount is None else amount
        order.update(
            filled=filled,
            average=price,
            cost=filled * price,
            fee={"cost": filled * price * 0.001, "currency": "USDT"},
            status="closed" if filled >= order["amount"] else "open",
            lastTradeTimestamp=1_700_000_060_000,
        )

    # -- default behaviour: an exchange that keeps what it accepts -----------------------------------

    def accept(
        self, symbol: str, type_: str, side: str, amount: float, price: float | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        cid = params["clientOrderId"]
        if cid in self.orders:
            raise ccxt.InvalidOrder("Duplicate order sent.")
        order = {
            "id": f"ex-{len(self.orders) + 1}",
            "clientOrderId": cid,
            "symbol": symbol,
            "type": type_,
            "side": side,
            "amount": amount,
            "price": price,
            "status": "open",
            "filled": 0.0,
            "average": None,
            "cost": 0.0,
            "fee": None,
            "timestamp": 1_700_000_000_000,
            "lastTradeTimestamp": None,
        }
        self.orders[cid] = order
        return dict(order)

    def _find(self, id_: Any, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        cid = next(iter(params.values()))
        if cid not in self.orders or cid in self.hidden:
            raise ccxt.OrderNotFound(f"Order {cid} does not exist")
        return dict(self.orders[cid])

    def _cancel(self, id_: Any, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        order = self._find(id_, symbol, params)
        if order["status"] != "open":
            raise ccxt.OrderNotFound("Unknown order sent.")
        self.orders[order["clientOrderId"]]["status"] = "canceled"
        return dict(self.orders[order["clientOrderId"]])

    def _listing(self, open_: bool) -> Callable[..., list[dict[str, Any]]]:
        def listing(symbol: str | None = None, *rest: Any) -> list[dict[str, Any]]:
            return [
                dict(o)
                for cid, o in self.orders.items()
                if cid not in self.hidden
                and (o["status"] == "open") == open_
                and (symbol is None or o["symbol"] == symbol)
            ]

        return listing

    # -- the ccxt methods CcxtGateway calls ------------------------------------------------------------

    def create_order(self, *args: Any) -> Any:
        return self._run("create_order", args, self.accept)

    def fetch_order(self, *args: Any) -> Any:
        return self._run("fetch_order", args, self._find)

    def cancel_order(self, *args: Any) -> Any:
        return self._run("cancel_order", args, self._cancel)

    def fetch_open_orders(self, *args: Any) -> Any:
        return self._run("fetch_open_orders", args, self._listing(True))

    def fetch_closed_orders(self, *args: Any) -> Any:
        return self._run("fetch_closed_orders", args, self._listing(False))

    def load_markets(self, *args: Any) -> Any:
        return self._run("load_markets", args, lambda *a: self.markets)

    def fetch_tickers(self, *args: Any) -> Any:
        return self._run("fetch_tickers", args, lambda symbols: {s: self.tickers[s] for s in symbols})


def install_exchange(client: FakeCcxtClient, *, name: str = "binance") -> CcxtGateway:
    """Answer a ``CcxtGateway`` over ``client`` (no sleeping) for every account of the test's context."""
    gateway = CcxtGateway(name, client=client, sleep=lambda _seconds: None, retries=3)
    factory = engine_context().gateways
    assert isinstance(factory, SwitchableGateways), "install_exchange needs engine_env / engine_session"
    factory.install(gateway)
    return gateway
