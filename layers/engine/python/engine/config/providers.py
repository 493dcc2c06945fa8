"""The process-wide Powertools providers of ``engine.config``, created lazily on first use.

Lazily, so a boto3 client is never built at import time (cold start; moto tests start their mock first),
and :func:`clear_cache` drops them entirely: the next read builds new clients with empty caches.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from engine.config.documents_provider import DocumentProvider, client_config

_documents: DocumentProvider | None = None
_secrets: SecretsProvider | None = None
_reported: set[tuple[object, ...]] = set()


def first_report(key: tuple[object, ...]) -> bool:
    """True the first time ``key`` is seen since the last :func:`clear_cache` (report a problem once)."""
    if key in _reported:
        return False
    _reported.add(key)
    return True


def document_provider() -> DocumentProvider:
    """The shared SSM document provider (one cache per process, like a warm Lambda's)."""
    global _documents
    if _documents is None:
        _documents = DocumentProvider(boto_config=client_config())
    return _documents


def secrets_provider() -> SecretsProvider:
    """The shared Secrets Manager provider."""
    global _secrets
    if _secrets is None:
        _secrets = SecretsProvider(boto_config=client_config())
    return _secrets


def clear_cache() -> None:
    """Forget every cached document and secret (and the clients) and what was reported: the next read
    goes to AWS."""
    global _documents, _secrets
    _documents = None
    _secrets = None
    _reported.clear()
