"""Errors the use cases raise for the operator API to map to HTTP (in one place: ``engine.api.operator``).

- :class:`NotFound` → 404 ``not_found``: the group / queue entry / order does not exist.
- :class:`InvalidState` → 409 ``invalid_state``: the thing exists but the action does not apply now.
- :class:`PoolFull` → 409 ``pool_full``: no free execution-pool slot.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of the errors a service raises for its caller to report."""

    code = "service_error"


class NotFound(ServiceError):
    """The addressed item does not exist."""

    code = "not_found"


class InvalidState(ServiceError):
    """The addressed item exists but cannot take the requested action in its current state."""

    code = "invalid_state"


class PoolFull(ServiceError):
    """The execution pool has no free slot."""

    code = "pool_full"
