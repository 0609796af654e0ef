"""Prices from 1C into the shop, one price record per (product, price type).

The record is found with ``catalog.price.list`` (its id is then cached) and changed with
``catalog.price.update {"id", "fields": {"price", "currency"}}``, or created with ``catalog.price.add``.
Never ``catalog.price.modify``: it replaces a product's whole price collection and deletes every price it
is not given, so updating the retail price would wipe the wholesale one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge import keys
from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.records import RecordKind, number, same, write_records
from bridge.updates.resolve import mapped, resolve


def _fields(entry: Entry) -> dict[str, Any]:
    return {"price": number(float(entry.value[0])), "currency": str(entry.value[1])}


def _holds(row: dict[str, Any], entry: Entry) -> bool:
    return same(row.get("price"), float(entry.value[0])) and row.get("currency") == entry.value[1]


PRICES = RecordKind(
    listing=ListCommand(
        "catalog.price.list", {"select": ["id", "productId", "catalogGroupId", "price", "currency"]}, "prices"
    ),
    group_field="catalogGroupId",
    cache_key=lambda pair: keys.CACHE_PRICE.format(product_id=pair[0], price_type_id=pair[1]),
    update="catalog.price.update",
    add="catalog.price.add",
    result_key="price",
    fields=_fields,
    holds=_holds,
)


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Write the prices of ``entries``; every entry ends up in ``outcomes``."""
    if not entries:
        return

    def price_type_of(entry: Entry) -> int | str:
        how, value = entry.key[2], entry.key[3]
        type_id = mapped(rt.mappings.price_types, value) if how == "key" else int(value)
        if type_id is None:
            return f"1C price type {value!r} is not mapped to a shop price type; add it under [price_types] in catalog.toml"
        return type_id

    write_records(rt, PRICES, resolve(rt, entries, outcomes, price_type_of), outcomes)
