"""One real ccxt exchange class per venue, with only HTTP faked (see ``fake_http``).

A ``Venue`` builds ``CcxtGateway(name)`` as production does (the real ``ccxt.binance``/``bybit``/``okx``
object, built by the gateway itself), puts a ``FakeHttp`` under it, serves the markets, and knows how
that exchange writes an order, a cancel answer, a balance and its errors (payloads in ``payloads/``).

Orders are described in one neutral vocabulary — ``state`` is ``new``, ``partial``, ``filled``,
``canceled`` — and each venue writes them in its own format (``PARTIALLY_FILLED``, ``PartiallyFilled``,
``partially_filled``...). ``canceled`` with a fill is the exchange's "partially filled, then cancelled"
(bybit's ``PartiallyFilledCanceled``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.exchange.ccxt_gateway import CcxtGateway
from tests.conformance.fake_http import FakeHttp, Reply, Sent, attach

PAYLOADS = Path(__file__).parent / "payloads"
CID = "0123456789abcdef0123456789abcdef"
ORDER_ID = "1971981115648733696"


def payloads(name: str) -> dict[str, Any]:
    """The recorded payloads of one exchange (a fresh copy: tests may edit it)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@dataclass(frozen=True)
class Fill:
    """What an order has done so far: filled quantity, average price, fee and its currency."""

    filled: str = "0"
    average: str | None = None
    fee: str = "0"
    fee_currency: str = "BTC"

    @property
    def cost(self) -> str:
        return str(Decimal(self.filled) * Decimal(self.average or "0"))


@dataclass(frozen=True)
class Spec:
    """What each venue's create request must look like (checked field by field)."""

    create: tuple[str, str]  # method, path
    client_id_field: str
    amount_field: str
    price_field: str
    side_buy: str
    type_limit: str
    cancel: tuple[str, str, str]  # method, path, client id field


class Venue:
    """Base: the gateway over a real ccxt class, its fake HTTP, and how this exchange writes things."""

    name = ""
    symbol = "BTC/USDT"
    spec: Spec

    def __init__(self, market_type: str = "spot") -> None:
        self.data = payloads(self.name)
        self.gateway = CcxtGateway(
            self.name,
            api_key="key",
            secret="secret",
            password="passphrase",
            market_type=market_type,
            sleep=lambda _: None,
        )
        self.http: FakeHttp = attach(self.gateway.client)
        self.serve_markets()

    # -- to implement per venue ------------------------------------------------------------------
    def serve_markets(self) -> None:
        raise NotImplementedError

    def order(self, state: str, fill: Fill = Fill(), *, amount: str = "0.002", price: str = "30000") -> dict:
        """A native order payload of our order (client id ``CID``) in ``state``."""
        raise NotImplementedError

    def serve_order(self, order: dict | None) -> None:
        """Answer every lookup by client id with ``order`` (``None``: the exchange does not know it)."""
        raise NotImplementedError

    def serve_create(self, *answers: Any) -> None:
        """Answer creates with ``answers`` (default: the exchange's acceptance)."""
        self.http.on(*self.spec.create, *(answers or (self.create_answer(),)))

    def create_answer(self) -> Any:
        raise NotImplementedError

    def serve_cancel(self, order: dict | None) -> None:
        """Answer a cancel of ``order`` (``None``: unknown order) and the lookups that follow."""
        raise NotImplementedError

    def serve_balance(self, totals: dict[str, str]) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------
    def error(self, name: str) -> Reply:
        """A recorded error answer (``insufficientBalance``, ``rateLimit``, ``unclassified``...)."""
        entry = copy.deepcopy(self.data["errors"][name])
        return Reply(entry["body"], entry["status"])

    def creates(self) -> list[Sent]:
        """Create requests sent so far."""
        return self.http.requests_to(*self.spec.create)


def _with_cid(value: Any) -> Any:
    text = json.dumps(value).replace('"CID"', json.dumps(CID))
    return json.loads(text)


