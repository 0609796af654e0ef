"""The field types every 1C body is made of, shared by the kinds (``bridge.updates.kinds``; docs/reference.md).

Each kind's module defines its own item and body models from these (``bridge.updates.kinds.stock`` has
``StockItem`` and ``StockBody``), strict on purpose. 1C developers write these bodies by hand in the
configurator, so a typo (``"amout"``), a number sent as a string, a NaN or a product named twice must come
back as a 400 that points at the exact item, not be guessed at. ``null`` counts as "not given": 1C's JSON
writer turns an unset value into null.

The items are ``TypedDict``s rather than ``BaseModel``s, and the "exactly one of" rules and the date-time
check run as one plain loop afterwards (``bridge.updates.intake.validation``) instead of a validator per item:
that keeps a 50,000-item body at about a tenth of a second. The same classes generate the JSON Schema
files (``bridge.updates.intake.schema_files``), with the "exactly one of" rules added as ``oneOf``
(``one_of``), so the files say everything the validation enforces.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_NUMBER = 1e15  # more than any stock or price; a bigger number is a mistake, not data
MAX_ID = 2**53 - 1  # the largest integer every JSON reader (1C's too) keeps exact

# A key or name: one line of printable text that is not just spaces.
_KEY_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# The shape of an ISO-8601 date-time; whether the date exists is checked when it is read.
ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"

Key = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_KEY_PATTERN)]
ShopId = Annotated[int, Field(ge=1, le=MAX_ID)]
Amount = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
StatusId = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Timestamp = Annotated[
    str,
    StringConstraints(pattern=ISO_PATTERN),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": ISO_PATTERN}),
]


def _order_ref(value: Any) -> Any:
    """An order is named by its accountNumber (text) or its id (a number); both are kept as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_ID:
            raise PydanticCustomError("order_ref", "an order id must be a positive whole number")
        return str(value)
    if not isinstance(value, str):
        raise PydanticCustomError("order_ref", "must be the order's accountNumber (text) or id (a number)")
    return value


OrderRef = Annotated[
    Key,
    BeforeValidator(_order_ref),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _KEY_PATTERN},
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            ]
        }
    ),
]

TS_DESCRIPTION = (
    "when 1C produced this value (ISO-8601 date-time); an item older than the one pending or last applied "
    "for the same key is dropped. Without an offset, UTC is assumed."
)
PRODUCT_CHOICE = ("product_id", "xml_id", "sku")


def one_of(choices: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """The "exactly one of" rules as JSON Schema, for the schema files (pydantic cannot express them)."""
    return {
        "allOf": [
            {"oneOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in group]}
            for group in choices
        ]
    }


# Every item and body model: unknown fields and coerced types are errors (see above).
STRICT = ConfigDict(extra="forbid", strict=True)
