"""The exchange's pending texts of prices and stock are exactly the kinds' own, and the collector setting unwinds.

``bridge.exchange.entries`` writes an offer's pending keys and values without building the items the kinds'
``key_of``/``value_of`` read: the flush compares them as text with what the JSON pushes stage and with what
reached the shop, so any difference would write unchanged values again or keep two entries for one key. Held
here to the kinds' functions on hand-picked and generated values.
"""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.exchange import entries
from bridge.heap import YOUNG_THRESHOLD, settled_heap
from bridge.updates.kinds import KINDS

TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
AWKWARD = ["prod-1", "prod-1#var-2", 'quote " and \\ back', "таб\tи\nстрока", "\u2028\x00\x1f", "😀"]
NUMBERS = st.one_of(
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=10**9),
)


def price_item(xml_id: str, type_id: int | None, type_key: str, price: float, currency: str) -> dict[str, Any]:
    item: dict[str, Any] = {"xml_id": xml_id, "price": price, "currency": currency}
    item["price_type_id" if type_id is not None else "price_type"] = type_id if type_id is not None else type_key
    return item


def stock_item(xml_id: str, store_id: int | None, store_key: str, amount: float) -> dict[str, Any]:
    item: dict[str, Any] = {"xml_id": xml_id, "amount": amount}
    item["store_id" if store_id is not None else "store"] = store_id if store_id is not None else store_key
    return item


def check_price(xml_id: str, type_id: int | None, type_key: str, price: float, currency: str) -> None:
    kind = KINDS["prices"]
    item = price_item(xml_id, type_id, type_key, price, currency)
    got = entries.price(entries.product(xml_id), entries.named(type_id, type_key), price, currency)
    assert got == (kind.key_of(item), kind.value_of(item))


def check_stock(xml_id: str, store_id: int | None, store_key: str, amount: float) -> None:
    kind = KINDS["stock"]
    item = stock_item(xml_id, store_id, store_key, amount)
    got = entries.stock(entries.product(xml_id), entries.named(store_id, store_key), amount)
    assert got == (kind.key_of(item), kind.value_of(item))


def test_hand_picked_values_give_the_kinds_texts() -> None:
    for text in AWKWARD:
        for shop_id in (None, 1, 123456):
            for number in (0.0, 0.1, 12.5, 1490, 1e16, 123456789.123, 5e-324):
                check_price(text, shop_id, text, number, "RUB")
                check_stock(text, shop_id, text, number)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.one_of(st.none(), st.integers(min_value=1, max_value=10**12)), TEXTS, NUMBERS, TEXTS)
def test_generated_prices_give_the_kinds_texts(
    xml_id: str, type_id: int | None, type_key: str, price: float, currency: str
) -> None:
    check_price(xml_id, type_id, type_key, price, currency)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.one_of(st.none(), st.integers(min_value=1, max_value=10**12)), TEXTS, NUMBERS)
def test_generated_stock_gives_the_kinds_texts(
    xml_id: str, store_id: int | None, store_key: str, amount: float
) -> None:
    check_stock(xml_id, store_id, store_key, amount)


def test_the_settled_heap_unwinds_and_still_collects_cycles() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with settled_heap(collect=False):
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD and gc.get_freeze_count() >= frozen
        with settled_heap():  # nested: the outer one's settings stay until it ends
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD and gc.get_freeze_count() > 0

        class Node:
            other: Any = None

        first, second = Node(), Node()
        first.other, second.other = second, first
        del first, second  # a cycle only: reference counting cannot free it, the collector must
        assert gc.collect() >= 2
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