class Binance(Venue):
    name = "binance"
    spec = Spec(
        ("POST", "/api/v3/order"),
        "newClientOrderId",
        "quantity",
        "price",
        "BUY",
        "LIMIT",
        ("DELETE", "/api/v3/order", "origClientOrderId"),
    )
    _STATES = {"new": "NEW", "partial": "PARTIALLY_FILLED", "filled": "FILLED", "canceled": "CANCELED"}

    def serve_markets(self) -> None:
        for path in ("/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs"):
            self.http.on("GET", path, [])
        self.http.on("GET", "/sapi/v1/margin/isolated/allPairs", [])
        self.http.on("GET", "/api/v3/exchangeInfo", self.data["exchangeInfo"])
        self.http.on("GET", "/fapi/v1/exchangeInfo", self.data["fapiExchangeInfo"])
        self.http.on("GET", "/dapi/v1/exchangeInfo", self.data["dapiExchangeInfo"])

    def order(self, state: str, fill: Fill = Fill(), *, amount: str = "0.002", price: str = "30000") -> dict:
        order = _with_cid(self.data["order"])
        order.update(status=self._STATES[state], origQty=amount, price=price, executedQty=fill.filled)
        order["cummulativeQuoteQty"] = fill.cost
        return order

    def trades(self, *fills: Fill) -> list[dict]:
        """``myTrades`` rows of our order: one per fill (binance's only source of commissions)."""
        rows = []
        for n, fill in enumerate(fills):
            row = dict(self.data["trade"], id=28457 + n, qty=fill.filled, price=fill.average)
            row.update(commission=fill.fee, commissionAsset=fill.fee_currency, quoteQty=fill.cost)
            rows.append(row)
        return rows

    def serve_trades(self, *fills: Fill) -> None:
        self.http.on("GET", "/api/v3/myTrades", self.trades(*fills))

    def create_answer(self) -> Any:
        return _with_cid(self.data["createAnswer"])

    def serve_order(self, order: dict | None) -> None:
        found = order if order is not None else self.error("orderDoesNotExist")
        self.http.on("GET", "/api/v3/order", found)
        is_open = order is not None and order["status"] in ("NEW", "PARTIALLY_FILLED")
        self.http.on("GET", "/api/v3/openOrders", [order] if is_open else [])

    def serve_cancel(self, order: dict | None) -> None:
        if order is None:
            self.http.on("DELETE", "/api/v3/order", self.error("unknownOrder"))
        else:
            answer = _with_cid(self.data["cancelAnswer"])
            answer.update({k: order[k] for k in ("origQty", "executedQty", "cummulativeQuoteQty", "price")})
            self.http.on("DELETE", "/api/v3/order", answer)
        self.serve_order(order)

    def serve_balance(self, totals: dict[str, str]) -> None:
        balances = [{"asset": a, "free": v, "locked": "0"} for a, v in totals.items()]
        self.http.on(
            "GET", "/api/v3/account", {"accountType": "SPOT", "canTrade": True, "balances": balances}
        )


