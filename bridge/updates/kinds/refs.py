"""How an item's references become the JSON text of its pending key and value, and how a key reads back.

1C names a product by the shop's id, its xmlId or its article, and a store, price type or status by its
1C key or the shop's id. A key keeps what 1C sent, as a JSON array such as ``["xml","<guid>","key","Main"]``
(product by xml id, store by 1C key); the flush resolves it to shop ids (``bridge.updates.resolve``).

The text is built with f-strings around json's C string quoting: the generic encoder is eight times slower,
and this runs once per item of 50,000-item bodies (``bench/stock.py``). Numbers are written with ``repr``
of a float, so equal values give equal text.
"""

from __future__ import annotations

from json.encoder import encode_basestring as quote
from typing import Any

__all__ = ["describe_product_in", "named_ref", "product_ref", "quote", "xml_id_key"]

_PRODUCT_WORDS = {"id": "id", "xml": "xml_id", "sku": "sku", "key": ""}


def product_ref(item: dict[str, Any]) -> str:
    """``"id","5"``, ``"xml","<guid>"`` or ``"sku","A-300"``: the product as the item names it."""
    if item.get("product_id") is not None:
        return f'"id","{item["product_id"]}"'
    if item.get("xml_id") is not None:
        return f'"xml",{quote(item["xml_id"])}'
    return f'"sku",{quote(item["sku"])}'


def named_ref(item: dict[str, Any], key_field: str, id_field: str) -> str:
    """``"id","3"`` for the shop's id, or ``"key","Main"`` for 1C's key, of a store, price type or status."""
    if item.get(id_field) is not None:
        return f'"id",{quote(str(item[id_field]))}'
    return f'"key",{quote(item[key_field])}'


def describe_product_in(key: list[Any], what: str) -> str:
    """A ``[product how, product value, group how, group value]`` key in words: 'product xml_id 'abc', store 'Main''."""
    product = f"product {_PRODUCT_WORDS.get(key[0], key[0])} {key[1]!r}"
    named = f"{what} id {key[3]}" if key[2] == "id" else f"{what} {key[3]!r}"
    return f"{product}, {named}"


def xml_id_key(xml_id: str) -> str:
    """The pending key of a document kept whole under its 1C ``Ид`` (products, sections): ``["<xml id>"]``.

    One definition, since other modules look such keys up: a product waits for its pending section, and the
    exchange reads the document it last staged."""
    return f"[{quote(xml_id)}]"  # json.dumps([xml_id], ensure_ascii=False), without the generic encoder
