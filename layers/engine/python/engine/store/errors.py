"""Errors raised by ``engine.store`` (domain-level: callers never see pynamodb or botocore errors)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's errors."""


class StaleWrite(StoreError):
    """An optimistic-locking write lost: the stored ``version`` differs from the object's.

    Re-read the item, re-apply the change and save again.
    """


#: Alias: the same error under the name some callers expect.
ConcurrentUpdate = StaleWrite


class AlreadyExists(StoreError):
    """A write that must create an item found it already there."""


class TransactionFailed(StoreError):
    """A transaction was cancelled for a reason the store cannot interpret (after its retries)."""
