"""Writing the defaults: documents into SSM and the webhook secret, never over an operator's edit."""

from __future__ import annotations

from engine.config.providers import document_provider, secrets_provider
from engine.config.settings import config_prefix, webhook_secret_name
from engine.domain.config import default_documents


def seed_defaults(prefix: str | None = None, *, overwrite: bool = False) -> list[str]:
    """Write every shared document's defaults as a String parameter under ``prefix`` (default CONFIG_PREFIX).

    With ``overwrite=False`` an existing parameter (an operator's edit) is kept. Returns the SSM names
    actually written. The document cache is cleared so the new versions are read at once.
    """
    provider = document_provider()
    client = provider.client
    base = config_prefix(prefix)
    written: list[str] = []
    for document, text in default_documents().items():
        name = base + document
        try:
            client.put_parameter(
                Name=name,
                Value=text,
                Type="String",
                Overwrite=overwrite,
                Description=f"Execution engine configuration: {document}",
            )
        except client.exceptions.ParameterAlreadyExists:
            continue
        written.append(name)
    provider.clear_cache()
    return written


def seed_webhook_secret(value: str) -> bool:
    """Create the webhook secret (env WEBHOOK_SECRET_NAME) with ``value``; keep it if it exists.

    Returns True when created, False when an existing secret was kept.
    """
    if not value:
        raise ValueError("the webhook secret must not be empty")
    provider = secrets_provider()
    client = provider.client
    try:
        client.create_secret(
            Name=webhook_secret_name(),
            SecretString=value,
            Description="Execution engine: shared secret of the TradingView webhook",
        )
    except client.exceptions.ResourceExistsException:
        return False
    provider.clear_cache()
    return True
