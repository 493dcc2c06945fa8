"""A labelled ``TransactWriteItems`` builder that reports which conditions failed.

pynamodb's ``TransactWrite`` reorders items (checks, deletes, puts, updates) and exposes the
cancellation reasons by position only. :class:`Transaction` keeps a label per item in the order actually
sent, so callers learn *which* named conditions failed, and it retries the DynamoDB-side transient
cancellations (``TransactionConflict``, throttling, a same-token transaction still in progress).

Idempotency: every commit carries a ``ClientRequestToken`` derived from the caller's idempotency key
(e.g. the group id) and a digest of the exact request, so a retried identical request within DynamoDB's
10-minute window succeeds without applying twice, and a different request never collides with it
(``IdempotentParameterMismatch``). Retries after a transient cancellation use a derived token.
Callers that replay an identical request after a *condition* cancellation within 10 minutes may get the
same answer again; in this engine such replays differ anyway (promotions carry the queue entry id).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from engine.store.errors import TransactionFailed
from engine.store.tables import transaction_connection

_KIND_ORDER = {"check": 0, "delete": 1, "put": 2, "update": 3}
_TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_TRANSIENT_ERRORS = {"TransactionInProgressException", "ThrottlingException"}
MAX_ATTEMPTS = 8


@dataclass
class _Item:
    label: str
    kind: str
    kwargs: dict[str, Any]
    model: Model | None


class Transaction:
    """Collect labelled writes, then :meth:`commit` them as one DynamoDB transaction."""

    def __init__(self, idempotency_key: str) -> None:
        self._idempotency_key = idempotency_key
        self._items: list[_Item] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, label: str, model: Model, condition: Condition | None = None) -> None:
        """Put ``model`` (with its version condition when it has a version attribute)."""
        kwargs = model.get_save_kwargs_from_instance(condition=condition)
        self._items.append(_Item(label, "put", kwargs, model))

    def check(self, label: str, model_cls: type[Model], hash_key: Any, condition: Condition) -> None:
        """Require ``condition`` on the item ``hash_key`` of ``model_cls`` (nothing is written to it)."""
        kwargs = model_cls.get_operation_kwargs_from_class(hash_key, condition=condition)
        self._items.append(_Item(label, "check", kwargs, None))

    def delete(self, label: str, model: Model, condition: Condition | None = None) -> None:
        """Delete the item with ``model``'s key."""
        kwargs = model.get_delete_kwargs_from_instance(condition=condition, add_version_condition=False)
        self._items.append(_Item(label, "delete", kwargs, None))

    def update(
        self, label: str, model: Model, actions: list[Action], condition: Condition | None = None
    ) -> None:
        """Apply ``actions`` to the item with ``model``'s key."""
        kwargs = model.get_update_kwargs_from_instance(
            actions=actions, condition=condition, add_version_condition=False
        )
        self._items.append(_Item(label, "update", kwargs, None))

    def _ordered(self) -> list[_Item]:
        return sorted(self._items, key=lambda item: _KIND_ORDER[item.kind])

    def _token(self, ordered: list[_Item]) -> str:
        digest = hashlib.sha256(self._idempotency_key.encode())
        for item in ordered:
            digest.update(json.dumps([item.kind, item.kwargs], sort_keys=True, default=str).encode())
        return digest.hexdigest()[:36]

    def commit(self) -> set[str]:
        """Send the transaction; returns the labels whose condition failed (empty set = committed).

        Raises :class:`TransactionFailed` for any other cancellation or error after the retries.
        """
        ordered = self._ordered()
        by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _KIND_ORDER}
        for item in ordered:
            by_kind[item.kind].append(item.kwargs)
        base_token = self._token(ordered)
        for attempt in range(MAX_ATTEMPTS):
            # A cancelled attempt applied nothing; retries get their own token so that no cached
            # outcome of the cancelled attempt can be returned for them.
            token = base_token if attempt == 0 else f"{base_token[:32]}r{attempt:03d}"
            try:
                transaction_connection().transact_write_items(
                    condition_check_items=by_kind["check"],
                    delete_items=by_kind["delete"],
                    put_items=by_kind["put"],
                    update_items=by_kind["update"],
                    client_request_token=token,
                )
            except TransactWriteError as error:
                failed, transient = _classify(error, ordered)
                if failed:
                    return failed
                if not transient or attempt == MAX_ATTEMPTS - 1:
                    raise TransactionFailed(f"transaction failed: {error.cause_response_code}") from error
                time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.0))
                continue
            for item in ordered:
                if item.model is not None:
                    item.model.update_local_version_attribute()
            return set()
        raise AssertionError("unreachable")


def _classify(error: TransactWriteError, ordered: list[_Item]) -> tuple[set[str], bool]:
    """Labels whose condition failed, and whether the error is worth retrying."""
    code = error.cause_response_code
    if code in _TRANSIENT_ERRORS:
        return set(), True
    if code != "TransactionCanceledException":
        return set(), False
    reasons = error.cancellation_reasons
    failed = {
        item.label
        for item, reason in zip(ordered, reasons, strict=False)
        if reason is not None and reason.code == "ConditionalCheckFailed"
    }
    if failed:
        return failed, False
    transient = any(reason is not None and reason.code in _TRANSIENT_REASONS for reason in reasons)
    return set(), transient
