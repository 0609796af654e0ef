"""From the names 1C used to the shop's ids, for updates keyed by product × something (store, price type).

An entry's key is ``[product how, product value, group how, group value]`` as 1C sent it. Resolving it
drops (and reports) what cannot be found, and then keeps one entry per shop key: 1C may name the same
product by xml id in one push and by article in the next, and only the newer of the two must be written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bridge.runtime import Runtime
from bridge.updates.catalog import find_products, unknown_product
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry

Pair = tuple[int, int]  # (product id, store id or price type id)
# An entry → its group id, or the reason (in words) why it has none.
GroupOf = Callable[[Entry], "int | str"]


def mapped(table: Mapping[str, int], name: str) -> int | None:
    """A 1C key looked up in a mapping table: exactly, then ignoring case and outer spaces."""
    if name in table:
        return table[name]
    wanted = name.strip().casefold()
    for key, value in table.items():
        if key.strip().casefold() == wanted:
            return value
    return None


def resolve(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes, group_of: GroupOf) -> dict[Pair, Entry]:
    """The newest entry per (product id, group id); the others are dropped, reported or superseded."""
    grouped: list[tuple[Entry, int]] = []
    for entry in entries:
        group = group_of(entry)
        if isinstance(group, str):
            outcomes.drop([entry], group)
        else:
            grouped.append((entry, group))
    products = find_products(rt, {(e.key[0], e.key[1]) for e, _ in grouped})
    winners: dict[Pair, Entry] = {}
    for entry, group in grouped:
        ref = (entry.key[0], entry.key[1])
        product_id = products.get(ref)
        if product_id is None:
            outcomes.drop([entry], unknown_product(rt, ref))
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
