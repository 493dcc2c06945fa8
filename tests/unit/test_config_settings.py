"""Environment settings of engine.config: prefix normalisation and cache-age parsing."""

from __future__ import annotations

import pytest

from engine.config import settings


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        (None, None, "/execution-engine/local/"),
        ("/execution-engine/prod/", None, "/execution-engine/prod/"),
        ("execution-engine/prod", None, "/execution-engine/prod/"),
        (" /app/stage ", None, "/app/stage/"),
        ("/ignored/", "other/stage/", "/other/stage/"),
    ],
)
def test_config_prefix_is_normalised(monkeypatch, env, argument, expected):
    # Given CONFIG_PREFIX (or none) and an optional explicit prefix
    if env is None:
        monkeypatch.delenv("CONFIG_PREFIX", raising=False)
    else:
        monkeypatch.setenv("CONFIG_PREFIX", env)
    # When resolved / Then it has exactly one leading and one trailing slash, the argument winning
    assert settings.config_prefix(argument) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [(None, 30), ("5", 5), ("0", 0), ("-1", 30), ("soon", 30), ("", 30)],
)
def test_max_age_seconds_falls_back_to_default_when_not_a_non_negative_integer(monkeypatch, env, expected):
    # Given CONFIG_MAX_AGE_SECONDS / When read / Then a usable number of seconds
    if env is None:
        monkeypatch.delenv("CONFIG_MAX_AGE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("CONFIG_MAX_AGE_SECONDS", env)
    assert settings.max_age_seconds() == expected


def test_secret_names_and_namespace_come_from_the_environment(monkeypatch):
    # Given the stage's names in the environment / Then they are used as given
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", "app/prod/webhook")
    monkeypatch.setenv("EXCHANGE_SECRET_PREFIX", "app/prod/exchange/")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Prod")
    assert settings.webhook_secret_name() == "app/prod/webhook"
    assert settings.exchange_secret_prefix() == "app/prod/exchange/"
    assert settings.metrics_namespace() == "Prod"
    # And without them, the local defaults
    for name in ("WEBHOOK_SECRET_NAME", "EXCHANGE_SECRET_PREFIX", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name)
    assert settings.webhook_secret_name() == "execution-engine/local/webhook"
    assert settings.exchange_secret_prefix() == "execution-engine/local/exchange/"
    assert settings.metrics_namespace() == "ExecutionEngine"


@pytest.mark.parametrize(
    ("env", "read"),
    [
        ("CONFIG_PREFIX", settings.config_prefix),
        ("WEBHOOK_SECRET_NAME", settings.webhook_secret_name),
        ("EXCHANGE_SECRET_PREFIX", settings.exchange_secret_prefix),
    ],
)
def test_inside_lambda_an_unset_resource_name_raises_instead_of_the_local_default(monkeypatch, env, read):
    # Given a Lambda function whose environment lacks the variable
    monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "execution-engine-prod-webhook")
    # When the name is read / Then it raises naming the variable and the function
    with pytest.raises(settings.MissingSetting, match=rf"{env} is not set in Lambda function"):
        read()
    # Given the variable set / Then its value is used
    monkeypatch.setenv(env, "/execution-engine/prod/")
    assert "prod" in read()


def test_inside_lambda_an_unset_idempotency_table_raises(monkeypatch):
    from engine.app.intake.webhook import idempotency_table
    from engine.store.tables import MissingTableName

    # Given a Lambda function without IDEMPOTENCY_TABLE
    monkeypatch.delenv("IDEMPOTENCY_TABLE", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "execution-engine-prod-webhook")
    # When the persistence layer asks for the table / Then it raises, no silent local name
    with pytest.raises(MissingTableName, match="IDEMPOTENCY_TABLE is not set"):
        idempotency_table()
    # Given outside Lambda / Then the local name
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert idempotency_table() == "execution-engine-local-idempotency"
