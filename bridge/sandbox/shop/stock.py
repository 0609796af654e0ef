"""Stores and stock records: ``catalog.store.list`` and ``catalog.storeproduct.*``.

With inventory accounting on, a product's ``quantity`` is the sum of its stock over the stores, so every
change of a stock record recounts it. ``catalog.storeproduct.add``/``.update`` are missing on some shop
versions (the ``storeproduct_writes`` switch): the shop then answers "method not found".
"""

from __future__ import annotations

import copy
from typing import Any

from bridge.sandbox.shop.filters import list_answer, rows_of_products
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import integer, number
from bridge.sandbox.shop.wire import Answer, ShopError

STORE_FIELDS = (
    "id", "title", "active", "address", "description", "code", "xmlId", "sort", "issuingCenter", "shippingCenter",
    "isDefault", "dateCreate", "dateModify",
)  # fmt: skip
STORE_PRODUCT_FIELDS = ("id", "productId", "storeId", "amount", "quantityReserved")


class StockArranging(ShopState):
    """Tests add stores and set or read stock directly, as a manager editing it would."""

    def add_store(
        self, *, store_id: int | None = None, code: str | None = None, xml_id: str | None = None, title: str = "Store"
    ) -> dict[str, Any]:
        with self.lock:
            sid = self.new_id("store", store_id)
            now = self.now()
            store = {
                "id": sid,
                "title": title,
                "active": "Y",
                "address": f"Warehouse street, {sid}",
                "description": "",
                "code": code,
                "xmlId": xml_id,
                "sort": 100,
                "issuingCenter": "N",
                "shippingCenter": "Y",
                "isDefault": "Y" if not self.stores else "N",
                "dateCreate": now,
                "dateModify": now,
            }
            self.stores[sid] = store
            return copy.deepcopy(store)

    def set_amount(self, product_id: int, store_id: int, amount: float) -> dict[str, Any]:
        """Set a stock record directly (as if a manager had edited it)."""
        with self.lock:
            record = store_product(self, product_id, store_id, create=True)
            assert record is not None
            record["amount"] = amount
            recount(self, product_id)
            return copy.deepcopy(record)

    def amount(self, product_id: int, store_id: int) -> float | None:
        """The stock of a product in a store, None when there is no record."""
        with self.lock:
            record = store_product(self, product_id, store_id)
            return None if record is None else record["amount"]


def store_product(shop: ShopState, product_id: int, store_id: int, *, create: bool = False) -> Row | None:
    """The stock record of a product in a store; with ``create``, a new one at 0 when there is none."""
    for record in stock_of(shop, product_id):
        if record["storeId"] == store_id:
            return record
    if not create:
        return None
    record = {
        "id": shop.new_id("store_product"),
        "productId": product_id,
        "storeId": store_id,
        "amount": 0,
        "quantityReserved": 0,
    }
    return shop.add_own_row(shop.store_products, shop.stock_ids_of, record)


def stock_of(shop: ShopState, product_id: int) -> list[Row]:
    return shop.own_rows(shop.store_products, shop.stock_ids_of, product_id)


def recount(shop: ShopState, product_id: int) -> None:
    """With inventory accounting, a product's quantity is the sum over its stores."""
    product = shop.products.get(product_id)
    if product is not None:
        product["quantity"] = sum(r["amount"] for r in stock_of(shop, product_id))


def _writes_exist(shop: ShopState) -> bool:
    return shop.storeproduct_writes


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("catalog.store.list")
def store_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.stores.values(), params, key="stores", fields=STORE_FIELDS)


@METHODS.register("catalog.storeproduct.list")
def store_product_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    rows = rows_of_products(shop.store_products, shop.stock_ids_of, params)
    return list_answer(rows, params, key="storeProducts", fields=STORE_PRODUCT_FIELDS)


@METHODS.register("catalog.storeproduct.get")
def store_product_get(shop: ShopState, params: dict[str, Any]) -> Answer:
    record = shop.store_products.get(required_id(params))
    if record is None:
        raise ShopError(0, "Store product does not exist")
    return Answer({"storeProduct": copy.deepcopy(record)})


@METHODS.register("catalog.storeproduct.add", available=_writes_exist)
def store_product_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    require(fields, ("productId", "storeId", "amount"))
    product_id, store_id = integer(fields["productId"], "productId"), integer(fields["storeId"], "storeId")
    if product_id not in shop.products:
        raise ShopError(0, "Product does not exist")
    if store_id not in shop.stores:
        raise ShopError(0, "Store does not exist")
    if store_product(shop, product_id, store_id) is not None:
        raise ShopError(0, "Store product already exists")
    record = store_product(shop, product_id, store_id, create=True)
    assert record is not None
    record["amount"] = number(fields["amount"], "amount")
    recount(shop, product_id)
    return Answer({"storeProduct": copy.deepcopy(record)})


@METHODS.register("catalog.storeproduct.update", available=_writes_exist)
def store_product_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    record = shop.store_products.get(required_id(params))
    fields = required_fields(params)
    if record is None:
        raise ShopError(0, "Store product does not exist")
    for name, value in fields.items():
        if name not in ("amount", "quantityReserved"):
            raise ShopError(0, f"Field {name} cannot be changed")
        record[name] = number(value, name)
    recount(shop, record["productId"])
    return Answer({"storeProduct": copy.deepcopy(record)})
