"""Keep the in-process moto server's memory flat over a long local session.

moto stores every shard iterator it hands out and never forgets one: each ``GetRecords`` creates a
new iterator. The pump polls a few shards five times a second, which would grow by ~100 MB an hour.
Iterators older than the newest ``keep`` are dropped: a reader only ever uses the iterator from its
previous call, and the pump re-positions a reader whose iterator is gone (``ClientError``).
"""

from __future__ import annotations

from moto.dynamodbstreams.models import dynamodbstreams_backends


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