class Bybit(Venue):
    name = "bybit"
    spec = Spec(
        ("POST", "/v5/order/create"),
        "orderLinkId",
        "qty",
        "price",
        "Buy",
        "Limit",
        ("POST", "/v5/order/cancel", "orderLinkId"),
    )
    _STATES = {"new": "New", "partial": "PartiallyFilled", "filled": "Filled", "canceled": "Cancelled"}

    def serve_markets(self) -> None:
        instruments = self.data["instruments"]

        def by_category(sent: Sent) -> Any:
            return instruments.get(sent.params.get("category"), instruments["empty"])

        self.http.on("GET", "/v5/asset/coin/query-info", self.data["coins"])
        self.http.on("GET", "/v5/market/instruments-info", by_category)
        self.http.on("GET", "/v5/user/query-api", self.data["queryApi"])
        self.http.on("GET", "/v5/account/info", self.data["accountInfo"])

    def order(self, state: str, fill: Fill = Fill(), *, amount: str = "0.002", price: str = "30000") -> dict:
        order = _with_cid(self.data["order"])
        status = self._STATES[state]
        if state == "canceled" and Decimal(fill.filled) > 0:
            status = "PartiallyFilledCanceled"
        leaves = "0" if state in ("filled", "canceled") else str(Decimal(amount) - Decimal(fill.filled))
        order.update(orderStatus=status, qty=amount, price=price, cumExecQty=fill.filled, leavesQty=leaves)
        order.update(cumExecValue=fill.cost, avgPrice=fill.average or "", cumExecFee=fill.fee)
        if Decimal(fill.fee):
            order["cumFeeDetail"] = {fill.fee_currency: fill.fee}
        return order

    def _listing(self, orders: list[dict]) -> dict:
        return {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"category": "spot", "nextPageCursor": "", "list": orders},
            "retExtInfo": {},
            "time": 1749814467805,
        }

    def create_answer(self) -> Any:
        return _with_cid(self.data["createAnswer"])

    def serve_order(self, order: dict | None) -> None:
        is_open = order is not None and order["orderStatus"] in ("New", "PartiallyFilled")
        self.http.on("GET", "/v5/order/realtime", self._listing([order] if order and is_open else []))
        self.http.on("GET", "/v5/order/history", self._listing([order] if order and not is_open else []))

    def serve_cancel(self, order: dict | None) -> None:
        answer = self.error("orderNotExists") if order is None else _with_cid(self.data["cancelAnswer"])
        self.http.on("POST", "/v5/order/cancel", answer)
        self.serve_order(order)

    def serve_balance(self, totals: dict[str, str]) -> None:
        coins = [
            {"coin": c, "walletBalance": v, "equity": v, "locked": "0", "usdValue": v}
            for c, v in totals.items()
        ]
        account = {"accountType": "UNIFIED", "totalEquity": "0", "coin": coins}
        self.http.on("GET", "/v5/account/wallet-balance", self._listing([account]))


class Okx(Venue):
    name = "okx"
    symbol = "BTC/USDT"
    spec = Spec(
        ("POST", "/api/v5/trade/batch-orders"),
        "clOrdId",
        "sz",
        "px",
        "buy",
        "limit",
        ("POST", "/api/v5/trade/cancel-order", "clOrdId"),
    )
    _STATES = {"new": "live", "partial": "partially_filled", "filled": "filled", "canceled": "canceled"}

    def serve_markets(self) -> None:
        instruments = self.data["instruments"]

        def by_type(sent: Sent) -> Any:
            return instruments.get(sent.params.get("instType"), instruments["empty"])

        self.http.on("GET", "/api/v5/asset/currencies", self.data["currencies"])
        self.http.on("GET", "/api/v5/public/instruments", by_type)

    def order(self, state: str, fill: Fill = Fill(), *, amount: str = "0.002", price: str = "30000") -> dict:
        order = _with_cid(self.data["order"])
        fee = str(-Decimal(fill.fee)) if Decimal(fill.fee) else "0"
        order.update(state=self._STATES[state], sz=amount, px=price, accFillSz=fill.filled)
        order.update(avgPx=fill.average or "", fee=fee, feeCcy=fill.fee_currency)
        return order

    def create_answer(self) -> Any:
        return _with_cid(self.data["createAnswer"])

    def serve_order(self, order: dict | None) -> None:
        found = {"code": "0", "msg": "", "data": [order]} if order else self.error("orderNotExists")
        self.http.on("GET", "/api/v5/trade/order", found)
        is_open = order is not None and order["state"] in ("live", "partially_filled")
        self.http.on(
            "GET",
            "/api/v5/trade/orders-pending",
            {"code": "0", "msg": "", "data": [order] if is_open else []},
        )

    def serve_cancel(self, order: dict | None) -> None:
        answer = self.error("cancelNotExists") if order is None else _with_cid(self.data["cancelAnswer"])
        self.http.on("POST", "/api/v5/trade/cancel-order", answer)
        self.serve_order(order)

    def serve_balance(self, totals: dict[str, str]) -> None:
        details = [
            {"ccy": c, "eq": v, "cashBal": v, "availBal": v, "frozenBal": "0"} for c, v in totals.items()
        ]
        self.http.on(
            "GET", "/api/v5/account/balance", {"code": "0", "msg": "", "data": [{"details": details}]}
        )


VENUES: dict[str, type[Venue]] = {"binance": Binance, "bybit": Bybit, "okx": Okx}
