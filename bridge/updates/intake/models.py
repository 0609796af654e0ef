"""The bodies of ``POST /1c/stock``, ``/1c/prices`` and ``/1c/order-status`` (docs/reference.md).

Strict on purpose. 1C developers write these bodies by hand in the configurator, so a typo (``"amout"``),
a number sent as a string, a NaN or a product named twice must come back as a 400 that points at the exact
item, not be guessed at. ``null`` counts as "not given": 1C's JSON writer turns an unset value into null.

The items are ``TypedDict``s rather than ``BaseModel``s, and the "exactly one of" rules and the date-time
check run as one plain loop afterwards (``bridge.updates.intake.validation``) instead of a validator per item:
that keeps a 50,000-item body at about a tenth of a second. The same classes generate the JSON Schema
files (``bridge.updates.intake.schema_files``), with the "exactly one of" rules added as ``oneOf``, so the files
say everything the validation enforces.
"""

from __future__ import annotations

from typing import Annotated, Any, Required

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, WithJsonSchema, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

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

# Per kind: the groups of fields of which an item must give exactly one (a null is "not given").
CHOICES: dict[str, tuple[tuple[str, ...], ...]] = {
    "stock": (PRODUCT_CHOICE, ("store", "store_id")),
    "prices": (PRODUCT_CHOICE, ("price_type", "price_type_id")),
    "order-status": (("status", "status_id"),),
}


def _one_of(kind: str) -> dict[str, Any]:
    """The "exactly one of" rules as JSON Schema, for the schema files (pydantic cannot express them)."""
    return {
        "allOf": [
            {"oneOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in group]}
            for group in CHOICES[kind]
        ]
    }


_STRICT: dict[str, Any] = {"extra": "forbid", "strict": True}


@with_config(ConfigDict(**_STRICT, json_schema_extra=_one_of("stock")))
class StockItem(TypedDict, total=False):
    """The amount of one product in one store."""

    product_id: Annotated[ShopId | None, Field(description="the shop's product id")]
    xml_id: Annotated[Key | None, Field(description="the shop product's xmlId (1C-Bitrix sets it to the 1C GUID)")]
    sku: Annotated[Key | None, Field(description="the article, found through the article property of the mappings")]
    store: Annotated[Key | None, Field(description="a 1C warehouse key, mapped to a shop store in catalog.toml")]
    store_id: Annotated[ShopId | None, Field(description="the shop's store id")]
    amount: Required[Annotated[Amount, Field(description="the amount in stock, a finite number ≥ 0")]]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**_STRICT, json_schema_extra=_one_of("prices")))
class PriceItem(TypedDict, total=False):
    """The price of one product for one price type."""

    product_id: Annotated[ShopId | None, Field(description="the shop's product id")]
    xml_id: Annotated[Key | None, Field(description="the shop product's xmlId (1C-Bitrix sets it to the 1C GUID)")]
    sku: Annotated[Key | None, Field(description="the article, found through the article property of the mappings")]
    price_type: Annotated[
        Key | None, Field(description="a 1C price-type key, mapped to a catalogGroupId in catalog.toml")
    ]
    price_type_id: Annotated[ShopId | None, Field(description="the shop's price type (catalogGroupId)")]
    price: Required[Annotated[Amount, Field(description="the price, a finite number ≥ 0")]]
    currency: Required[Annotated[Currency, Field(description="ISO 4217 code in capitals, such as RUB")]]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**_STRICT, json_schema_extra=_one_of("order-status")))
class StatusItem(TypedDict, total=False):
    """The status of one shop order."""

    order: Required[Annotated[OrderRef, Field(description="the shop order's accountNumber, or its id")]]
    status: Annotated[Key | None, Field(description="a 1C status name, mapped to a shop status in statuses.toml")]
    status_id: Annotated[StatusId | None, Field(description="the shop's status id, such as P")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**_STRICT))
class StockBody(TypedDict):
    """``POST /1c/stock``: amounts per product and store; the latest value per key wins."""

    items: Annotated[list[StockItem], Field(min_length=1)]


@with_config(ConfigDict(**_STRICT))
class PriceBody(TypedDict):
    """``POST /1c/prices``: prices per product and price type; the latest value per key wins."""

    items: Annotated[list[PriceItem], Field(min_length=1)]


@with_config(ConfigDict(**_STRICT))
class StatusBody(TypedDict):
    """``POST /1c/order-status``: order statuses set in 1C; the latest value per order wins."""

    items: Annotated[list[StatusItem], Field(min_length=1)]


# Kind of update (also the endpoint's last path segment and the Redis key part) → its body.
BODIES: dict[str, type[Any]] = {"stock": StockBody, "prices": PriceBody, "order-status": StatusBody}
ITEMS: dict[str, type[Any]] = {"stock": StockItem, "prices": PriceItem, "order-status": StatusItem}
KINDS = tuple(BODIES)
ADAPTERS: dict[str, TypeAdapter[Any]] = {kind: TypeAdapter(body) for kind, body in BODIES.items()}
