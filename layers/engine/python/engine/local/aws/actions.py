"""moto's action lookup at a constant cost: the handler methods of a response class, listed once.

Every moto request asks ``method_names_from_class(type(self))`` which of its response class's methods
can serve the action — an ``inspect.getmembers`` over the class (hundreds of attributes, sorted) on
every call: ~0.25 ms of each DynamoDB request. A class's methods do not change while moto runs, so
:func:`install` remembers the answer per class.
"""

from __future__ import annotations

import functools

from moto.core import responses, utils

_MOTO_METHOD_NAMES = utils.method_names_from_class


@functools.cache
def method_names_from_class(clazz: type) -> list[str]:
    """moto's list of the functions of ``clazz``, computed once per class (callers only read it)."""
    return _MOTO_METHOD_NAMES(clazz)


def install() -> None:
    """Remembered action lookups (idempotent)."""
    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
