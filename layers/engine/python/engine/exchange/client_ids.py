"""Client order ids: what we call an order on the exchange, derived from our own order id.

32 lowercase hexadecimal characters (BLAKE2b, 16-byte digest) fit all three exchanges: binance
``newClientOrderId`` (at most 36 of ``[.A-Z:/a-z0-9_-]``), bybit ``orderLinkId`` (at most 36 of
letters, digits, ``-`` and ``_``) and okx ``clOrdId`` (at most 32 alphanumerics). Deterministic, so
every attempt for the same order carries the same id and the exchange can tell a repeat.
"""

from __future__ import annotations

import hashlib

__all__ = ["CLIENT_ORDER_ID_LENGTH", "client_order_id"]

CLIENT_ORDER_ID_LENGTH = 32
_PERSON = b"engine-order"  # domain separation: these digests are used for nothing else


def client_order_id(order_id: str) -> str:
    """The client order id (32 lowercase hex characters) for our order ``order_id``."""
    if not order_id:
        raise ValueError("order_id must not be empty")
    digest = hashlib.blake2b(
        order_id.encode("utf-8"), digest_size=CLIENT_ORDER_ID_LENGTH // 2, person=_PERSON
    )
    return digest.hexdigest()
