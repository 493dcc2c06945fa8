"""Reading the live configuration: :func:`load_config` for the shared documents, :func:`load_dca` per market.

Never raises for a bad or unreadable configuration (DESIGN §4):
- a missing parameter means its defaults (version 0) — the stack seeds them, but a fresh account or a
  per-symbol DCA document that was never written is normal;
- an invalid newest version is reported and the newest valid older version is used;
- no valid version, or SSM unreadable with nothing cached -> the document is listed in ``problems``
  (``ConfigSnapshot.refusal_reason`` / ``DcaSelection.problem``): new entries are refused while the
  defaults stand in so open positions are still managed. When SSM is unreadable but an expired
  resolution is cached, that last resolution is used (a brief SSM outage must not stop trading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel

from engine.config.documents_provider import ResolvedDocument
from engine.config.providers import document_provider
from engine.config.reporting import logger
from engine.config.settings import config_prefix, max_age_seconds
from engine.domain.config import (
    ConfigProblem,
    ConfigSnapshot,
    DcaConfig,
    EngineConfig,
    PoolConfig,
    QueueConfig,
    RiskConfig,
    dca_document_name,
)

DEFAULT_DCA_DOCUMENT = "dca/default"
ModelT = TypeVar("ModelT", bound=BaseModel)


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


def _model(resolved: ResolvedDocument, model: type[ModelT]) -> ModelT:
    if not isinstance(resolved.model, model):
        raise TypeError(
            f"{resolved.document} resolved to {type(resolved.model).__name__}, not {model.__name__}"
        )
    return resolved.model


def resolve_document(document: str) -> ResolvedDocument:
    """Document ``document`` under the configured prefix, through the cache; never raises for bad config."""
    provider = document_provider()
    parameter = config_prefix() + document
    try:
        return provider.document(parameter, document, max_age_seconds())
    except GetParameterError as exc:
        stale = provider.stale(parameter)
        if stale is not None:
            logger.warning(
                f"cannot read {parameter}, using the last resolution (version {stale.version}): {exc}",
                parameter=parameter,
            )
            return stale
        logger.error(f"cannot read {parameter}: {exc}", parameter=parameter)
        return ResolvedDocument.defaults(document, problem=f"{document} (unreadable: {exc})")


def load_config() -> ConfigSnapshot:
    """The shared documents (engine, pool, queue, risk) with the versions used and any problems."""
    engine = resolve_document("engine")
    pool = resolve_document("pool")
    queue = resolve_document("queue")
    risk = resolve_document("risk")
    resolved = (engine, pool, queue, risk)
    return ConfigSnapshot(
        engine=_model(engine, EngineConfig),
        pool=_model(pool, PoolConfig),
        queue=_model(queue, QueueConfig),
        risk=_model(risk, RiskConfig),
        versions={item.document: item.version for item in resolved},
        problems=[ConfigProblem(item.document, item.problem) for item in resolved if item.problem],
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
    )
