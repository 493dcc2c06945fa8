"""Keep the in-process moto server's memory flat over a long local session.

moto keeps a reference to every model object it ever made (``BaseModel.__new__`` appends each one to
its class's ``instances_tracked``, for the moto server's dashboard): every DynamoDB item version, every
stream record and shard iterator stays alive after it was overwritten or trimmed, ~0.9 MB a signal
locally. :func:`stop_tracking_instances` stops that for the DynamoDB and DynamoDB Streams models (the
only ones that churn; nothing here reads the dashboard) and drops what was tracked so far.

moto also stores every shard iterator it hands out and never forgets one: each ``GetRecords`` creates a
new iterator. The pump polls a few shards five times a second, which would grow by ~100 MB an hour.
Iterators older than the newest ``keep`` are dropped: a reader follows the iterator of its previous
call, and one it no longer has is answered as AWS answers an iterator past its 15 minutes
(``ExpiredIteratorException``, :func:`get_records`; moto raised a ``KeyError``): the pump then
re-positions the reader with a fresh iterator.

Python's cyclic garbage collector pauses every thread while it walks every object of its oldest
generation: measured over a soak, each full collection took 270-400 ms, and an answer to TradingView
caught in one waited as long. Most of those objects are loaded once and live as long as the process
(botocore's and moto's service models, ccxt, the functions' modules). :func:`freeze_heap` moves
everything alive at that moment to the collector's permanent generation (``gc.freeze``), so a full
collection walks only what was made since; the runtime calls it once it has started, then every
``FREEZE_SECONDS`` from its housekeeping. An object set aside is still freed when its last reference goes;
only one caught in a reference cycle after it was set aside would stay.
"""

from __future__ import annotations

import gc
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.exceptions import JsonRESTError
from moto.core.model_instances import model_data
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, dynamodbstreams_backends

#: Modules whose models are not tracked: every item write makes a new ``Item``.
UNTRACKED_MODULES = ("moto.dynamodb.", "moto.dynamodbstreams.")
_MOTO_NEW = BaseModel.__new__


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    if cls.__module__.startswith(UNTRACKED_MODULES):
        return object.__new__(cls)
    return _MOTO_NEW(cls, *args, **kwargs)


_MOTO_GET_RECORDS = DynamoDBStreamsBackend.get_records


class ExpiredIterator(JsonRESTError):
    """The iterator is not (or no longer) known: AWS's answer to an expired one."""

    def __init__(self) -> None:
        super().__init__("ExpiredIteratorException", "Iterator expired: get a new shard iterator")


def get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
    """moto's ``get_records``; an unknown iterator is :class:`ExpiredIterator` rather than a crash."""
    if iterator_arn not in self.shard_iterators:
        raise ExpiredIterator()
    return _MOTO_GET_RECORDS(self, iterator_arn, limit)


def answer_expired_iterators() -> None:
    """Unknown shard iterators get AWS's ``ExpiredIteratorException`` (idempotent)."""
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def stop_tracking_instances() -> None:
    """New DynamoDB / Streams model objects are no longer kept by moto; the ones kept are let go
    (idempotent)."""
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign,assignment]
    for service in ("dynamodb", "dynamodbstreams"):
        for model in model_data.get(service, {}).values():
            model.instances_tracked = []  # type: ignore[attr-defined]


def prune_shard_iterators(keep: int = 500, threshold: int = 2000) -> int:
    """Drop all but the newest ``keep`` iterators of every region once one holds ``threshold``."""
    dropped = 0
    for account in list(dynamodbstreams_backends.values()):
        for backend in list(account.values()):
            iterators = backend.shard_iterators
            if len(iterators) < threshold:
                continue
            # list() of a dict of str keys runs without releasing the GIL: a consistent snapshot.
            arns = list(iterators)
            for arn in arns[: max(0, len(arns) - keep)]:
                if iterators.pop(arn, None) is not None:
                    dropped += 1
    return dropped


def freeze_heap() -> int:
    """Collect, then move every object alive now out of the cyclic collector's walks; how many are set
    aside in all. After the first call a collection walks only what was made since the last one (tens of
    milliseconds), and collecting first means no garbage is set aside."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
