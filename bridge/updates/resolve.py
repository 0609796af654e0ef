"""From the names 1C used to the shop's ids, for updates keyed by product × something (store, price type).

An entry's key is ``[product how, product value, group how, group value]`` as 1C sent it. Resolving it
drops (and reports) what cannot be found, and then keeps one entry per shop key: 1C may name the same
product by xml id in one push and by article in the next, and only the newer of the two must be written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from bridge import keys
from bridge.errors import Cause, TransientError
from bridge.runtime import Runtime
from bridge.updates import on_the_way
from bridge.updates.catalog import ProductRef, find_products, unknown_product
from bridge.updates.outcomes import Outcomes, Problem
from bridge.updates.pending import Entry

Pair = tuple[int, int]  # (product id, store id or price type id)
# An entry → its group id, or the problem (in words, with its class) why it has none.
GroupOf = Callable[[Entry], "int | Problem"]


def mapped(table: Mapping[str, int], name: str) -> int | None:
    """A 1C key looked up in a mapping table: exactly, then ignoring case and outer spaces."""
    if name in table:
        return table[name]
    wanted = name.strip().casefold()
    for key, value in table.items():
        if key.strip().casefold() == wanted:
            return value
    return None


# The shop's price types and stores, listed to find the one whose ``xmlId`` is a 1C ``Ид``.
XML_ID_LISTS = {"price_types": ("catalog.pricetype.list", "priceTypes"), "stores": ("catalog.store.list", "stores")}
XML_IDS_TTL = 300


def by_xml_id(rt: Runtime, what: Literal["price_types", "stores"], xml_id: str) -> int | None:
    """The shop's price type or store whose ``xmlId`` is ``xml_id`` (1C-Bitrix's own import sets it to 1C's Ид).

    The list is read once and cached for a few minutes, so a flush of many keys asks once, and a price type
    added in the shop is found soon without a restart.
    """
    cache_key = keys.CACHE_XML_IDS.format(what=what)
    cached = rt.redis.get(cache_key)
    if cached is None:
        method, list_key = XML_ID_LISTS[what]
        rows = rt.shop.list_all(method, {"select": ["id", "xmlId"]}, list_key)
        table = {str(r["xmlId"]): int(r["id"]) for r in rows if r.get("xmlId") not in (None, "") and r.get("id")}
        cached = json.dumps(table)
        rt.redis.set(cache_key, cached, ex=XML_IDS_TTL)
    found = json.loads(cached).get(xml_id)
    return None if found is None else int(found)


def mapped_or_xml_id(
    rt: Runtime, table: Mapping[str, int], what: Literal["price_types", "stores"], key: str
) -> int | None:
    """A 1C key through the mappings' table, else the shop's object whose ``xmlId`` it is."""
    found = mapped(table, key)
    return found if found is not None else by_xml_id(rt, what, key)


def resolve(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes, group_of: GroupOf) -> dict[Pair, Entry]:
    """The newest entry per (product id, group id); the others are dropped, held or superseded."""
    grouped: list[tuple[Entry, int]] = []
    for entry in entries:
        group = group_of(entry)
        if isinstance(group, Problem):
            outcomes.refuse([entry], group)
        else:
            grouped.append((entry, group))
    products = find_products(rt, {(e.key[0], e.key[1]) for e, _ in grouped})
    absent = sorted({str(e.key[1]) for e, _ in grouped if e.key[0] == "xml" and (e.key[0], e.key[1]) not in products})
    coming, held = on_the_way.on_their_way(rt.redis, "products", absent)
    winners: dict[Pair, Entry] = {}
    for entry, group in grouped:
        ref = (entry.key[0], entry.key[1])
        product_id = products.get(ref)
        if product_id is None:
            _absent(rt, entry, ref, coming, held, outcomes)
            continue
        pair = (product_id, group)
        known = winners.get(pair)
        if known is None:
            winners[pair] = entry
        elif entry.newer_than(known):
            outcomes.supersede([known])
            winners[pair] = entry
        else:
            outcomes.supersede([entry])
    return winners


def _absent(rt: Runtime, entry: Entry, ref: ProductRef, coming: set[str], held: set[str], outcomes: Outcomes) -> None:
    """An entry whose product the shop lacks: it waits for a product still to be written, is held with a held
    one, and is refused (dropped or held, as the reason says) otherwise."""
    value = str(ref[1])
    if ref[0] == "xml" and value in coming:
        outcomes.wait([entry], TransientError(f"product {value!r} is not written yet", cause=Cause.BUSY))
    elif ref[0] == "xml" and value in held:
        outcomes.refuse([entry], on_the_way.held_with(f"product {value!r}"))
    else:
        outcomes.refuse([entry], unknown_product(rt, ref))
