"""The fast check of 1C bodies never accepts what the full validation refuses, and does take uniform bodies.

``bridge.updates.intake.fast`` may answer "valid" (with the item count) or "don't know"; an accepted body is
stored and validated again by the worker, so a body the fast check lets through and the full validation
refuses would be an update accepted with a 202 and then lost. These tests hold the fast check to the full
one on hand-picked edge values of every field and on generated bodies.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.updates.intake.fast import _SPACE_LEADS, items_if_valid, shapes
from bridge.updates.intake.validation import InvalidPayload, validate
from bridge.updates.kinds import KINDS

CHOICES = {name: kind.choices for name, kind in KINDS.items() if kind.fast_fields is not None}  # the fast-checked kinds

VALID = {
    "product_id": 17,
    "xml_id": "9f0c1e2a-5b6d-11ee-8c99-0242ac120002",
    "sku": "ART-100",
    "store": "Основной склад",
    "store_id": 2,
    "price_type": "Розничная",
    "price_type_id": 1,
    "amount": 12.5,
    "price": 1490,
    "currency": "RUB",
    "order": "A-300",
    "status": "Отгружен",
    "status_id": "F",
    "ts": "2024-05-01T10:00:00+03:00",
}
REQUIRED = {"stock": ("amount",), "prices": ("price", "currency"), "order-status": ("order",)}

EDGES: dict[str, list[Any]] = {
    "text": [
        "",
        " ",
        "\u00a0",
        "\u3000\u2003",
        "a\n",
        "\na",
        "a\tb",
        "a\x7f",
        "a\x00",
        "a\u2028b",
        "a\u0085",
        "x" * 255,
        "x" * 256,
        "Склад №1",
        None,
        5,
        True,
        [],
    ],
    "id": [0, 1, -1, 2**53 - 1, 2**53, 1.0, 1.5, "5", True, None, 10**30],
    "number": [0, -0.0, -1, 1e15, 1e15 + 1, 10**16, 0.1, "5", True, None, [], 10**400],
    "ts": [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z\n",
        "2024-05-01 10:00",
        "2024-05-01T10:00:00+0300",
        "2024-05-01T10:00:00+03",
        "2024-02-30T10:00:00Z",
        "2024-05-01T25:00:00Z",
        "2024-05-01",
        "2024-05-01T10:00:00.1234567891Z",
        "1 May 2024",
        "",
        None,
        17,
    ],
    "currency": ["RUB", "rub", "RUBX", "RU", "РУБ", "", None, 643],
    "status_id": ["F", "N-1_x", "Ж", "a" * 32, "a" * 33, "", " F", None, 1],
    "order": ["A-300", 300, 0, -5, 2**53, 1.5, "", " ", "A\n", None, True],
}
FIELD_EDGES = {
    "product_id": "id",
    "store_id": "id",
    "price_type_id": "id",
    "xml_id": "text",
    "sku": "text",
    "store": "text",
    "price_type": "text",
    "status": "text",
    "amount": "number",
    "price": "number",
    "currency": "currency",
    "status_id": "status_id",
    "order": "order",
    "ts": "ts",
}


def count_if_valid(kind: str, body: str | bytes) -> int | None:
    items = items_if_valid(KINDS[kind], body)
    return None if items is None else len(items)


def full_count(kind: str, text: str) -> int | None:
    try:
        return len(validate(KINDS[kind], text).items)
    except InvalidPayload:
        return None


def agrees(kind: str, text: str) -> int | None:
    """Assert the fast check only says "valid" when the full one does, with the same count; the fast answer.

    Checked on the text and on its UTF-8 bytes, the two ways the intake calls it.
    """
    fast = count_if_valid(kind, text)
    assert count_if_valid(kind, text.encode()) == fast, f"text and bytes disagree: {text[:300]}"
    if fast is not None:
        assert full_count(kind, text) == fast, f"the fast check accepted what the full one refuses: {text[:300]}"
    return fast


def uniform_item(kind: str, chosen: tuple[str, ...], **changes: Any) -> dict[str, Any]:
    item = {name: VALID[name] for name in (*chosen, *REQUIRED[kind], "ts")}
    item.update(changes)
    return item


SHAPE_CASES = [(kind, chosen) for kind in CHOICES for chosen in itertools.product(*CHOICES[kind])]


@pytest.mark.parametrize(("kind", "chosen"), SHAPE_CASES, ids=[f"{k}:{'+'.join(c)}" for k, c in SHAPE_CASES])
def test_a_uniform_valid_body_of_every_shape_takes_the_fast_path(kind: str, chosen: tuple[str, ...]) -> None:
    items = [uniform_item(kind, chosen), uniform_item(kind, chosen, ts=None)]
    items.append({k: v for k, v in uniform_item(kind, chosen).items() if k != "ts"})
    assert agrees(kind, json.dumps({"items": items}, ensure_ascii=False)) == 3


@pytest.mark.parametrize(("kind", "chosen"), SHAPE_CASES, ids=[f"{k}:{'+'.join(c)}" for k, c in SHAPE_CASES])
def test_no_edge_value_of_any_field_gets_past_the_fast_check_unless_it_is_valid(
    kind: str, chosen: tuple[str, ...]
) -> None:
    fields = (*chosen, *REQUIRED[kind], "ts")
    for name in fields:
        for value in EDGES[FIELD_EDGES[name]]:
            # The odd value last, after a good item, so a check that stops early would miss it.
            items = [uniform_item(kind, chosen), uniform_item(kind, chosen, **{name: value})]
            text = json.dumps({"items": items}, ensure_ascii=False, allow_nan=True)
            agrees(kind, text)


def test_bodies_the_fast_check_leaves_to_the_full_validation() -> None:
    mixed = [{"xml_id": "a", "store": "S", "amount": 1}, {"product_id": 5, "store": "S", "amount": 1}]
    with_null = [{"xml_id": "a", "sku": None, "store": "S", "amount": 1}]
    for items in (mixed, with_null):
        text = json.dumps({"items": items})
        assert count_if_valid("stock", text) is None
        assert full_count("stock", text) == len(items)  # valid all the same: taken by the slow path


def test_a_blank_key_is_caught_in_ascii_bodies_unicode_bodies_and_bodies_with_escapes() -> None:
    for blank in [" ", "   ", "\u00a0", "\u3000 "]:
        for other in ["Main", "Склад", "a\\b"]:  # ASCII, not ASCII, with an escape elsewhere in the body
            items = [{"xml_id": "g1", "store": other, "amount": 1}, {"xml_id": blank, "store": "S", "amount": 1}]
            for text in (json.dumps({"items": items}), json.dumps({"items": items}, ensure_ascii=False)):
                assert agrees("stock", text) is None, text


def test_keys_that_start_with_a_space_or_hold_a_non_ascii_one_are_valid_and_still_fast() -> None:
    # What the one-scan check of blank keys cannot rule out goes to the per-value check, not to the slow path.
    for key in [" leading", "a\u00a0b", "\u00abКлюч\u00bb", "\u2116 5", "x\u3000"]:
        items = [{"xml_id": key, "store": "Main", "amount": 1}, {"xml_id": "g2", "store": key, "amount": 2}]
        assert agrees("stock", json.dumps({"items": items}, ensure_ascii=False)) == 2, key
    spaced_quote = '{"items": [{"xml_id" : "a", "store" : "Main", "amount" : 1}]}'  # a space after closing quotes
    assert agrees("stock", spaced_quote) == 1


def test_every_non_ascii_space_starts_with_a_byte_the_blank_key_scan_looks_for() -> None:
    spaces = [chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c).isspace()]
    assert "\u00a0" in spaces and "\u3000" in spaces  # the list is Python's own
    assert sorted({c.encode()[0] for c in spaces} - set(_SPACE_LEADS)) == []


def test_bytes_that_are_not_utf8_are_never_taken_by_the_fast_check() -> None:
    for raw in [b"\xff", b"\xed\xa0\x80", b"\xc3", "Склад".encode("cp1251")]:
        body = b'{"items": [{"xml_id": "' + raw + b'", "store": "S", "amount": 1}]}'
        assert count_if_valid("stock", body) is None


@pytest.mark.parametrize("kind", list(CHOICES))
@pytest.mark.parametrize("text", ['{"items": []}', '{"items":[]}', '{ "items" : [ ] }'])
def test_an_empty_list_is_valid_for_both_checks(kind: str, text: str) -> None:
    assert count_if_valid(kind, text) == 0
    assert count_if_valid(kind, text.encode()) == 0
    assert full_count(kind, text) == 0


@pytest.mark.parametrize(
    "text",
    [
        '{"items": [{"xml_id": "a", "store": "S", "amount": 1}], "extra": 1}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": 1, "amount": "x"}]}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": 1}]} trailing',
        '{"items": [{"xml_id": "a\\u0000", "store": "S", "amount": 1}]}',
        '{"items": [{"xml_id": "a\\ud800", "store": "S", "amount": 1}]}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": NaN}]}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": Infinity}]}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": 1e999}]}',
        '{"items": [{"xml_id": "a", "store_id": 1e2, "amount": 1}]}',
        '{"items": [{"xml_id": "a", "store": "S", "amount": 1}',
        '[{"xml_id": "a", "store": "S", "amount": 1}]',
        '{"items": {"xml_id": "a", "store": "S", "amount": 1}}',
    ],
)
def test_malformed_bodies_are_never_taken_by_the_fast_check(text: str) -> None:
    assert count_if_valid("stock", text) is None
    assert count_if_valid("stock", text.encode()) is None
    assert full_count("stock", text) is None


def _values(edge: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(EDGES[edge]), st.text(max_size=8), st.integers(), st.floats())


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(list(CHOICES)))
    chosen = draw(st.sampled_from(list(itertools.product(*CHOICES[kind]))))
    items = []
    for _ in range(draw(st.integers(1, 4))):
        item = uniform_item(kind, chosen)
        for name in draw(st.lists(st.sampled_from([*VALID, "unknown"]), max_size=3)):
            if draw(st.booleans()):
                item.pop(name, None)
            else:
                item[name] = draw(_values(FIELD_EDGES.get(name, "text")))
        items.append(item)
    return kind, json.dumps({"items": items}, ensure_ascii=False, allow_nan=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_generated_bodies_the_fast_check_accepts_are_accepted_by_the_full_validation(body: tuple[str, str]) -> None:
    agrees(*body)


def test_every_kind_has_a_shape_per_choice() -> None:
    expected = {
        "stock": 12,
        "prices": 12,
        "order-status": 4,
        "sections": 0,
        "products": 0,
        "order-payment": 0,
        "order-shipment": 0,
        "order-cancel": 0,
    }  # no fast check: 0
    assert {name: len(shapes(kind)) for name, kind in KINDS.items()} == expected


def test_every_character_the_key_pattern_counts_as_blank_is_a_space_to_python() -> None:
    # For bodies without escapes the fast check finds blank keys with str.isspace, while the full validation
    # uses the pattern's \s (pydantic's regex engine): every character the pattern refuses alone must be a
    # control character (which such bodies cannot hold) or a space to str.isspace.
    from pydantic import TypeAdapter, ValidationError

    from bridge.updates.intake.models import Key

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    try:
        TypeAdapter(list[Key]).validate_python(chars)
        refused: list[str] = []
    except ValidationError as exc:
        refused = [chars[error["loc"][0]] for error in exc.errors()]
    controls = {chr(c) for c in [*range(0x20), 0x7F]}
    assert "\u00a0" in refused and " " in refused  # the check below looks at real refusals
    assert [c for c in refused if c not in controls and not c.isspace()] == []
