"""A fast first check of 1C bodies, so that a 50,000-item push is answered in a few tens of milliseconds.

The full validation (``bridge.updates.intake.validation``: pydantic, then a loop for the "exactly one of" rules,
with every problem listed) costs about a tenth of a second per 50,000 items, most of it in Python per item.
Real uploads are uniform, though: 1C's configurator code writes every item of a body with the same fields
(say ``xml_id``, ``store``, ``amount``). So each body is first tried against the *shapes* of its kind: one
msgspec ``Struct`` per combination of the "exactly one of" choices, with those fields required and every
other field forbidden. A body that fits a shape has exactly one product and one store per item by
construction, and msgspec checks types, ranges and lengths in C. The text patterns are checked after: a
currency, a status id, a ``ts`` (an ISO-8601 date that exists) once per *distinct* value with the same
pydantic types the full validation uses; keys (one line of text, not blank; 50,000 distinct product GUIDs
are common) with a scan of the raw body for escapes and a check for blank values (``_keys_valid``).

This check only ever says "valid" or "don't know": anything that fits no shape (mixed shapes, a ``null``
for an unused field, any error) goes to the full validation, which accepts it or lists every problem. It
must never accept a body the full validation refuses (``tests/test_inbound_fast.py`` holds it to that),
because an accepted body is validated again, fully, by the worker that stages it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from operator import attrgetter
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from pydantic import TypeAdapter, ValidationError

from bridge.updates.intake.models import CHOICES, MAX_ID, MAX_NUMBER, Currency, Key, StatusId, Timestamp
from bridge.updates.intake.validation import to_micros

_ShopId = Annotated[int, Meta(ge=1, le=MAX_ID)]
_Text = Annotated[str, Meta(min_length=1, max_length=255)]  # the pattern is checked per distinct value
_Number = Annotated[float, Meta(ge=0, le=MAX_NUMBER)]
_ts = attrgetter("ts")
_StatusText = Annotated[str, Meta(min_length=1, max_length=32)]

# Field → (msgspec type, the pydantic type its distinct values are checked with, or None for none).
_FIELDS: dict[str, tuple[Any, Any]] = {
    "product_id": (_ShopId, None),
    "xml_id": (_Text, Key),
    "sku": (_Text, Key),
    "store": (_Text, Key),
    "store_id": (_ShopId, None),
    "price_type": (_Text, Key),
    "price_type_id": (_ShopId, None),
    "amount": (_Number, None),
    "price": (_Number, None),
    "currency": (Annotated[str, Meta(min_length=3, max_length=3)], Currency),
    "order": (_ShopId | _Text, Key),  # an order id (number) or accountNumber (text, checked as a key)
    "status": (_Text, Key),
    "status_id": (_StatusText, StatusId),
}
# Text-only keys: many distinct values (product GUIDs), so checked per value by ``_keys_valid``; every other
# field with a pydantic type is checked per distinct value (an order may be a number: not a key here).
_KEYS = frozenset(name for name, (_, kind) in _FIELDS.items() if kind is Key and name != "order")
# Per kind, the fields every item carries besides its "exactly one of" choices.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "stock": ("amount",),
    "prices": ("price", "currency"),
    "order-status": ("order",),
}


class Shape:
    """One uniform layout of a kind's items: a decoder, and how to check the text fields it decodes."""

    def __init__(self, kind: str, chosen: tuple[str, ...], *, stamped: bool) -> None:
        names = (*chosen, *_REQUIRED[kind])
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [(name, _FIELDS[name][0]) for name in names]
        if stamped:
            fields.append(("ts", str | None, None))
        self.name = "+".join(chosen) + ("+ts" if stamped else "")
        item = msgspec.defstruct(f"{kind}:{self.name}", fields, forbid_unknown_fields=True, gc=False)
        body = msgspec.defstruct(
            f"{kind}:body",
            [("items", Annotated[list[item], Meta(min_length=1)])],  # type: ignore[valid-type]
            forbid_unknown_fields=True,
        )
        self.decoder = msgspec.json.Decoder(body)
        self.stamped = stamped
        self.keys = [attrgetter(name) for name in names if name in _KEYS]
        self.patterns = [
            (attrgetter(name), _adapter(_FIELDS[name][1]))
            for name in names
            if name not in _KEYS and _FIELDS[name][1] is not None
        ]

    def check(self, body: str | bytes) -> list[Any] | None:
        """The decoded items if the body fits this shape and every value is valid; None otherwise."""
        try:
            items = self.decoder.decode(body).items
        except (msgspec.MsgspecError, UnicodeDecodeError):  # msgspec reads strings with Python's UTF-8 codec
            return None
        if self.keys and not _keys_valid(body, self.keys, items):
            return None
        for field, adapter in self.patterns:
            if not _all_valid(adapter, set(map(field, items))):
                return None
        if self.stamped:
            stamps = set(map(_ts, items))
            stamps.discard(None)
            if stamps and not (_all_valid(_adapter(Timestamp), stamps) and _real_dates(stamps)):
                return None
        return items


