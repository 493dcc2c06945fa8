"""Given an account whose ``secret_name`` lies outside the stack's ``<app>/<stage>/exchange/*`` (IAM would
refuse every read), when the configuration is read, then it is a reported config problem: that account
is not traded (the webhook refuses it, an order for it is refused for good instead of backing off
forever), while the other accounts trade as usual."""

from __future__ import annotations

from typing import Any

import pytest

from engine.app.gateways import clear_gateway_cache, gateway_for_exchange
from engine.config import load_config
from engine.config.settings import exchange_secret_prefix
from engine.exchange.errors import OrderRefused
from tests.support.scenario import set_document
from tests.support.webhook import alert, capture_powertools_logs, prepare_webhook, table_counts

OUTSIDE = "someone-else/prod/exchange/binance"


def _accounts(binance_secret: str) -> dict[str, Any]:
    return {
        "binance": {"mode": "live", "market_type": "spot", "secret_name": binance_secret},
        "bybit": {"mode": "paper", "market_type": "spot"},
    }


def test_a_secret_outside_the_namespace_is_a_reported_problem_of_that_account_only(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given binance's secret_name outside the stack's exchange secrets
    prepare_webhook(monkeypatch)
    set_document("engine", accounts=_accounts(OUTSIDE))
    capsys.readouterr()
    # When the configuration is read
    with capture_powertools_logs() as logs:
        config = load_config()
    # Then binance has a problem naming the field, reported (log + ConfigInvalid), other accounts none
    problem = config.account_problem("binance")
    assert problem is not None and "engine.accounts.binance.secret_name" in problem
    assert exchange_secret_prefix() in problem
    assert config.account_problem("bybit") is None and config.refusal_reason is None
    assert "engine.accounts.binance.secret_name" in logs.getvalue()
    assert '"ConfigInvalid"' in capsys.readouterr().out
    # And an order for binance is refused for good (ConfigInvalid), not backed off until the DLQ
    clear_gateway_cache()
    with pytest.raises(OrderRefused) as refused:
        gateway_for_exchange(None, "binance", config)  # type: ignore[arg-type]
    assert refused.value.error == "ConfigInvalid"


def test_the_webhook_refuses_that_account_and_trades_the_others(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given binance's secret_name outside the namespace
    client = prepare_webhook(monkeypatch)
    set_document("engine", accounts=_accounts(OUTSIDE))
    before = table_counts()
    # When an alert for binance arrives / Then it is refused with the reason and nothing is written
    status, body = client.post(alert(exchange="BINANCE"))
    assert (status, body["error"]) == (400, "account_config_invalid")
    assert "outside" in body["reason"]
    assert table_counts() == before
    # And an alert for bybit (paper) opens a group as usual
    assert client.post(alert(exchange="BYBIT"))[1]["outcome"] == "opened"


def test_a_secret_inside_the_namespace_is_no_problem(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given binance's secret_name under the stack's exchange prefix / Then no problem at all
    prepare_webhook(monkeypatch)
    set_document("engine", accounts=_accounts(exchange_secret_prefix() + "binance-main"))
    assert load_config().problems == []
