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

The kinds say which fields they have and how each is read (``FastField``, ``UpdateKind.fast_fields``); this
module holds the machinery and the field types they are made of.

This check only ever says "valid" or "don't know": anything that fits no shape (mixed shapes, a ``null``
for an unused field, any error) goes to the full validation, which accepts it or lists every problem. It
must never accept a body the full validation refuses (``tests/test_inbound_fast.py`` holds it to that),
because an accepted body is validated again, fully, by the worker that stages it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta
from pydantic import TypeAdapter, ValidationError

from bridge.updates.intake.models import MAX_ID, MAX_NUMBER, Currency, Key, StatusId, Timestamp
from bridge.updates.intake.validation import to_micros

if TYPE_CHECKING:
    from bridge.updates.kinds.base import UpdateKind


@dataclass(frozen=True)
class FastField:
    """How the fast check reads one field of an item (each kind lists its fields: ``UpdateKind.fast_fields``).

    ``decoded_as`` is the msgspec type, whose types, ranges and lengths msgspec checks in C. ``checked_as``
    is the pydantic type of the full validation that each *distinct* value is checked with afterwards (a
    currency, a status id), or None. ``key`` marks one-line text keys, which may have 50,000 distinct values
    (product GUIDs): those are checked by one scan of the raw body instead (``_keys_valid``).
    """

    decoded_as: Any
    checked_as: Any = None
    key: bool = False


_ShopId = Annotated[int, Meta(ge=1, le=MAX_ID)]
_Text = Annotated[str, Meta(min_length=1, max_length=255)]  # the pattern is checked per distinct value
_ts = attrgetter("ts")

# The field types the kinds are made of, twins of the pydantic types of ``bridge.updates.intake.models``.
SHOP_ID = FastField(_ShopId)
KEY = FastField(_Text, Key, key=True)
NUMBER = FastField(Annotated[float, Meta(ge=0, le=MAX_NUMBER)])
CURRENCY = FastField(Annotated[str, Meta(min_length=3, max_length=3)], Currency)
STATUS_ID = FastField(Annotated[str, Meta(min_length=1, max_length=32)], StatusId)
# An order id (a number) or accountNumber (text, checked as a key): per distinct value, not by the scan,
# since a number is no text to scan for.
ORDER = FastField(_ShopId | _Text, Key)
PRODUCT_FIELDS: dict[str, FastField] = {"product_id": SHOP_ID, "xml_id": KEY, "sku": KEY}


class Shape:
    """One uniform layout of a kind's items: a decoder, and how to check the text fields it decodes."""

    def __init__(
        self,
        kind: str,
        known: Mapping[str, FastField],
        chosen: tuple[str, ...],
        required: tuple[str, ...],
        *,
        stamped: bool,
    ) -> None:
        names = (*chosen, *required)
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [(name, known[name].decoded_as) for name in names]
        if stamped:
            fields.append(("ts", str | None, None))
        self.name = "+".join(chosen) + ("+ts" if stamped else "")
        item = msgspec.defstruct(f"{kind}:{self.name}", fields, forbid_unknown_fields=True, gc=False)
        body = msgspec.defstruct(
            f"{kind}:body",
            [("items", list[item])],  # type: ignore[valid-type]
            forbid_unknown_fields=True,
        )
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(body)
        self.stamped = stamped
        self.keys = [attrgetter(name) for name in names if known[name].key]
        self.patterns = [
            (attrgetter(name), _adapter(known[name].checked_as))
            for name in names
            if not known[name].key and known[name].checked_as is not None
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
def _adapter(of: Any) -> TypeAdapter[Any]:
    return TypeAdapter(list[of])


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


@functools.cache
def shapes(kind: UpdateKind) -> list[Shape]:
    """The kind's shapes, built on first use. Without ``ts`` first: checking the stamps costs a few
    milliseconds that unstamped bodies need not pay."""
    if kind.fast_fields is None:
        return []
    choices = list(itertools.product(*kind.choices))
    return [
        Shape(kind.name, kind.fast_fields, chosen, kind.required, stamped=stamped)
        for stamped in (False, True)
        for chosen in choices
    ]


def items_if_valid(kind: UpdateKind, body: str | bytes) -> list[Any] | None:
    """The decoded items when the body is certainly valid; None when only the full validation can tell.

    ``body`` is the text, or the UTF-8 bytes as received (msgspec refuses what is not UTF-8, as the full
    validation's decoding does), which saves decoding 3 MB before msgspec reads them. The items are only
    counted (the worker decodes the stored body again); they are returned so the caller decides when to
    free them: that takes milliseconds for 50,000 items, which the intake spends after answering.
    """
    for shape in shapes(kind):
        found = shape.check(body)
        if found is not None:
            return found
    return None
