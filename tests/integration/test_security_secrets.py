"""Secrets never leak (DESIGN §3.1/§4): the webhook secret and the exchange API keys must not
appear in logs, metrics, idempotency records, the signals audit (or any other table) or responses.

Recognisable canary values are stored in Secrets Manager; each flow runs the real handlers on
accepted, rejected (4xx) and error (5xx) paths while everything they print or log is captured
(Powertools JSON logs, EMF metric lines, stdout/stderr, stdlib log records); then every sink is
searched for every canary, and for the wrong secret a sender tried (it must not be echoed either).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import ccxt
import pytest

from engine.app.context import stores
from engine.app.gateways import clear_gateway_cache
from engine.app.intake import reset_persistence_layer
from engine.config import clear_cache, exchange_credentials, seed_webhook_secret
from engine.config.settings import exchange_secret_prefix, webhook_secret_name
from engine.domain.models import MarketPrecision, OrderPurpose, OrderStatus
from engine.exchange.ccxt_gateway import CcxtGateway
from engine.store.tables import TABLES, table_name
from tests.support.fake_exchange import FakeCcxtClient
from tests.support.scenario import engine_env, set_document
from tests.support.streams import Streams, drain, load_function
from tests.support.webhook import WebhookClient, alert, capture_powertools_logs, exit_alert, sign

WEBHOOK_SECRET = "whk_7Hq2ZpX9rL4mVt8N"
WRONG_SECRET = "guess_Bn5Rw1Jc6Ty3Ue0"
API_KEY = "apk_Gd4Lp8Sx2Wm6Qz1K"
API_SECRET = "aps_Vf7Nc3Hb9Rj5Ty2M"
API_PASSWORD = "pwd_Xe1Ka6Dm4Pq8Zs3L"
CANARIES = (WEBHOOK_SECRET, WRONG_SECRET, API_KEY, API_SECRET, API_PASSWORD)


# --------------------------------------------------------------------------- capture of every sink


@dataclass
class Sinks:
    """Everything a flow left behind, as text per sink."""

    responses: list[str] = field(default_factory=list)
    output: str = ""
    log_records: str = ""
    tables: dict[str, str] = field(default_factory=dict)

    def leaks(self) -> list[str]:
        """``sink: ...context...`` for every canary found in a sink (empty when nothing leaked)."""
        texts = {
            "responses": "\n".join(self.responses),
            "logs and metrics (stdout/stderr)": self.output,
            "log records": self.log_records,
            **{f"table {name}": text for name, text in self.tables.items()},
        }
        found: list[str] = []
        for sink, text in texts.items():
            for canary in CANARIES:
                at = text.find(canary)
                if at >= 0:
                    found.append(f"{sink}: ...{text[max(0, at - 120) : at + len(canary) + 20]}...")
        return found


def scan_tables() -> dict[str, str]:
    """Every item of every engine table that exists, as JSON text per table."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    existing = set(client.list_tables()["TableNames"])
    dumped: dict[str, str] = {}
    for _env, _short, model in TABLES:
        name = table_name(model)
        if name not in existing:
            continue
        items = [
            item for page in client.get_paginator("scan").paginate(TableName=name) for item in page["Items"]
        ]
        dumped[name] = json.dumps(items, default=str)
    return dumped


class Webhook:
    """Posts to the webhook Lambda and keeps every whole response (status, headers, body)."""

    def __init__(self, client: WebhookClient, sinks: Sinks) -> None:
        self.client = client
        self.sinks = sinks

    def post(
        self, body: dict[str, Any] | str | bytes, headers: list[tuple[str, str]] | None = None
    ) -> tuple[int, dict[str, Any]]:
        response = self.client.respond(self.client.event(body, headers=headers))
        self.sinks.responses.append(json.dumps(response))
        return int(response["statusCode"]), json.loads(response["body"])


