"""Reading the live configuration: :func:`load_config` for the shared documents, :func:`load_dca` per market.

Never raises for a bad or unreadable configuration (DESIGN §4):
- a missing parameter means its defaults (version 0) — the stack seeds them, but a fresh account or a
  per-symbol DCA document that was never written is normal;
- an invalid newest version is reported and the newest valid older version is used;
- no valid version, or SSM unreadable with nothing cached -> the document is listed in ``problems``
  (``ConfigSnapshot.refusal_reason`` / ``DcaSelection.problem``): new entries are refused while the
  defaults stand in so open positions are still managed. When SSM is unreadable but an expired
  resolution is cached, that last resolution is used (a brief SSM outage must not stop trading).

SSM unreadable with nothing cached is marked ``unreadable`` (``ConfigProblem.unreadable``,
``DcaSelection.unreadable``): a transient state, unlike an invalid document. Callers that must not
record a refusal for it (the webhook: TradingView resends on 5xx) raise :class:`ConfigUnavailable`.

The shared documents (and ``dca/default``) are read with one ``GetParameters`` call
(:meth:`DocumentProvider.documents`); per-market DCA documents are read on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel

from engine.config.documents_provider import ResolvedDocument
from engine.config.providers import document_provider, first_report
from engine.config.reporting import emit_config_invalid, logger
from engine.config.secrets import secret_namespace_problem
from engine.config.settings import config_prefix, max_age_seconds
from engine.domain.config import (
    ConfigProblem,
    ConfigSnapshot,
    DcaConfig,
    EngineConfig,
    NotifyConfig,
    PoolConfig,
    QueueConfig,
    RiskConfig,
    RoutesConfig,
    dca_document_name,
)

DEFAULT_DCA_DOCUMENT = "dca/default"
#: Read together in one GetParameters call by :func:`load_config` (dca/default is cached for load_dca).
SHARED_DOCUMENTS = ("engine", "pool", "queue", "risk", "routes", DEFAULT_DCA_DOCUMENT)
ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigUnavailable(Exception):
    """The configuration cannot be read now (SSM throttled or unreachable, nothing cached): retry later."""


@dataclass(frozen=True)
class DcaSelection:
    """The DCA settings for one market: which document they came from and its SSM version.

    ``version`` 0 = defaults (document missing). ``problem`` set = no usable version of ``document``:
    refuse new entries on this market (``config`` then holds the defaults).
    """

    config: DcaConfig
    document: str
    version: int
    problem: str | None = None
    unreadable: bool = False


def _model(resolved: ResolvedDocument, model: type[ModelT]) -> ModelT:
    if not isinstance(resolved.model, model):
        raise TypeError(
            f"{resolved.document} resolved to {type(resolved.model).__name__}, not {model.__name__}"
        )
    return resolved.model


def _unreadable(parameter: str, document: str, exc: GetParameterError) -> ResolvedDocument:
    """SSM failed: the last resolution of ``parameter`` if any (even expired), else unreadable defaults."""
    stale = document_provider().stale(parameter)
    if stale is not None:
        logger.warning(
            f"cannot read {parameter}, using the last resolution (version {stale.version}): {exc}",
            parameter=parameter,
        )
        return stale
    logger.error(f"cannot read {parameter}: {exc}", parameter=parameter)
    return ResolvedDocument.defaults(document, problem=f"{document} (unreadable: {exc})", unreadable=True)


def resolve_document(document: str) -> ResolvedDocument:
    """Document ``document`` under the configured prefix, through the cache; never raises for bad config."""
    parameter = config_prefix() + document
    try:
        return document_provider().document(parameter, document, max_age_seconds())
    except GetParameterError as exc:
        return _unreadable(parameter, document, exc)


def resolve_documents(documents: tuple[str, ...]) -> dict[str, ResolvedDocument]:
    """Several documents (name -> resolution) with one ``GetParameters`` call for those not cached."""
    parameters = {config_prefix() + document: document for document in documents}
    try:
        resolved = document_provider().documents(parameters, max_age_seconds())
    except GetParameterError as exc:
        return {document: _unreadable(name, document, exc) for name, document in parameters.items()}
    return {parameters[name]: value for name, value in resolved.items()}


def _account_problems(engine: ResolvedDocument) -> list[ConfigProblem]:
    """Accounts of ``engine`` that cannot be traded (secret outside the stack's namespace), reported once."""
    problems: list[ConfigProblem] = []
    for name, account in _model(engine, EngineConfig).accounts.items():
        text = secret_namespace_problem(name, account.secret_name)
        if text is None:
            continue
        problems.append(ConfigProblem("engine", text, account=name))
        if first_report(("account", engine.version, name, text)):
            parameter = config_prefix() + "engine"
            logger.error(f"invalid configuration {parameter}: {text}", parameter=parameter, account=name)
            emit_config_invalid(parameter)
    return problems


def load_config() -> ConfigSnapshot:
    """The shared documents (engine, pool, queue, risk, routes) with the versions used and any problems."""
    read = resolve_documents(SHARED_DOCUMENTS)
    engine, pool, queue, risk = read["engine"], read["pool"], read["queue"], read["risk"]
    routes = read["routes"]
    resolved = (engine, pool, queue, risk, routes)
    shared_problems = [
        ConfigProblem(item.document, item.problem, unreadable=item.unreadable)
        for item in resolved
        if item.problem
    ]
    return ConfigSnapshot(
        engine=_model(engine, EngineConfig),
        pool=_model(pool, PoolConfig),
        queue=_model(queue, QueueConfig),
        risk=_model(risk, RiskConfig),
        routes=_model(routes, RoutesConfig),
        versions={item.document: item.version for item in resolved},
        problems=shared_problems + _account_problems(engine),
    )


def load_dca(exchange: str, symbol: str, timeframe: int) -> DcaSelection:
    """DCA settings of a market: ``dca/<exchange>/<SYMBOL>/<timeframe>`` if it exists, else ``dca/default``.

    An existing but broken per-market document does not fall back to ``dca/default`` (the operator meant
    this market to trade differently): its ``problem`` is returned and new entries there are refused.
    """
    specific = resolve_document(dca_document_name(exchange, symbol, timeframe))
    chosen = specific if not specific.missing else resolve_document(DEFAULT_DCA_DOCUMENT)
    return DcaSelection(
        config=_model(chosen, DcaConfig),
        document=chosen.document,
        version=chosen.version,
        problem=chosen.problem,
        unreadable=chosen.unreadable,
    )


NOTIFY_DOCUMENT = "notify"


@dataclass(frozen=True)
class NotifySelection:
    """The ``notify`` document in use and its SSM version (0 = defaults); ``problem`` when none is valid."""

    config: NotifyConfig
    version: int
    problem: str | None = None


def load_notify() -> NotifySelection:
    """The ``notify`` document (DESIGN §3.11); never raises (an invalid edit keeps the last valid version)."""
    resolved = resolve_document(NOTIFY_DOCUMENT)
    return NotifySelection(
        config=_model(resolved, NotifyConfig), version=resolved.version, problem=resolved.problem
    )
