"""A Powertools SSM provider whose cached value is a *validated* document together with its version.

Powertools' ``SSMProvider.get`` returns only the value. :class:`DocumentProvider` overrides ``_get`` (the
uncached read) to call ``get_parameter`` itself, keep ``Version``, validate the JSON with
``parse_document`` and, when the newest version is invalid, walk ``get_parameter_history`` back to the
newest valid one. The whole :class:`ResolvedDocument` is what Powertools caches for ``max_age`` seconds,
so a warm function re-reads (and re-validates) a document at most once per ``max_age`` and every
function, cold or warm, resolves the same parameter state to the same version.

Cached outcomes (each for ``max_age``):
- parameter missing -> the model's defaults, version 0, ``missing`` (normal for per-symbol DCA documents;
  caching the miss spares the webhook an SSM call per signal);
- newest version valid -> that version;
- newest invalid -> reported (log + ``ConfigInvalid``) and the newest valid older version is used;
- no valid version at all -> defaults with ``problem`` set (the caller refuses new entries).

Reads: :meth:`DocumentProvider.documents` resolves several documents with **one** SSM ``GetParameters``
call (Powertools' ``get_parameters_by_name``, whose caching and chunking are kept: the overrides below only
make it cache :class:`ResolvedDocument` values under the same key as :meth:`DocumentProvider.document`, and
treat a name SSM does not know as "missing", not as an error). A cold container thus reads the shared
documents in one request instead of one per document (SSM's default limit is 40 requests/s per account).

The cache clock is injectable (``clock``), so tests can age the cache without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.base import ExpirableValue
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from engine.config.reporting import report_invalid
from engine.domain.config import ConfigError, model_for, parse_document

#: SSM allows at most 50 results per get_parameter_history page.
HISTORY_PAGE_SIZE = 50


@dataclass(frozen=True)
class ResolvedDocument:
    """The configuration document one parameter resolves to.

    ``version``: SSM version whose content is ``model`` (0 = defaults: parameter missing or no valid
    version). ``latest_version``: newest SSM version (0 when missing). ``invalid``: why the newest version
    was rejected, if it was. ``problem``: set when no usable version exists -> new entries are refused.
    """

    document: str
    model: BaseModel
    version: int
    latest_version: int = 0
    missing: bool = False
    invalid: ConfigError | None = None
    problem: str | None = None
    #: SSM could not be read (throttled, unreachable) and nothing was cached: a transient problem.
    unreadable: bool = False

    @classmethod
    def defaults(
        cls, document: str, *, missing: bool = False, problem: str | None = None, unreadable: bool = False
    ) -> ResolvedDocument:
        """The document's defaults, version 0."""
        return cls(
            document=document,
            model=model_for(document)(),
            version=0,
            missing=missing,
            problem=problem,
            unreadable=unreadable,
        )


def client_config() -> Config:
    """Short timeouts and few retries: the webhook answers TradingView within 3 seconds."""
    return Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2, "mode": "standard"})


