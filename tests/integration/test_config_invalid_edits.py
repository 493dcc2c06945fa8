"""Invalid SSM edits of every configuration document (DESIGN §4).

Given a good operator edit of a document, when the operator then saves an invalid version, then:
- the last good version is kept — shown by behaviour (``load_config`` / ``load_dca`` values and versions,
  and the webhook still opening groups under that version);
- ``ConfigInvalid`` is emitted as an EMF metric with the parameter as dimension;
- an error log line names the parameter and the field.
With no valid version at all, new entries are refused with that reason (202 rejected, audited).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from engine.app.context import stores
from engine.config import CONFIG_INVALID_METRIC, load_config, load_dca
from engine.config.settings import config_prefix
from engine.domain.config import DcaConfig, dump_document
from engine.domain.models import OrderPurpose
from tests.support.scenario import set_document
from tests.support.webhook import (
    WebhookClient,
    alert,
    capture_powertools_logs,
    emf_metrics,
    json_lines,
)

PER_SYMBOL = "dca/binance/BTCUSDT/60"


def ssm() -> Any:
    return boto3.client("ssm", region_name="us-east-1")


def put_text(document: str, text: str) -> int:
    """Save ``text`` as a new version of ``document``; returns the version."""
    response = ssm().put_parameter(Name=config_prefix() + document, Value=text, Type="String", Overwrite=True)
    return int(response["Version"])


def current(document: str) -> dict[str, Any]:
    value = ssm().get_parameter(Name=config_prefix() + document)["Parameter"]["Value"]
    data: dict[str, Any] = json.loads(value)
    return data


def merged(document: str, **fields: Any) -> str:
    return json.dumps({**current(document), **fields})


def latest_version(document: str) -> int:
    return int(ssm().get_parameter(Name=config_prefix() + document)["Parameter"]["Version"])


# --------------------------------------------------------------------------- behaviour probes


def opened_group_id(client: WebhookClient, **alert_fields: Any) -> str:
    status, body = client.post(alert(**alert_fields))
    assert (status, body["outcome"]) == (202, "opened"), body
    return str(body["group_id"])


def entry_notional(group_id: str) -> Decimal:
    """Capital of the group's entry legs (amount x limit or trigger price)."""
    legs = [o for o in stores().orders.list_for_group(group_id) if o.purpose is OrderPurpose.ENTRY]
    assert legs
    return sum((o.amount * (o.price or o.trigger_price or Decimal(0)) for o in legs), Decimal(0))


@dataclass(frozen=True)
class Edit:
    """A good edit, then an invalid one, of ``document``; ``field`` must be named in the log.

    ``keeps(client, good_version)`` proves the good version is in force: through ``load_config`` /
    ``load_dca``, and, given a webhook client, by a group opened under it.
    """

    case: str
    document: str
    good: dict[str, Any]
    bad: Callable[[], str]
    field: str
    keeps: Callable[[WebhookClient | None, int], None]


def keeps_engine(client: WebhookClient | None, good_version: int) -> None:
    snapshot = load_config()
    assert snapshot.engine.max_signal_age_seconds == 900
    assert snapshot.versions["engine"] == good_version
    if client is None:
        return
    # a signal 10 minutes old is only acceptable under the good version (the default allows 300 s)
    opened_group_id(client, timestamp=datetime.now(UTC) - timedelta(seconds=600))


def keeps_pool(client: WebhookClient | None, good_version: int) -> None:
    snapshot = load_config()
    assert (snapshot.pool.max_open_groups, snapshot.versions["pool"]) == (7, good_version)
    if client is None:
        return
    group = stores().groups.get(opened_group_id(client))
    assert group is not None and group.config_versions["pool"] == good_version


def keeps_queue(client: WebhookClient | None, good_version: int) -> None:
    snapshot = load_config()
    assert (snapshot.queue.max_age_minutes, snapshot.versions["queue"]) == (90, good_version)
    if client is None:
        return
    group = stores().groups.get(opened_group_id(client))
    assert group is not None and group.config_versions["queue"] == good_version


def keeps_risk(client: WebhookClient | None, good_version: int) -> None:
    snapshot = load_config()
    assert (snapshot.risk.interval_minutes, snapshot.versions["risk"]) == (5, good_version)
    if client is None:
        return
    group = stores().groups.get(opened_group_id(client))
    assert group is not None and group.config_versions["risk"] == good_version


def keeps_dca(document: str) -> Callable[[WebhookClient | None, int], None]:
    def check(client: WebhookClient | None, good_version: int) -> None:
        selection = load_dca("binance", "BTC/USDT", 60)
        assert (selection.document, selection.version, selection.problem) == (document, good_version, None)
        assert selection.config.capital_usd == Decimal(300)
        if client is None:
            return
        group_id = opened_group_id(client)
        group = stores().groups.get(group_id)
        assert group is not None and group.config_versions[document] == good_version
        # the legs were sized from the good version's 300 USD, not the default 200
        assert Decimal(290) < entry_notional(group_id) <= Decimal(300)

    return check


def dca_text(**fields: Any) -> str:
    return json.dumps({**json.loads(dump_document(DcaConfig())), **fields})


UNEVEN_LEVELS = [
    {"gap_percent": 0, "weight_percent": 50, "tp_percent": 1},
    {"gap_percent": -1, "weight_percent": 40, "tp_percent": 1},
]

