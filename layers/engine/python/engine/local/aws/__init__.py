"""The local AWS: a serialised moto server and the patches that keep its costs those of real AWS.

:func:`install_cost_fixes` is called by every test tier (``tests/conftest.py``), the moto server of
``make run`` and the e2e stack, and the benchmarks: transactions with an undo log
(:mod:`.transactions`), queries that look at one partition instead of the whole table (:mod:`.queries`,
fed by the item-change notifications of :mod:`.changes`), DynamoDB read answers without the
model-driven serializer (:mod:`.reads`), exact number arithmetic in update expressions
(:mod:`.numbers`), action lookups listed once per class (:mod:`.actions`), and no dashboard copy of
every DynamoDB item version moto ever made (:func:`.housekeeping.stop_tracking_instances`); an unknown
shard iterator is answered ``ExpiredIteratorException`` as AWS answers it.
:mod:`.streams` trims consumed stream records (the local runtime calls it).
"""

from __future__ import annotations


def install_cost_fixes() -> None:
    """Install the moto patches (idempotent)."""
    from engine.local.aws import actions, numbers, queries, reads, transactions
    from engine.local.aws.housekeeping import answer_expired_iterators, stop_tracking_instances

    stop_tracking_instances()
    answer_expired_iterators()
    transactions.install()
    actions.install()
    queries.install()
    reads.install()
    numbers.install()