@pytest.fixture
def world(dynamodb: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Default config; the webhook secret and binance's API keys stored as canaries."""
    engine_env(monkeypatch)
    seed_webhook_secret(WEBHOOK_SECRET)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(
        Name=f"{exchange_secret_prefix()}binance",
        SecretString=json.dumps({"apiKey": API_KEY, "secret": API_SECRET, "password": API_PASSWORD}),
    )
    clear_cache()
    reset_persistence_layer()
    clear_gateway_cache()
    yield
    clear_gateway_cache()
    reset_persistence_layer()


def run_captured(
    flow: Callable[[Webhook], None], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Sinks:
    """Run ``flow`` with every log and print captured; returns the sinks including the tables after."""
    client = WebhookClient()  # handler imported (and its loggers configured) before capturing
    sinks = Sinks()
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="engine"), capture_powertools_logs() as logs:
        flow(Webhook(client, sinks))
    printed = capsys.readouterr()
    sinks.output = "\n".join((printed.out, printed.err, logs.getvalue()))
    sinks.log_records = "\n".join(
        f"{record.getMessage()} {record.__dict__!r} {record.exc_text or ''}" for record in caplog.records
    )
    sinks.tables = scan_tables()
    return sinks


# --------------------------------------------------------------------------- webhook flows


def entry(**fields: Any) -> dict[str, Any]:
    return alert(secret=WEBHOOK_SECRET, **fields)


def signed_post(hook: Webhook, body: dict[str, Any], key: str = WEBHOOK_SECRET) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    return hook.post(raw, headers=[("X-Signature", sign(raw, key))])


def accepted_entry_then_resend_then_exit(hook: Webhook) -> None:
    body = entry(trade_id="a-1", timestamp=datetime.now(UTC) - timedelta(seconds=120))
    opened = hook.post(body)
    assert (opened[0], opened[1]["outcome"]) == (202, "opened"), opened
    assert hook.post(body) == opened  # the resend gets the first answer (idempotency record)
    exited = hook.post(exit_alert(secret=WEBHOOK_SECRET, trade_id="a-2"))
    assert (exited[0], exited[1]["outcome"]) == (202, "exited"), exited


def accepted_signed_entries(hook: Webhook) -> None:
    status, body = signed_post(hook, alert(secret=None, symbol="ETHUSDT", entry_price="3000"))
    assert (status, body["outcome"]) == (202, "opened"), body
    # the body secret and the signature together
    status, body = signed_post(hook, entry(symbol="SOLUSDT", entry_price="150"))
    assert (status, body["outcome"]) == (202, "opened"), body


def rule_refusal_when_paused(hook: Webhook) -> None:
    set_document("engine", paused=True)
    status, body = hook.post(entry())
    assert (status, body["outcome"]) == (202, "rejected"), body


def wrong_secret(hook: Webhook) -> None:
    status, body = hook.post(alert(secret=WRONG_SECRET))
    assert (status, body["error"]) == (403, "bad_secret"), body


def wrong_secret_as_a_list(hook: Webhook) -> None:
    status, body = hook.post({**alert(), "secret": [WRONG_SECRET]})
    assert (status, body["error"]) == (400, "invalid_field"), body
    assert "secret" in body["reason"]


def right_secret_as_a_list(hook: Webhook) -> None:
    status, body = hook.post({**alert(), "secret": [WEBHOOK_SECRET]})
    assert (status, body["error"]) == (400, "invalid_field"), body
    assert "secret" in body["reason"]


def wrong_signature(hook: Webhook) -> None:
    status, body = signed_post(hook, alert(secret=None), key=WRONG_SECRET)
    assert (status, body["error"]) == (403, "bad_signature"), body


def right_secret_wrong_signature(hook: Webhook) -> None:
    status, body = signed_post(hook, entry(), key=WRONG_SECRET)
    assert (status, body["error"]) == (403, "bad_signature"), body


def missing_secret(hook: Webhook) -> None:
    status, body = hook.post(alert(secret=None))
    assert (status, body["error"]) == (401, "missing_secret"), body


def malformed_body_carrying_the_secret(hook: Webhook) -> None:
    status, body = hook.post(json.dumps(entry())[:-5])
    assert (status, body["error"]) == (400, "malformed"), body
    status, body = hook.post(f"secret={WEBHOOK_SECRET}&symbol=BTCUSDT&action=buy")
    assert (status, body["error"]) == (400, "malformed"), body


def invalid_fields_next_to_the_secret(hook: Webhook) -> None:
    for body in (
        entry(entry_price="-1"),
        entry(symbol="FOOUSDT"),
        entry(exchange="KRAKEN"),
        entry(intent="reduce"),
        entry(timestamp=datetime.now(UTC) - timedelta(hours=1)),
        {**entry(), "timestamp": "{{timenow}}"},
    ):
        status, answer = hook.post(body)
        assert status == 400 and answer["outcome"] == "rejected", answer


def oversized_body_carrying_the_secret(hook: Webhook) -> None:
    status, body = hook.post({**entry(), "note": "x" * 9000})
    assert (status, body["error"]) == (413, "body_too_large"), body


def secret_unavailable(hook: Webhook) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(
        SecretId=webhook_secret_name(), ForceDeleteWithoutRecovery=True
    )
    clear_cache()
    status, body = hook.post(entry())
    assert (status, body["error"]) == (500, "secret_unavailable"), body
    status, body = signed_post(hook, entry())
    assert (status, body["error"]) == (500, "secret_unavailable"), body


def store_failure(hook: Webhook) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=table_name(TABLES[0][2]))
    status, body = hook.post(entry())
    assert status == 500 and body["outcome"] == "error", body
    status, body = signed_post(hook, entry(trade_id="signed"))
    assert status == 500 and body["outcome"] == "error", body