EDITS: list[Edit] = [
    Edit(
        "engine: zero signal age",
        "engine",
        {"max_signal_age_seconds": 900},
        lambda: merged("engine", max_signal_age_seconds=0),
        "max_signal_age_seconds",
        keeps_engine,
    ),
    Edit(
        "engine: unknown account mode",
        "engine",
        {"max_signal_age_seconds": 900},
        lambda: merged("engine", accounts={"binance": {"mode": "demo"}}),
        "accounts.binance.mode",
        keeps_engine,
    ),
    Edit(
        "pool: size in words",
        "pool",
        {"max_open_groups": 7},
        lambda: merged("pool", max_open_groups="ten"),
        "max_open_groups",
        keeps_pool,
    ),
    Edit(
        "pool: negative size",
        "pool",
        {"max_open_groups": 7},
        lambda: merged("pool", max_open_groups=-1),
        "max_open_groups",
        keeps_pool,
    ),
    Edit(
        "queue: unknown rule",
        "queue",
        {"max_age_minutes": 90},
        lambda: merged("queue", rules=[{"name": "fastest"}]),
        "rules.0.name",
        keeps_queue,
    ),
    Edit(
        "queue: broken JSON",
        "queue",
        {"max_age_minutes": 90},
        lambda: '{"max_age_minutes": 60, "rules": [',
        "",
        keeps_queue,
    ),
    Edit(
        "risk: positive loss threshold",
        "risk",
        {"interval_minutes": 5},
        lambda: merged("risk", loss_threshold_percent=2),
        "loss_threshold_percent",
        keeps_risk,
    ),
    Edit(
        "risk: misspelt setting",
        "risk",
        {"interval_minutes": 5},
        lambda: merged("risk", intervall_minutes=2),
        "intervall_minutes",
        keeps_risk,
    ),
    Edit(
        "dca/default: weights sum to 90",
        "dca/default",
        {"capital_usd": 300},
        lambda: merged("dca/default", levels=UNEVEN_LEVELS),
        "levels",
        keeps_dca("dca/default"),
    ),
    Edit(
        "dca per symbol: unknown tp mode",
        PER_SYMBOL,
        {"capital_usd": 300},
        lambda: dca_text(capital_usd=300, tp_mode="sometimes"),
        "tp_mode",
        keeps_dca(PER_SYMBOL),
    ),
    Edit(
        "dca per symbol: zero capital",
        PER_SYMBOL,
        {"capital_usd": 300},
        lambda: dca_text(capital_usd=0),
        "capital_usd",
        keeps_dca(PER_SYMBOL),
    ),
]


def save_good(edit: Edit) -> int:
    if edit.document == PER_SYMBOL:
        return put_text(PER_SYMBOL, dca_text(**edit.good))
    set_document(edit.document, **edit.good)
    return latest_version(edit.document)


@pytest.mark.parametrize("edit", [pytest.param(e, id=e.case) for e in EDITS])
def test_invalid_edit_keeps_last_good_config_and_is_reported(
    client: WebhookClient, edit: Edit, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a good edit of the document, in use
    good_version = save_good(edit)
    edit.keeps(None, good_version)
    capsys.readouterr()

    # When the operator saves an invalid version on top of it
    bad_version = put_text(edit.document, edit.bad())
    assert bad_version == good_version + 1
    with capture_powertools_logs() as logs:
        # Then the good version is still what trading runs on
        edit.keeps(client, good_version)
    printed = capsys.readouterr().out

    # and ConfigInvalid is counted for that parameter
    parameter = config_prefix() + edit.document
    metrics = emf_metrics(printed, CONFIG_INVALID_METRIC)
    assert metrics, printed
    assert {blob.get("Parameter") for blob in metrics} == {parameter}
    # and an error log line names the parameter and the field (and says which version is used)
    reports = [
        line
        for line in json_lines(logs.getvalue(), printed)
        if line.get("parameter") == parameter and line.get("level") == "ERROR"
    ]
    assert reports, logs.getvalue()
    report = reports[0]
    assert report["field"] == edit.field
    assert parameter in report["message"]
    assert f"version {good_version} is used" in report["message"]
    if edit.field:
        assert edit.field in report["message"]
    else:
        assert "JSON" in report["message"]


@pytest.mark.parametrize(
    ("document", "bad_text", "field"),
    [
        pytest.param("pool", '{"max_open_groups": "ten"}', "max_open_groups", id="pool"),
        pytest.param(PER_SYMBOL, '{"tp_mode": "sometimes"}', "tp_mode", id="dca per symbol"),
    ],
)
def test_no_valid_version_at_all_refuses_new_entries_with_that_reason(
    client: WebhookClient, document: str, bad_text: str, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a document whose only version is invalid (deleted, then created broken)
    parameter = config_prefix() + document
    try:
        ssm().delete_parameter(Name=parameter)
    except ssm().exceptions.ParameterNotFound:
        pass
    assert put_text(document, bad_text) == 1
    audited_before = len(stores().signals.list_recent())

    # When an entry arrives for binance BTC/USDT 60
    status, body = client.post(alert())

    # Then it is refused (202 rejected, audited) with a reason naming the document and the field
    assert (status, body["outcome"]) == (202, "rejected"), body
    assert "configuration invalid" in body["reason"]
    assert document in body["reason"] and field in body["reason"]
    assert len(stores().signals.list_recent()) == audited_before + 1
    assert not stores().groups.list_open()
    # and it was reported as ConfigInvalid
    assert {m.get("Parameter") for m in emf_metrics(capsys.readouterr().out, CONFIG_INVALID_METRIC)} == {
        parameter
    }
