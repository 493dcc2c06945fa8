"""Conformance tier: the gateway over the real ccxt binance, bybit and okx classes, HTTP faked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.venues import VENUES, Venue


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    """Each exchange in turn; fails the test if ccxt sent a request that has no fake answer."""
    built = VENUES[request.param]()
    yield built
    assert not built.http.unrouted, f"requests without a fake answer: {built.http.unrouted}"