FLOWS: list[tuple[str, Callable[[Webhook], None]]] = [
    ("accepted entry, resend, exit", accepted_entry_then_resend_then_exit),
    ("accepted signed entries", accepted_signed_entries),
    ("202 rule refusal (paused)", rule_refusal_when_paused),
    ("403 wrong secret", wrong_secret),
    ("4xx wrong secret sent as a list", wrong_secret_as_a_list),
    ("4xx right secret sent as a list", right_secret_as_a_list),
    ("403 wrong signature", wrong_signature),
    ("403 right secret, wrong signature", right_secret_wrong_signature),
    ("401 missing secret", missing_secret),
    ("400 malformed body with the secret", malformed_body_carrying_the_secret),
    ("400 invalid fields next to the secret", invalid_fields_next_to_the_secret),
    ("413 oversized body with the secret", oversized_body_carrying_the_secret),
    ("500 secret unavailable", secret_unavailable),
    ("500 store failure", store_failure),
]


@pytest.mark.parametrize("flow", [pytest.param(flow, id=name) for name, flow in FLOWS])
def test_webhook_secret_never_leaks(
    world: None,
    flow: Callable[[Webhook], None],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the webhook secret stored as a canary
    # When the flow runs through the webhook Lambda
    sinks = run_captured(flow, caplog, capsys)
    # Then something was captured in each sink (the search is not vacuous)
    assert sinks.responses
    assert '"level"' in sinks.output  # Powertools JSON log lines
    assert '"_aws"' in sinks.output  # EMF metric lines
    # and no canary appears in any of them
    assert sinks.leaks() == []


def test_accepted_flow_writes_idempotency_and_audit_items_without_the_secret(
    world: None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given / When an accepted entry, its resend and an exit
    sinks = run_captured(accepted_entry_then_resend_then_exit, caplog, capsys)
    # Then idempotency records and audit items exist (the search covers real items) ...
    idempotency = next(text for name, text in sinks.tables.items() if name.endswith("idempotency"))
    audit = next(text for name, text in sinks.tables.items() if name.endswith("events"))
    assert len(json.loads(idempotency)) == 2
    assert len(json.loads(audit)) >= 2  # the two signals' events, and the group's transitions
    # ... and none of them holds the secret
    assert WEBHOOK_SECRET not in idempotency + audit


# --------------------------------------------------------------------------- exchange keys


class KeyedFakeClient(FakeCcxtClient):
    """The fake exchange, built with the credentials the live gateway loaded."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        super().__init__()
        self.credentials = dict(credentials)


def go_live(monkeypatch: pytest.MonkeyPatch) -> list[KeyedFakeClient]:
    """binance live (engine document), its market known, ccxt replaced by the fake (no network)."""
    set_document("engine", accounts={"binance": {"mode": "live"}, "bybit": {}, "okx": {}})
    precision = MarketPrecision(
        symbol="BTC/USDT",
        tick=Decimal("0.01"),
        step=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        min_notional=Decimal(5),
    )
    stores().markets.put_many("binance", [precision], datetime.now(UTC))
    built: list[KeyedFakeClient] = []

    def build_client(gateway: CcxtGateway) -> KeyedFakeClient:
        client = KeyedFakeClient(gateway._credentials)
        client.script["create_order"] = [
            ccxt.AuthenticationError('binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions."}'),
            ccxt.InsufficientFunds('binance {"code":-2010,"msg":"Account has insufficient balance."}'),
            ccxt.NetworkError("binance GET https://api.binance.com/api/v3/order timed out"),
        ]
        built.append(client)
        return client

    monkeypatch.setattr(CcxtGateway, "_build_client", build_client)
    clear_gateway_cache()
    return built


def test_exchange_keys_are_used_but_never_leak(
    world: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given binance switched to live with canary API keys in Secrets Manager
    assert exchange_credentials("binance")["apiKey"] == API_KEY
    built = go_live(monkeypatch)
    executor = load_function("order_executor")
    streams = Streams()

    def flow(hook: Webhook) -> None:
        # When an entry opens a group and the executor sends its legs: one refused for bad keys, one for
        # funds, one network failure (retried on the next delivery), the rest accepted
        status, body = hook.post(entry())
        assert (status, body["outcome"]) == (202, "opened"), body
        drain(streams, {"orders": [executor]}, replay=2, strict=False)
        # and a wrong secret arrives meanwhile
        assert hook.post(alert(secret=WRONG_SECRET))[0] == 403

    sinks = run_captured(flow, caplog, capsys)

    # Then the live gateway was built with the keys from Secrets Manager (they were really loaded)
    assert built and built[0].credentials == {
        "apiKey": API_KEY,
        "secret": API_SECRET,
        "password": API_PASSWORD,
    }
    orders = [o for o in stores().orders.list_by_status(list(OrderStatus)) if o.purpose is OrderPurpose.ENTRY]
    statuses = sorted(o.status.value for o in orders)
    assert statuses.count("rejected") == 2 and "open" in statuses, statuses
    assert all(o.reason for o in orders if o.status is OrderStatus.REJECTED)
    # and no key, nor the webhook secret, appears in any response, log, metric or table
    assert sinks.leaks() == []