class DocumentProvider(SSMProvider):
    """SSM provider returning :class:`ResolvedDocument` values from :meth:`document` (Powertools-cached)."""

    def __init__(self, clock: Callable[[], datetime] = datetime.now, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    # -- Powertools cache, on an injectable clock (Powertools itself calls datetime.now()) -------------

    def has_not_expired_in_cache(self, key: tuple[Any, ...]) -> bool:
        entry = self.store.get(key)
        return entry is not None and entry.ttl >= self.clock()

    def add_to_cache(self, key: tuple[Any, ...], value: Any, max_age: int) -> None:
        if max_age <= 0:
            return
        self.store[key] = ExpirableValue(value, self.clock() + timedelta(seconds=max_age))

    # -- reads --------------------------------------------------------------------------------------

    def document(self, parameter: str, document: str, max_age: int) -> ResolvedDocument:
        """Document ``document`` stored at SSM name ``parameter``, from cache when younger than max_age.

        Raises Powertools' ``GetParameterError`` when SSM cannot be read (the caller decides).
        """
        value = self.get(parameter, max_age=max_age, document=document)
        if not isinstance(value, ResolvedDocument):
            raise TypeError(f"unexpected cached value for {parameter}: {type(value).__name__}")
        return value

    def documents(self, parameters: Mapping[str, str], max_age: int) -> dict[str, ResolvedDocument]:
        """Documents by SSM name (``parameters``: SSM name -> document name), one ``GetParameters`` call
        for those not cached (Powertools ``get_parameters_by_name``; up to 10 names per call).

        Raises ``GetParameterError`` when SSM cannot be read (throttled, unreachable, partial failure);
        the documents that were read are cached all the same (:meth:`stale` finds them).
        """
        request: dict[str, dict[str, Any]] = {name: {"document": doc} for name, doc in parameters.items()}
        try:
            values = self.get_parameters_by_name(request, max_age=max_age, raise_on_error=False)
        except (BotoCoreError, ClientError) as exc:
            raise GetParameterError(str(exc)) from exc
        read: dict[str, ResolvedDocument] = {}
        for name in parameters:
            value = values.get(name)
            if isinstance(value, ResolvedDocument):
                read[name] = value
        if len(read) < len(parameters):
            raise GetParameterError(f"cannot read {', '.join(sorted(set(parameters) - set(read)))}")
        return read

    def stale(self, parameter: str) -> ResolvedDocument | None:
        """The last resolution of ``parameter`` even when expired (used when SSM is unreachable)."""
        entry = self.store.get(self._build_cache_key(name=parameter))
        return entry.value if entry is not None and isinstance(entry.value, ResolvedDocument) else None

    def _get(  # type: ignore[override]
        self, name: str, decrypt: bool = False, document: str = "", **sdk_options: Any
    ) -> ResolvedDocument:
        if not document:
            raise ValueError("DocumentProvider needs the document name (document=...)")
        try:
            parameter = self.client.get_parameter(Name=name, WithDecryption=decrypt, **sdk_options)
        except self.client.exceptions.ParameterNotFound:
            return ResolvedDocument.defaults(document, missing=True)
        return self._resolve(
            name, document, parameter["Parameter"]["Value"], int(parameter["Parameter"]["Version"]), decrypt
        )

    # -- Powertools' get_parameters_by_name, caching ResolvedDocument under document()'s key -------------

    def _get_parameters_by_name_from_cache(self, batch: dict[str, dict]) -> dict[str, Any]:
        return {
            name: self.store[key].value
            for name in batch
            if self.has_not_expired_in_cache(key := self._build_cache_key(name=name))
        }

    @staticmethod
    def _handle_any_invalid_get_parameter_errors(  # type: ignore[override]
        api_response: Any, raise_on_error: bool = True
    ) -> list[str]:
        return []  # a name SSM does not know is a missing document (its defaults), not a failure

    def _transform_and_cache_get_parameters_response(  # type: ignore[override]
        self, api_response: Any, parameters: dict[str, Any], raise_on_error: bool = True
    ) -> dict[str, Any]:
        resolved: dict[str, ResolvedDocument] = {}
        for parameter in api_response["Parameters"]:
            name = parameter["Name"]
            document = parameters[name]["document"]
            resolved[name] = self._resolve(
                name, document, parameter["Value"], int(parameter["Version"]), decrypt=False
            )
        for name in api_response.get("InvalidParameters", []):
            resolved[name] = ResolvedDocument.defaults(parameters[name]["document"], missing=True)
        for name, value in resolved.items():
            self.add_to_cache(self._build_cache_key(name=name), value, parameters[name]["max_age"])
        return dict(resolved)

    # -- validation ---------------------------------------------------------------------------------

    def _resolve(
        self, name: str, document: str, value: str, latest_version: int, decrypt: bool
    ) -> ResolvedDocument:
        """The newest version if valid, else the newest valid older one (reported), else defaults."""
        try:
            model = parse_document(document, value)
        except ConfigError as latest_error:
            return self._newest_valid(name, document, latest_version, latest_error, decrypt)
        return ResolvedDocument(
            document=document, model=model, version=latest_version, latest_version=latest_version
        )

    def _newest_valid(
        self, name: str, document: str, latest_version: int, latest_error: ConfigError, decrypt: bool
    ) -> ResolvedDocument:
        for version, text in self._older_versions(name, latest_version, decrypt):
            try:
                model = parse_document(document, text)
            except ConfigError:
                continue
            report_invalid(name, latest_error, latest_version, version)
            return ResolvedDocument(
                document=document,
                model=model,
                version=version,
                latest_version=latest_version,
                invalid=latest_error,
            )
        report_invalid(name, latest_error, latest_version, 0)
        problem = f"{document} (no valid version; latest {latest_version}: {_describe(latest_error)})"
        return ResolvedDocument(
            document=document,
            model=model_for(document)(),
            version=0,
            latest_version=latest_version,
            invalid=latest_error,
            problem=problem,
        )

    def _older_versions(self, name: str, latest_version: int, decrypt: bool) -> Iterator[tuple[int, str]]:
        """(version, value) of the versions older than ``latest_version``, newest first."""
        versions: list[tuple[int, str]] = []
        paginator = self.client.get_paginator("get_parameter_history")
        pages = paginator.paginate(
            Name=name, WithDecryption=decrypt, PaginationConfig={"PageSize": HISTORY_PAGE_SIZE}
        )
        for page in pages:
            for entry in page.get("Parameters", []):
                version = int(entry["Version"])
                if version < latest_version:
                    versions.append((version, entry["Value"]))
        versions.sort(key=lambda item: item[0], reverse=True)
        yield from versions


def _describe(error: ConfigError) -> str:
    """``field: reason`` of the first problem (the document name is said by the caller)."""
    return f"{error.field}: {error.reason}" if error.field else error.reason
