"""Configuration documents (DESIGN §3, §4): defaults, validation rules and error messages."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.config import (
    DOCUMENT_MODELS,
    AccountConfig,
    ConfigError,
    ConfigProblem,
    ConfigSnapshot,
    DcaConfig,
    DcaLevel,
    DcaPyramid,
    EngineConfig,
    PoolConfig,
    QueueConfig,
    RiskConfig,
    dca_document_name,
    default_documents,
    dump_document,
    model_for,
    parse_document,
)
from engine.domain.models import OrderType, TpMode


def _levels(*weights: object) -> list[dict[str, object]]:
    return [{"gap_percent": -i, "weight_percent": w, "tp_percent": 1} for i, w in enumerate(weights)]


def _error(name: str, document: dict[str, object] | str) -> ConfigError:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(ConfigError) as caught:
        parse_document(name, text)
    return caught.value


# --------------------------------------------------------------------------- defaults


def test_engine_defaults_match_design() -> None:
    # Given an empty engine document / When parsed / Then every DESIGN §3/§4 default applies
    engine = parse_document("engine", "{}")
    assert engine == EngineConfig()
    assert engine.paused is False
    assert engine.max_open_per_symbol == 3
    assert engine.max_total_exposure_usd == Decimal(10000)
    assert engine.max_daily_loss_usd == Decimal(500)
    assert engine.max_signal_age_seconds == 300
    assert engine.sync_interval_seconds == 5
    assert sorted(engine.accounts) == ["binance", "bybit", "okx"]
    assert all(a == AccountConfig(mode="paper", market_type="spot") for a in engine.accounts.values())
    assert engine.paper.fee_percent == Decimal("0.1")
    assert engine.paper.balance_usd == Decimal(10000)
    assert engine.paper.markets == {}


def test_pool_queue_risk_defaults_match_design() -> None:
    pool, queue, risk = PoolConfig(), QueueConfig(), RiskConfig()
    assert (pool.max_open_groups, pool.pyramids_bypass) == (10, True)
    assert [(r.name, r.enabled) for r in queue.rules] == [
        ("pyramid_continuation", True),
        ("deepest_loss", True),
        ("replacement_count", True),
        ("oldest", True),
    ]
    assert queue.max_age_minutes == 1440
    assert risk.interval_minutes == 1
    assert risk.timer_start == "after_pyramids"
    assert risk.required_pyramids == 3
    assert risk.loss_threshold_percent == Decimal("-1.5")
    assert risk.post_full_wait_minutes == 15
    assert risk.reset_timer_on_replacement is False
    assert risk.min_age_minutes == 0
    assert risk.max_winners_to_combine == 3
    assert risk.fee_percent == Decimal("0.1")
    assert risk.min_close_notional == Decimal(10)


def test_dca_defaults_match_design() -> None:
    dca = DcaConfig()
    assert [lv.gap_percent for lv in dca.levels] == [Decimal(x) for x in ("0", "-0.5", "-1", "-2", "-4")]
    assert [lv.weight_percent for lv in dca.levels] == [Decimal(20)] * 5
    assert [lv.tp_percent for lv in dca.levels] == [Decimal(x) for x in ("1", "0.5", "0.5", "0.5", "0.5")]
    assert dca.pyramids == []
    assert dca.entry_order_type is OrderType.LIMIT
    assert dca.tp_mode is TpMode.PER_LEG
    assert dca.tp_aggregate_percent == Decimal("1.0")
    assert dca.max_pyramids == 5
    assert dca.capital_usd == Decimal(200)


@pytest.mark.parametrize("name", sorted(DOCUMENT_MODELS))
def test_default_documents_round_trip(name: str) -> None:
    # Given the seeded documents / When each is parsed back / Then it equals the model's defaults
    documents = default_documents()
    assert set(documents) == set(DOCUMENT_MODELS)
    assert parse_document(name, documents[name]) == DOCUMENT_MODELS[name]()


def test_default_documents_use_json_numbers_an_operator_can_edit() -> None:
    dca = json.loads(default_documents()["dca/default"])
    assert dca["levels"][1] == {"gap_percent": -0.5, "weight_percent": 20, "tp_percent": 0.5}
    assert dca["tp_mode"] == "per_leg"


# --------------------------------------------------------------------------- parsing forms


def test_decimals_accept_numbers_and_strings_exactly() -> None:
    risk = parse_document("risk", '{"fee_percent": 0.075, "min_close_notional": "12.5"}')
    assert risk.fee_percent == Decimal("0.075")
    assert risk.min_close_notional == Decimal("12.5")


def test_account_names_are_case_insensitive() -> None:
    engine = parse_document("engine", '{"accounts": {"Binance": {"market_type": "swap"}}}')
    assert list(engine.accounts) == ["binance"]
    assert engine.account("BINANCE") == AccountConfig(market_type="swap")
    assert engine.account("kraken") is None


def test_negative_gap_is_fine_and_pyramid_overrides_apply() -> None:
    dca = parse_document(
        "dca/binance/BTCUSDT/60",
        json.dumps({"levels": _levels(50, 50), "pyramids": [{"capital_usd": 300}, {"levels": _levels(100)}]}),
    )
    assert isinstance(dca, DcaConfig)
    assert dca.levels[1].gap_percent == Decimal(-1)
    assert dca.capital_for(1) == Decimal(300) and dca.levels_for(1) == dca.levels
    assert dca.capital_for(2) == Decimal(200) and len(dca.levels_for(2)) == 1
    assert dca.capital_for(3) == Decimal(200) and dca.levels_for(3) == dca.levels


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=8))
def test_any_weights_are_valid_exactly_when_they_sum_to_100(weights: list[int]) -> None:
    document = json.dumps({"levels": _levels(*weights)})
    if sum(weights) == 100:
        assert isinstance(parse_document("dca/default", document), DcaConfig)
    else:
        assert _error("dca/default", document).field == "levels"


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("name", "document", "field", "reason_part"),
    [
        ("dca/default", {"levels": _levels(30, 30, 30)}, "levels", "weights sum to 90, expected 100"),
        ("dca/default", {"levels": _levels(50, "50.02")}, "levels", "weights sum to 100.02"),
        ("dca/default", {"levels": []}, "levels", "at least one level"),
        ("dca/default", {"levels": _levels(100, 0)}, "levels.1.weight_percent", "greater than 0"),
        (
            "dca/default",
            {"levels": [{"gap_percent": 0, "weight_percent": 100, "tp_percent": 0}]},
            "levels.0.tp_percent",
            "greater than 0",
        ),
        ("dca/default", {"tp_aggregate_percent": 0}, "tp_aggregate_percent", "greater than 0"),
        (
            "dca/default",
            {"levels": [{"gap_percent": 0, "weight_percent": 100, "tp_percent": -1}]},
            "levels.0.tp_percent",
            "greater than 0",
        ),
        (
            "dca/default",
            {"levels": [{"gap_percent": 0, "weight_percent": 100}]},
            "levels.0.tp_percent",
            "missing",
        ),
        (
            "dca/default",
            {"pyramids": [{"levels": _levels(40, 40)}]},
            "pyramids.0.levels",
            "weights sum to 80",
        ),
        ("dca/default", {"pyramids": [{"capital_usd": 0}]}, "pyramids.0.capital_usd", "greater than 0"),
        ("dca/default", {"tp_mode": "trailing"}, "tp_mode", '"trailing"'),
        ("dca/default", {"entry_order_type": "stop"}, "entry_order_type", "'limit' or 'market'"),
        ("dca/default", {"max_pyramids": 0}, "max_pyramids", "greater than or equal to 1"),
        ("dca/default", {"capital_usd": -5}, "capital_usd", "greater than 0"),
        ("dca/default", {"capital_usd": "lots"}, "capital_usd", '"lots"'),
        ("dca/default", {"level": []}, "level", "unknown field"),
        ("engine", {"max_total_exposure_usd": -1}, "max_total_exposure_usd", "greater than or equal to 0"),
        ("engine", {"max_daily_loss_usd": "-0.01"}, "max_daily_loss_usd", "greater than or equal to 0"),
        ("engine", {"max_open_per_symbol": -1}, "max_open_per_symbol", "greater than or equal to 0"),
        ("engine", {"max_signal_age_seconds": 0}, "max_signal_age_seconds", "greater than or equal to 1"),
        ("engine", {"sync_interval_seconds": 0}, "sync_interval_seconds", "greater than or equal to 1"),
        ("engine", {"sync_interval_seconds": 61}, "sync_interval_seconds", "less than or equal to 60"),
        ("engine", {"pausd": True}, "pausd", "unknown field"),
        ("engine", {"usd_quotes": []}, "usd_quotes", "at least one quote"),
        ("engine", {"accounts": {"kraken": {"mode": "demo"}}}, "accounts.kraken.mode", '"demo"'),
        ("engine", {"accounts": {"okx": {"market_type": "futures"}}}, "accounts.okx.market_type", "'swap'"),
        ("engine", {"accounts": {"a": {}, "A": {}}}, "accounts", "configured twice"),
        ("engine", {"paper": {"fee_percent": -0.1}}, "paper.fee_percent", "greater than or equal to 0"),
        (
            "engine",
            {"paper": {"markets": {"X/USDT": {"tick": 0, "step": 1}}}},
            "paper.markets.X/USDT.tick",
            "greater than 0",
        ),
        ("pool", {"max_open_groups": -1}, "max_open_groups", "greater than or equal to 0"),
        ("pool", {"max_open_group": 5}, "max_open_group", "unknown field"),
        ("queue", {"rules": [{"name": "newest"}]}, "rules.0.name", '"newest"'),
        ("queue", {"rules": [{"name": "oldest"}, {"name": "oldest"}]}, "rules", "'oldest' is listed twice"),
        ("queue", {"max_age_minutes": 0}, "max_age_minutes", "greater than or equal to 1"),
        ("risk", {"timer_start": "now"}, "timer_start", '"now"'),
        ("risk", {"loss_threshold_percent": 1}, "loss_threshold_percent", "less than or equal to 0"),
        ("risk", {"fee_percent": -0.1}, "fee_percent", "greater than or equal to 0"),
        ("risk", {"min_close_notional": -1}, "min_close_notional", "greater than or equal to 0"),
        ("risk", {"interval_minutes": 0}, "interval_minutes", "greater than or equal to 1"),
    ],
)
def test_invalid_documents_name_document_and_field(
    name: str, document: dict[str, object], field: str, reason_part: str
) -> None:
    # Given an invalid document / When parsed / Then the error names the document, the field and why
    error = _error(name, document)
    assert (error.document, error.field) == (name, field)
    assert reason_part in error.reason
    assert str(error).startswith(f"{name}: {field}: ")


def test_weight_sum_message_is_exact() -> None:
    error = _error("dca/default", {"levels": _levels(30, 30, 30)})
    assert str(error) == "dca/default: levels: weights sum to 90, expected 100"


@pytest.mark.parametrize("weights", [(50, "49.99"), (50, "50.01"), ("33.333", "33.333", "33.334")])
def test_weights_within_tolerance_are_accepted(weights: tuple[object, ...]) -> None:
    assert isinstance(parse_document("dca/default", json.dumps({"levels": _levels(*weights)})), DcaConfig)


def test_every_problem_is_reported() -> None:
    error = _error("pool", {"max_open_groups": -1, "extra": 1})
    assert [f for f, _ in error.problems] == ["max_open_groups", "extra"]
    assert str(error).endswith("(and 1 more)")


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [("{x", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ('{"paused": NaN}', "not valid JSON")],
)
def test_unreadable_documents(text: str, reason_part: str) -> None:
    error = _error("engine", text)
    assert error.document == "engine" and error.field == ""
    assert reason_part in str(error)


# --------------------------------------------------------------------------- names and snapshot


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("engine", EngineConfig),
        ("pool", PoolConfig),
        ("queue", QueueConfig),
        ("risk", RiskConfig),
        ("dca/default", DcaConfig),
        ("dca/binance/BTCUSDT/60", DcaConfig),
    ],
)
def test_model_for(name: str, model: type) -> None:
    assert model_for(name) is model


@pytest.mark.parametrize("name", ["engines", "dca/", "", "risk/x"])
def test_model_for_unknown_document(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown configuration document"):
        model_for(name)


@pytest.mark.parametrize(
    ("exchange", "symbol", "timeframe", "expected"),
    [
        ("binance", "BTC/USDT", 60, "dca/binance/BTCUSDT/60"),
        ("BYBIT", "eth/usdc", 1440, "dca/bybit/ETHUSDC/1440"),
        ("okx", "BTC/USDT:USDT", 5, "dca/okx/BTCUSDTUSDT/5"),
    ],
)
def test_dca_document_name(exchange: str, symbol: str, timeframe: int, expected: str) -> None:
    assert dca_document_name(exchange, symbol, timeframe) == expected


def test_config_models_are_immutable_but_copyable() -> None:
    pool = PoolConfig()
    with pytest.raises(ValueError):
        pool.max_open_groups = 3  # type: ignore[misc]
    assert pool.model_copy(update={"max_open_groups": 3}).max_open_groups == 3


def test_dump_document_keeps_inexact_decimals_exact() -> None:
    level = DcaLevel(
        gap_percent=Decimal("-0.12345678901234567890"), weight_percent=Decimal(100), tp_percent=1
    )
    dca = DcaConfig(levels=[level], pyramids=[DcaPyramid(capital_usd=Decimal("0.1"))])
    assert parse_document("dca/default", dump_document(dca)) == dca


def test_snapshot_refusal_reason() -> None:
    assert ConfigSnapshot().refusal_reason is None
    problems = [ConfigProblem("risk", "risk"), ConfigProblem("queue", "queue")]
    snapshot = ConfigSnapshot(versions={"engine": 3}, problems=problems)
    assert snapshot.refusal_reason == "configuration invalid, no valid version of: risk, queue"
    assert snapshot.engine == EngineConfig()
