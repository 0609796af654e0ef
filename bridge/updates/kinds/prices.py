"""Prices from 1C into the shop, one price record per (product, price type).

The record is found with ``catalog.price.list`` (its id is then cached) and changed with
``catalog.price.update {"id", "fields": {"price", "currency"}}``, or created with ``catalog.price.add``.
Never ``catalog.price.modify``: it replaces a product's whole price collection and deletes every price it
is not given, so updating the retail price would wipe the wholesale one.

The module is the whole kind: the body 1C sends (``PriceItem``), its pending key and value, the writer, and
``KIND`` at the end, which ties them together for the registry (``bridge.updates.kinds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge import keys
from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand
from bridge.updates.intake.fast import CURRENCY, KEY, NUMBER, PRODUCT_FIELDS, SHOP_ID
from bridge.updates.intake.models import (
    PRODUCT_CHOICE,
    STRICT,
    TS_DESCRIPTION,
    Amount,
    Currency,
    Key,
    ShopId,
    Timestamp,
    one_of,
)
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import describe_product_in, named_ref, product_ref, quote
from bridge.updates.outcomes import Outcomes, Problem
from bridge.updates.pending import Entry
from bridge.updates.records import RecordKind, number, same, write_records
from bridge.updates.resolve import mapped_or_xml_id, resolve

# --- what 1C sends: POST /1c/prices -----------------------------------------------------------------------

CHOICES = (PRODUCT_CHOICE, ("price_type", "price_type_id"))


@with_config(ConfigDict(**STRICT, json_schema_extra=one_of(CHOICES)))
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


@with_config(ConfigDict(**STRICT))
class PriceBody(TypedDict):
    """``POST /1c/prices``: prices per product and price type; the latest value per key wins."""

    items: list[PriceItem]


def key_of(item: dict[str, Any]) -> str:
    return f"[{product_ref(item)},{named_ref(item, 'price_type', 'price_type_id')}]"


def value_of(item: dict[str, Any]) -> str:
    return f"[{float(item['price'])!r},{quote(item['currency'])}]"


def describe_key(key: list[Any]) -> str:
    return describe_product_in(key, "price type")


# --- the writer -----------------------------------------------------------------------------------------


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

    def price_type_of(entry: Entry) -> int | Problem:
        how, value = entry.key[2], entry.key[3]
        type_id = mapped_or_xml_id(rt, rt.mappings.price_types, "price_types", value) if how == "key" else int(value)
        if type_id is None:
            return Problem(
                f"1C price type {value!r} is not mapped to a shop price type and no shop price type has it as "
                f'xmlId; add it under [price_types] in catalog.toml (e.g. "{value}" = <the catalogGroupId>)',
                "unmapped_price_type",
                setup=True,
            )
        return type_id

    write_records(rt, PRICES, resolve(rt, entries, outcomes, price_type_of), outcomes)


KIND = UpdateKind(
    name="prices",
    summary="prices per product and price type",
    body=PriceBody,
    item=PriceItem,
    choices=CHOICES,
    required=("price", "currency"),
    fast_fields={**PRODUCT_FIELDS, "price_type": KEY, "price_type_id": SHOP_ID, "price": NUMBER, "currency": CURRENCY},
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