def _keys_valid(body: str | bytes, keys: list[attrgetter[Any]], items: list[Any]) -> bool:
    """Whether every key of the items matches the key pattern (one line of text that is not blank).

    msgspec refuses raw control characters inside strings, so with no escape and no DEL anywhere in the
    body no value holds one, and only "not blank" is left. A blank value starts with a space, so when no
    string in the body starts with one, no key is blank. One scan of the raw body tells: no quote followed
    by a space (where a string starts with a space; JSON writers put no space after a closing quote) and
    none of the bytes a non-ASCII space begins with (``_SPACE_LEADS``). When the scan finds one of them,
    ``str.isspace`` per value decides (it calls every character the pattern's ``\\s`` matches a space,
    ``tests/test_inbound_fast.py``). A body with escapes has its distinct values checked against the
    pattern itself.
    """
    text = body.encode() if isinstance(body, str) else body  # a copy only for bodies that were not UTF-8
    if b"\\" in text or b"\x7f" in text:
        return all(_all_valid(_adapter(Key), set(map(key, items))) for key in keys)
    if not any(lead in text for lead in _SPACE_LEADS) and not _STARTS_WITH_SPACE.search(text):
        return True
    return not any(any(map(str.isspace, map(key, items))) for key in keys)


# The first bytes of the UTF-8 of every non-ASCII character ``str.isspace`` calls a space (U+0085, U+00A0,
# U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000); a test holds this to Python's own list.
_SPACE_LEADS = b"\xc2\xe1\xe2\xe3"
_STARTS_WITH_SPACE = re.compile(rb'" ')  # the re module scans 3 MB faster than bytes.find for this pair


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(list[kind])


def _all_valid(adapter: TypeAdapter[Any], values: Iterable[Any]) -> bool:
    texts = [v for v in values if isinstance(v, str)]  # an order given as a number was range-checked already
    try:
        adapter.validate_python(texts)
    except ValidationError:
        return False
    return True


def _real_dates(stamps: Iterable[str]) -> bool:
    try:
        for stamp in stamps:
            to_micros(stamp)
    except ValueError:
        return False
    return True


def _shapes(kind: str) -> list[Shape]:
    """Without ``ts`` first: checking the stamps costs a few milliseconds that unstamped bodies need not pay."""
    choices = list(itertools.product(*CHOICES[kind]))
    return [Shape(kind, chosen, stamped=stamped) for stamped in (False, True) for chosen in choices]


SHAPES: dict[str, list[Shape]] = {kind: _shapes(kind) for kind in CHOICES}


def items_if_valid(kind: str, body: str | bytes) -> list[Any] | None:
    """The decoded items when the body is certainly valid; None when only the full validation can tell.

    ``body`` is the text, or the UTF-8 bytes as received (msgspec refuses what is not UTF-8, as the full
    validation's decoding does), which saves decoding 3 MB before msgspec reads them. The items are only
    counted (the worker decodes the stored body again); they are returned so the caller decides when to
    free them: that takes milliseconds for 50,000 items, which the intake spends after answering.
    """
    for shape in SHAPES[kind]:
        found = shape.check(body)
        if found is not None:
            return found
    return None
