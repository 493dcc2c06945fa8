"""Optimistic retries: re-run a read-decide-write attempt while its conditional write loses a race.

Every versioned save (``GroupStore.save``, ``OrderStore.save``, ...) raises ``StaleWrite`` when the
item changed since it was read. A use case then re-reads and decides again, a bounded number of
times. :func:`retry_on_stale` is that loop::

    def attempt() -> Group:
        group = stores.groups.get(group_id)  # re-read on every attempt
        ...
        stores.groups.save(group, now=now)  # may raise StaleWrite
        return group

    return retry_on_stale(attempt, attempts=SAVE_ATTEMPTS, on_exhausted=lambda: StaleWrite("..."))

The attempt re-reads what it depends on itself (or ``on_stale`` refreshes it); anything it returns
ends the loop (including ``None``), any other exception propagates at once. ``on_exhausted`` builds
the exception raised when every attempt hit ``StaleWrite`` (chained to the last one); without it the
helper returns None instead (for best-effort writes that a later run repeats).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

from engine.store import StaleWrite

__all__ = ["retry_on_stale"]

T = TypeVar("T")


@overload
def retry_on_stale(
    attempt: Callable[[], T],
    *,
    attempts: int,
    on_exhausted: Callable[[], Exception],
    on_stale: Callable[[StaleWrite], None] | None = None,
) -> T: ...


@overload
def retry_on_stale(
    attempt: Callable[[], T],
    *,
    attempts: int,
    on_exhausted: None = None,
    on_stale: Callable[[StaleWrite], None] | None = None,
) -> T | None: ...


def retry_on_stale(
    attempt: Callable[[], T],
    *,
    attempts: int,
    on_exhausted: Callable[[], Exception] | None = None,
    on_stale: Callable[[StaleWrite], None] | None = None,
) -> T | None:
    """Call ``attempt`` until it returns without ``StaleWrite``, at most ``attempts`` times.

    ``on_stale`` is called with each ``StaleWrite`` caught (e.g. to log, or to re-read what the next
    attempt starts from; it may raise to stop). When every attempt lost, raises ``on_exhausted()``
    (chained to the last ``StaleWrite``), or returns None when ``on_exhausted`` is not given (the
    caller gives up quietly: the change is retried by a later run).
    """
    last: StaleWrite | None = None
    for _ in range(attempts):
        try:
            return attempt()
        except StaleWrite as stale:
            last = stale
            if on_stale is not None:
                on_stale(stale)
    if on_exhausted is None:
        return None
    raise on_exhausted() from last
