"""The pending entries of an offer's prices and stock, written as text straight from the offer.

A full export of 100,000 offers with 2 price types and 5 warehouses is 700,000 entries, and each is also the
input of the offer's fingerprint, every time, changed or not. Building an item dict per entry and passing it
through the kind's ``key_of``/``value_of`` costs more than reading the file; here the product's part of the
key is quoted once per offer and a store's or price type's once per file, and each entry is one f-string.

The texts must be exactly the kinds' (``prices.key_of``/``value_of``, ``stock.key_of``/``value_of``): the flush
compares them with what the JSON pushes stage and with what reached the shop. ``tests/test_exchange_entries.py``
holds them to the kinds' own functions.
"""

from __future__ import annotations

from json.encoder import encode_basestring as quote

__all__ = ["named", "price", "product", "stock"]


def product(xml_id: str) -> str:
    """The product's half of a key (``refs.product_ref`` of an item naming it by ``xml_id``)."""
    return f'"xml",{quote(xml_id)}'


def named(shop_id: int | None, key: str) -> str:
    """A store's or price type's half (``refs.named_ref``): the shop's id when known, else 1C's key."""
    if shop_id is not None:
        return f'"id",{quote(str(shop_id))}'
    return f'"key",{quote(key)}'


def price(product_part: str, type_part: str, value: float, currency: str) -> tuple[str, str]:
    """(key, value) of the pending price: ``[product, price type]`` → ``[price, currency]``."""
    return f"[{product_part},{type_part}]", f"[{float(value)!r},{quote(currency)}]"


def stock(product_part: str, store_part: str, amount: float) -> tuple[str, str]:
    """(key, value) of the pending amount: ``[product, store]`` → ``[amount]``."""
    return f"[{product_part},{store_part}]", f"[{float(amount)!r}]"
