"""Live configuration through SSM and Secrets Manager (moto): defaults, versions, invalid edits, secrets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from engine import config
from engine.config import providers, reporting
from engine.domain.config import DcaConfig, EngineConfig, PoolConfig, QueueConfig, RiskConfig

PREFIX = "/test-engine/it/"
MAX_AGE = 30


class FakeClock:
    """The cache's clock: tests age the cache by moving it, never by sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class LogRecorder:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.errors.append((message, kwargs))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "CONFIG_PREFIX": PREFIX,
        "CONFIG_MAX_AGE_SECONDS": str(MAX_AGE),
        "POWERTOOLS_METRICS_NAMESPACE": "EngineTest",
        "WEBHOOK_SECRET_NAME": "test-engine/it/webhook",
        "EXCHANGE_SECRET_PREFIX": "test-engine/it/exchange/",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        config.clear_cache()
        yield boto3.client("ssm")
    config.clear_cache()


@pytest.fixture
def clock(aws) -> FakeClock:
    fake = FakeClock()
    providers.document_provider().clock = fake
    return fake


@pytest.fixture
def log_errors(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr(reporting.logger, "error", recorder)
    return recorder


def put(ssm, document: str, value: dict[str, Any] | str) -> int:
    text = value if isinstance(value, str) else json.dumps(value)
    response = ssm.put_parameter(Name=PREFIX + document, Value=text, Type="String", Overwrite=True)
    return int(response["Version"])


def config_invalid_metrics(stdout: str) -> list[dict[str, Any]]:
    """The EMF lines of ConfigInvalid printed to stdout."""
    found = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        if isinstance(blob, dict) and config.CONFIG_INVALID_METRIC in blob:
            found.append(blob)
    return found


# --------------------------------------------------------------------------- documents


def test_nothing_seeded_gives_defaults_at_version_zero(aws, clock):
    # Given an empty Parameter Store / When the configuration is loaded
    snapshot = config.load_config()
    # Then every document has its defaults, version 0, and nothing is refused
    assert snapshot.engine == EngineConfig()
    assert snapshot.pool == PoolConfig()
    assert snapshot.queue == QueueConfig()
    assert snapshot.risk == RiskConfig()
    assert snapshot.versions == {"engine": 0, "pool": 0, "queue": 0, "risk": 0, "routes": 0}
    assert snapshot.problems == []
    assert snapshot.refusal_reason is None


def test_seeded_defaults_are_read_with_their_versions(aws, clock):
    # Given the defaults seeded under the prefix
    written = config.seed_defaults()
    # When loaded
    snapshot = config.load_config()
    # Then every document was written once and is read back at version 1 with the same values
    assert sorted(written) == sorted(
        PREFIX + name for name in ("engine", "pool", "queue", "risk", "dca/default", "notify", "routes")
    )
    assert snapshot.versions == {"engine": 1, "pool": 1, "queue": 1, "risk": 1, "routes": 1}
    assert snapshot.pool == PoolConfig()
    assert snapshot.engine == EngineConfig()
    assert config.load_dca("binance", "BTC/USDT", 60) == config.DcaSelection(DcaConfig(), "dca/default", 1)


def test_an_edit_is_seen_once_the_cache_has_aged(aws, clock):
    # Given a warm cache holding pool version 1
    config.seed_defaults()
    assert config.load_config().pool.max_open_groups == 10
    # When the operator edits pool
    put(aws, "pool", {"max_open_groups": 4})
    # Then the cached version is served until max_age has passed, and the edit right after
    clock.advance(MAX_AGE - 1)
    assert config.load_config().versions["pool"] == 1
    clock.advance(2)
    snapshot = config.load_config()
    assert (snapshot.pool.max_open_groups, snapshot.versions["pool"]) == (4, 2)


def test_max_age_zero_reads_every_time(aws, monkeypatch):
    # Given caching switched off
    monkeypatch.setenv("CONFIG_MAX_AGE_SECONDS", "0")
    config.seed_defaults()
    assert config.load_config().versions["risk"] == 1
    # When risk is edited / Then the next load sees it without any clock movement
    put(aws, "risk", {"interval_minutes": 5})
    snapshot = config.load_config()
    assert (snapshot.risk.interval_minutes, snapshot.versions["risk"]) == (5, 2)


def test_invalid_edit_keeps_newest_valid_version_and_reports_it(aws, clock, log_errors, capsys):
    # Given pool v1 (defaults), v2 valid (7 slots) and then an invalid v3
    config.seed_defaults()
    put(aws, "pool", {"max_open_groups": 7})
    put(aws, "pool", {"max_open_groups": -1})
    capsys.readouterr()
    # When loaded
    snapshot = config.load_config()
    # Then v2's values are used, the version reported is 2, nothing is refused
    assert (snapshot.pool.max_open_groups, snapshot.versions["pool"]) == (7, 2)
    assert snapshot.problems == []
    # And the invalid edit is logged naming parameter and field, and counted as ConfigInvalid
    [(message, fields)] = log_errors.errors
    assert fields["parameter"] == PREFIX + "pool"
    assert fields["field"] == "max_open_groups"
    assert (fields["latest_version"], fields["used_version"]) == (3, 2)
    assert "max_open_groups" in message
    [metric] = config_invalid_metrics(capsys.readouterr().out)
    assert metric["Parameter"] == PREFIX + "pool"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EngineTest"
    # (Powertools adds a ``service`` dimension when POWERTOOLS_SERVICE_NAME is set, as in AWS)
    assert set(metric["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) - {"service"} == {"Parameter"}


def test_cold_and_warm_functions_agree_on_the_version_used(aws, clock, log_errors):
    # Given risk v1 valid and v2 invalid
    put(aws, "risk", {"required_pyramids": 2})
    put(aws, "risk", {"required_pyramids": "many"})
    warm = config.load_config()
    # When a cold function loads the same state
    config.clear_cache()
    cold = config.load_config()
    # Then both use version 1
    assert warm.versions["risk"] == cold.versions["risk"] == 1
    assert warm.risk == cold.risk == RiskConfig(required_pyramids=2)


def test_invalid_document_is_reported_once_per_cache_refresh(aws, clock, log_errors):
    # Given an invalid newest queue version
    put(aws, "queue", {"max_age_minutes": 60})
    put(aws, "queue", {"max_age_minutes": 60, "typo": 1})
    # When loaded three times within max_age and once after
    for _ in range(3):
        config.load_config()
    clock.advance(MAX_AGE + 1)
    config.load_config()
    # Then the error was logged on the first read and on the refresh only
    assert [fields["field"] for _, fields in log_errors.errors] == ["typo", "typo"]


@pytest.mark.parametrize(
    ("versions", "field"),
    [
        ([{"interval_minutes": 0}], "interval_minutes"),
        (["not json", {"timer_start": "whenever"}], "timer_start"),
    ],
    ids=["single-invalid-version", "every-version-invalid"],
)
def test_no_valid_version_refuses_new_entries(aws, clock, log_errors, capsys, versions, field):
    # Given a risk parameter none of whose versions is valid
    for value in versions:
        latest = put(aws, "risk", value)
    capsys.readouterr()
    # When loaded
    snapshot = config.load_config()
    # Then risk falls back to defaults for managing, at version 0, and new entries are refused with reason
    assert snapshot.risk == RiskConfig()
    assert snapshot.versions["risk"] == 0
    [problem] = snapshot.problems
    assert problem.document == "risk"
    assert str(problem).startswith(f"risk (no valid version; latest {latest}: {field}: ")
    assert snapshot.refusal_reason is not None and "risk" in snapshot.refusal_reason
    # And the other documents are unaffected, and the invalid document is reported
    assert snapshot.pool == PoolConfig()
    assert [fields["used_version"] for _, fields in log_errors.errors] == [0]
    assert len(config_invalid_metrics(capsys.readouterr().out)) == 1


def test_unreadable_ssm_uses_last_resolution_else_refuses(aws, clock, monkeypatch):
    # Given a warm cache of pool v2 (5 slots)
    config.seed_defaults()
    put(aws, "pool", {"max_open_groups": 5})
    assert config.load_config().versions["pool"] == 2
    provider = providers.document_provider()

    def unreachable(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetParameter")

    monkeypatch.setattr(provider.client, "get_parameter", unreachable)
    # When the cache has expired and SSM fails
    clock.advance(MAX_AGE + 1)
    snapshot = config.load_config()
    # Then the last resolution is used and nothing is refused
    assert (snapshot.pool.max_open_groups, snapshot.versions["pool"]) == (5, 2)
    assert snapshot.problems == []
    # But a document never read before (per-market DCA) is refused rather than guessed
    selection = config.load_dca("okx", "ETH/USDT", 15)
    assert selection.problem is not None and "unreadable" in selection.problem


# --------------------------------------------------------------------------- dca


def test_per_market_dca_document_overrides_default(aws, clock):
    # Given dca/default seeded and a document for binance BTC/USDT on 60
    config.seed_defaults()
    put(aws, "dca/binance/BTCUSDT/60", {"capital_usd": 500})
    # When the DCA settings of several markets are loaded
    btc_60 = config.load_dca("binance", "BTC/USDT", 60)
    btc_15 = config.load_dca("binance", "BTC/USDT", 15)
    eth_60 = config.load_dca("BINANCE", "ETH/USDT", 60)
    # Then only the exact market uses the override; the others fall back to dca/default
    assert (btc_60.document, btc_60.version, btc_60.config.capital_usd) == (
        "dca/binance/BTCUSDT/60",
        1,
        Decimal(500),
    )
    assert (btc_15.document, btc_15.version, btc_15.config.capital_usd) == ("dca/default", 1, Decimal(200))
    assert eth_60.document == "dca/default"
    assert btc_60.problem is btc_15.problem is None


def test_missing_per_market_document_is_cached_like_any_read(aws, clock):
    # Given a market without its own document, already looked up once
    config.seed_defaults()
    assert config.load_dca("bybit", "SOL/USDT", 5).document == "dca/default"
    # When the operator creates it
    put(aws, "dca/bybit/SOLUSDT/5", {"max_pyramids": 2})
    # Then the cached miss stands until max_age, then the new document is used
    assert config.load_dca("bybit", "SOL/USDT", 5).document == "dca/default"
    clock.advance(MAX_AGE + 1)
    selection = config.load_dca("bybit", "SOL/USDT", 5)
    assert (selection.document, selection.config.max_pyramids) == ("dca/bybit/SOLUSDT/5", 2)


def test_broken_per_market_document_refuses_instead_of_using_default(aws, clock, log_errors):
    # Given a per-market document whose only version has weights not summing to 100
    config.seed_defaults()
    put(aws, "dca/okx/BTCUSDT/60", {"levels": [{"gap_percent": 0, "weight_percent": 90, "tp_percent": 1}]})
    # When loaded
    selection = config.load_dca("okx", "BTC/USDT", 60)
    # Then the market is refused (not silently traded on dca/default)
    assert selection.document == "dca/okx/BTCUSDT/60"
    assert selection.version == 0
    assert selection.problem is not None and "weights sum to 90" in selection.problem


def test_nothing_seeded_gives_default_dca_at_version_zero(aws, clock):
    # Given nothing in SSM / When a market's DCA settings are loaded / Then the defaults, version 0
    assert config.load_dca("binance", "BTC/USDT", 60) == config.DcaSelection(DcaConfig(), "dca/default", 0)


# --------------------------------------------------------------------------- seeding


def test_seeding_again_keeps_the_operators_edits(aws, clock):
    # Given seeded defaults and an operator edit of pool
    config.seed_defaults()
    put(aws, "pool", {"max_open_groups": 3})
    # When seeded again without overwrite
    written = config.seed_defaults()
    # Then nothing is written and the edit stands
    assert written == []
    snapshot = config.load_config()
    assert (snapshot.pool.max_open_groups, snapshot.versions["pool"]) == (3, 2)


def test_seeding_with_overwrite_restores_defaults(aws, clock):
    # Given an operator edit / When seeded with overwrite / Then all documents are rewritten
    config.seed_defaults()
    put(aws, "pool", {"max_open_groups": 3})
    assert len(config.seed_defaults(overwrite=True)) == 7
    snapshot = config.load_config()
    assert (snapshot.pool, snapshot.versions["pool"]) == (PoolConfig(), 3)


def test_seeding_under_an_explicit_prefix(aws, clock):
    # Given a different stage prefix / When seeded there / Then names carry that prefix, normalised
    written = config.seed_defaults("other/stage")
    assert "/other/stage/engine" in written
    assert config.load_config().versions["engine"] == 0


# --------------------------------------------------------------------------- secrets


def test_webhook_secret_is_created_once_and_read(aws):
    # Given the local runtime seeds the webhook secret twice with different values
    assert config.seed_webhook_secret("first-secret") is True
    assert config.seed_webhook_secret("second-secret") is False
    # Then the first value is kept and read back
    assert config.webhook_secret() == "first-secret"


def test_exchange_credentials_default_name_and_account_override(aws):
    # Given keys stored under the default prefix and under an account-specific name
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name="test-engine/it/exchange/binance", SecretString=json.dumps({"apiKey": "k", "secret": "s"})
    )
    secrets.create_secret(Name="custom/bybit-keys", SecretString=json.dumps({"apiKey": "b", "secret": "t"}))
    # When read / Then each account gets its own keys
    assert config.exchange_credentials("Binance") == {"apiKey": "k", "secret": "s"}
    assert config.exchange_credentials("bybit", secret_name="custom/bybit-keys") == {
        "apiKey": "b",
        "secret": "t",
    }


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (None, "cannot be read"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
        ('{"apiKey": 12}', "values must be strings (not: apiKey)"),
    ],
    ids=["missing", "not-an-object", "not-json", "non-string-value"],
)
def test_bad_exchange_secret_raises_secret_error(aws, stored, reason):
    # Given a missing or malformed secret
    if stored is not None:
        boto3.client("secretsmanager").create_secret(Name="test-engine/it/exchange/okx", SecretString=stored)
    # When read / Then a SecretError names the secret and the reason
    with pytest.raises(config.SecretError) as raised:
        config.exchange_credentials("okx")
    assert raised.value.name == "test-engine/it/exchange/okx"
    assert reason in raised.value.reason
