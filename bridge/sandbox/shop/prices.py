"""Price types and prices: ``catalog.pricetype.list`` and ``catalog.price.*``.

``catalog.price.modify`` replaces a product's whole price collection: a price it is not given by id is
deleted. That is the trap a bridge must not fall into when it means to change one price.
"""

from __future__ import annotations

import copy
from typing import Any

from bridge.sandbox.shop.filters import list_answer, rows_of_products
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import as_list, integer, number
from bridge.sandbox.shop.wire import Answer, ShopError

PRICE_FIELDS = (
    "id", "productId", "catalogGroupId", "price", "currency", "extraId", "priceScale", "quantityFrom",
    "quantityTo", "timestampX",
)  # fmt: skip
PRICE_TYPE_FIELDS = ("id", "name", "base", "sort", "xmlId", "dateCreate", "timestampX")


class PriceArranging(ShopState):
    """Tests add price types and set or read prices directly."""

    def add_price_type(
        self, *, price_type_id: int | None = None, name: str = "BASE", xml_id: str | None = None
    ) -> dict[str, Any]:
        """A price type; the first one is the base price."""
        with self.lock:
            tid = self.new_id("price_type", price_type_id)
            now = self.now()
            price_type = {
                "id": tid,
                "name": name,
                "base": "Y" if not self.price_types else "N",
                "sort": 100 * (len(self.price_types) + 1),
                "xmlId": xml_id,
                "dateCreate": now,
                "timestampX": now,
            }
            self.price_types[tid] = price_type
            return copy.deepcopy(price_type)

    def set_price(self, product_id: int, price_type_id: int, price: float, currency: str = "RUB") -> dict[str, Any]:
        """Create or change a price record directly."""
        with self.lock:
            for record in prices_of(self, product_id):
                if record["catalogGroupId"] == price_type_id:
                    record.update(price=price, currency=currency, timestampX=self.now())
                    return copy.deepcopy(record)
            return copy.deepcopy(new_price(self, product_id, price_type_id, price, currency))

    def price_of(self, product_id: int, price_type_id: int) -> dict[str, Any] | None:
        with self.lock:
            for record in prices_of(self, product_id):
                if record["catalogGroupId"] == price_type_id:
                    return copy.deepcopy(record)
            return None


def new_price(shop: ShopState, product_id: int, price_type_id: int, price: float, currency: str) -> Row:
    record: Row = {
        "id": shop.new_id("price"),
        "productId": product_id,
        "catalogGroupId": price_type_id,
        "price": price,
        "currency": currency,
        "extraId": None,
        "priceScale": price,
        "quantityFrom": None,
        "quantityTo": None,
        "timestampX": shop.now(),
    }
    return shop.add_own_row(shop.prices, shop.price_ids_of, record)


def prices_of(shop: ShopState, product_id: int) -> list[Row]:
    return shop.own_rows(shop.prices, shop.price_ids_of, product_id)


def _check_target(shop: ShopState, product_id: int, price_type_id: int) -> None:
    if product_id not in shop.products:
        raise ShopError(0, "Product does not exist")
    if price_type_id not in shop.price_types:
        raise ShopError(0, "Price type does not exist")


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("catalog.pricetype.list")
def price_type_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.price_types.values(), params, key="priceTypes", fields=PRICE_TYPE_FIELDS)


@METHODS.register("catalog.price.list")
def price_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    rows = rows_of_products(shop.prices, shop.price_ids_of, params)
    return list_answer(rows, params, key="prices", fields=PRICE_FIELDS)


@METHODS.register("catalog.price.add")
def price_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    require(fields, ("productId", "catalogGroupId", "price", "currency"))
    product_id, type_id = integer(fields["productId"], "productId"), integer(fields["catalogGroupId"], "catalogGroupId")
    _check_target(shop, product_id, type_id)
    if any(p["catalogGroupId"] == type_id for p in prices_of(shop, product_id)):
        raise ShopError(0, "A price of this type already exists for the product")
    record = new_price(shop, product_id, type_id, number(fields["price"], "price"), str(fields["currency"]))
    return Answer({"price": copy.deepcopy(record)})


@METHODS.register("catalog.price.update")
def price_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    price_id = required_id(params)
    fields = required_fields(params)
    if fields.get("price") in (None, "") or fields.get("currency") in (None, ""):
        raise ShopError(0, "Required fields: price, currency")
    record = shop.prices.get(price_id)
    if record is None:
        raise ShopError(0, "Price does not exist")
    record["price"] = record["priceScale"] = number(fields["price"], "price")
    record["currency"] = str(fields["currency"])
    record["timestampX"] = shop.now()
    return Answer({"price": copy.deepcopy(record)})


@METHODS.register("catalog.price.modify")
def price_modify(shop: ShopState, params: dict[str, Any]) -> Answer:
    """Replace a product's whole price collection: prices not named by id are deleted (the trap)."""
    fields = required_fields(params)
    product = fields.get("product")
    if not isinstance(product, dict) or product.get("id") in (None, ""):
        raise ShopError(0, "Required fields: product.id")
    product_id = integer(product["id"], "product.id")
    entries = as_list(product.get("prices"))
    if not all(isinstance(entry, dict) for entry in entries):
        raise ShopError(0, "Each price must be an object")
    type_ids = [integer(e.get("catalogGroupId"), "catalogGroupId") for e in entries]
    if len(type_ids) != len(set(type_ids)):
        raise ShopError(0, "Duplicate price types in the price collection")
    kept: set[int] = set()
    for entry, type_id in zip(entries, type_ids, strict=True):
        _check_target(shop, product_id, type_id)
        price, currency = number(entry.get("price"), "price"), str(entry.get("currency") or "")
        if entry.get("id") not in (None, ""):
            record = shop.prices.get(integer(entry["id"], "id"))
            if record is None or record["productId"] != product_id:
                raise ShopError(0, "Price does not exist")
            record.update(catalogGroupId=type_id, price=price, priceScale=price, currency=currency)
            record["timestampX"] = shop.now()
        else:
            record = new_price(shop, product_id, type_id, price, currency)
        kept.add(record["id"])
    for price_id in [p["id"] for p in prices_of(shop, product_id) if p["id"] not in kept]:
        del shop.prices[price_id]
        shop.price_ids_of[product_id].discard(price_id)
    return Answer({"prices": [copy.deepcopy(p) for p in prices_of(shop, product_id)]})
