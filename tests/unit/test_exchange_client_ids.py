"""Client order ids fit every supported exchange and are stable per order."""

from __future__ import annotations

import re

import pytest

from engine.exchange.client_ids import client_order_id

# Each exchange's documented rule for client order ids.
EXCHANGE_RULES = {
    "binance": re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),  # newClientOrderId
    "bybit": re.compile(r"^[A-Za-z0-9_-]{1,36}$"),  # orderLinkId
    "okx": re.compile(r"^[A-Za-z0-9]{1,32}$"),  # clOrdId
}

ORDER_IDS = ["01J9Z8X7Y6W5V4T3S2R1Q0P9N8", "g-1#p2#leg3", "ünïcødé order", "x" * 500]


@pytest.mark.parametrize("exchange", sorted(EXCHANGE_RULES))
@pytest.mark.parametrize("order_id", ORDER_IDS)
def test_client_order_id_fits_the_exchange_rule(exchange, order_id):
    assert EXCHANGE_RULES[exchange].match(client_order_id(order_id))


@pytest.mark.parametrize("order_id", ORDER_IDS)
def test_client_order_id_is_32_lowercase_hex(order_id):
    assert re.fullmatch(r"[0-9a-f]{32}", client_order_id(order_id))


def test_same_order_id_gives_the_same_client_order_id_on_every_attempt():
    assert client_order_id("order-1") == client_order_id("order-1")


def test_different_orders_get_different_client_order_ids():
    ids = {client_order_id(f"order-{n}") for n in range(1000)}
    assert len(ids) == 1000


def test_empty_order_id_is_refused():
    with pytest.raises(ValueError):
        client_order_id("")
