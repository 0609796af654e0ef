"""Catalog products and their iblock properties: ``catalog.product.list``, ``.update`` and
``catalog.productproperty.list``.

A product's iblock properties sit on it as ``propertyN`` (N the property id), each ``{"value", "valueId"}``;
the article the bridge can match products by is one of them (code ``CML2_ARTICLE`` by default).
"""

from __future__ import annotations

import copy
from typing import Any

from bridge.sandbox.shop.filters import PROPERTY_KEY, list_answer
from bridge.sandbox.shop.methods import MethodTable, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import as_list, integer, like_existing, number
from bridge.sandbox.shop.wire import Answer, ShopError

ARTICLE_CODE = "CML2_ARTICLE"
PRODUCT_FIELDS = (
    "id", "iblockId", "name", "code", "xmlId", "active", "available", "type", "quantity", "quantityReserved",
    "purchasingPrice", "purchasingCurrency", "sort", "dateCreate", "timestampX", "previewText", "detailText",
    "detailTextType", "measure", "vatId", "vatIncluded", "iblockSectionId", "parentId",
)  # fmt: skip
PRODUCT_UPDATABLE = frozenset(PRODUCT_FIELDS) - {"id", "iblockId", "available", "type", "dateCreate", "timestampX"}
PRODUCT_DEFAULTS: dict[str, Any] = {
    "previewText": None, "detailText": None, "detailTextType": "text", "measure": 5, "vatId": None,
    "vatIncluded": "N", "iblockSectionId": None,
}  # fmt: skip
PROPERTY_FIELDS = ("id", "iblockId", "name", "code", "active", "propertyType", "multiple", "sort", "xmlId")


class CatalogArranging(ShopState):
    """Tests add products; the catalog iblock (1) comes with a brand, an article and a pictures property."""

    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        add_property(self, 1, "Бренд", "BRAND", property_id=257)
        add_property(self, 1, "Артикул", ARTICLE_CODE, property_id=258)
        add_property(self, 1, "Картинки", "MORE_PHOTO", property_id=259, multiple="Y", kind="F")

    def article_property_id(self, iblock_id: int = 1) -> int:
        """The id N of ``propertyN`` holding the article (``CML2_ARTICLE``) in that iblock."""
        with self.lock:
            return article_property_id(self, iblock_id)

    def add_product(
        self,
        *,
        product_id: int | None = None,
        xml_id: str | None = None,
        article: str | None = None,
        iblock_id: int = 1,
        name: str = "Product",
    ) -> dict[str, Any]:
        """A catalog product; ``xmlId`` defaults to the id as text (as 1C-Bitrix does for manual products)."""
        with self.lock:
            pid = self.new_id("product", product_id)
            now = self.now()
            product: dict[str, Any] = {
                "id": pid,
                "iblockId": iblock_id,
                "name": name,
                "code": f"product-{pid}",
                "xmlId": xml_id if xml_id is not None else str(pid),
                "active": "Y",
                "available": "Y",
                "type": 1,
                "quantity": 0,
                "quantityReserved": 0,
                "purchasingPrice": None,
                "purchasingCurrency": None,
                "sort": 500,
                "dateCreate": now,
                "timestampX": now,
                **PRODUCT_DEFAULTS,
            }
            if article is not None:
                product[f"property{article_property_id(self, iblock_id)}"] = {
                    "value": article,
                    "valueId": str(self.new_id("value")),
                }
            self.products[pid] = product
            return copy.deepcopy(product)


def add_property(
    shop: ShopState,
    iblock_id: int,
    name: str,
    code: str,
    *,
    property_id: int | None = None,
    multiple: str = "N",
    kind: str = "S",
) -> Row:
    prop: Row = {
        "id": shop.new_id("property", property_id),
        "iblockId": iblock_id,
        "name": name,
        "code": code,
        "active": "Y",
        "propertyType": kind,
        "multiple": multiple,
        "sort": 500,
        "xmlId": None,
    }
    shop.product_properties[prop["id"]] = prop
    return prop


def article_property_id(shop: ShopState, iblock_id: int) -> int:
    """The article property of the iblock, created on first use in an iblock that has none yet."""
    for prop in shop.product_properties.values():
        if prop["iblockId"] == iblock_id and prop["code"] == ARTICLE_CODE:
            return int(prop["id"])
    return int(add_property(shop, iblock_id, "Артикул", ARTICLE_CODE)["id"])


def article_of(shop: ShopState, product: Row) -> str | None:
    """A product's article, None for no product or no article."""
    if not product:
        return None
    value = product.get(f"property{article_property_id(shop, product['iblockId'])}")
    return value["value"] if isinstance(value, dict) else None


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("catalog.product.list")
def product_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    """The shop insists on an ``iblockId`` filter and on ``id`` and ``iblockId`` in the select."""
    raw_filter = params.get("filter")
    select = [str(name) for name in as_list(params.get("select"))]
    if not isinstance(raw_filter, dict) or raw_filter.get("iblockId") in (None, ""):
        raise ShopError(0, "Required filter fields: iblockId")
    if "id" not in select or "iblockId" not in select:
        raise ShopError(0, "Required select fields: id, iblockId")
    return list_answer(shop.products.values(), params, key="products", fields=PRODUCT_FIELDS, dynamic=True)


@METHODS.register("catalog.product.update")
def product_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    product = shop.products.get(required_id(params))
    fields = required_fields(params)
    if product is None:
        raise ShopError(0, "Product with the specified identifier does not exist")
    check_references(shop, fields)
    for name, value in fields.items():
        if PROPERTY_KEY.match(name):
            product[name] = value if isinstance(value, dict) else {"value": value, "valueId": None}
        elif name in PRODUCT_UPDATABLE:
            existing = product.get(name)
            numeric = name in ("quantity", "quantityReserved", "purchasingPrice", "measure", "vatId", "iblockSectionId")
            empty = value in (None, "")
            product[name] = None if empty else number(value, name) if numeric else like_existing(existing, value, name)
        else:
            raise ShopError(0, f"Field {name} cannot be changed")
    product["timestampX"] = shop.now()
    return Answer({"element": copy.deepcopy(product)})


@METHODS.register("catalog.productproperty.list")
def product_property_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.product_properties.values(), params, key="productProperties", fields=PROPERTY_FIELDS)


def check_references(shop: ShopState, fields: dict[str, Any]) -> None:
    """The shop refuses a section, VAT rate or unit that does not exist (error 0, in its words)."""
    section = fields.get("iblockSectionId")
    sections: dict[int, Row] = getattr(shop, "sections", {})
    if section not in (None, "", 0) and integer(section, "iblockSectionId") not in sections:
        raise ShopError(0, "Section with the specified identifier does not exist")
    vat = fields.get("vatId")
    vats: dict[int, Row] = getattr(shop, "vats", {})
    if vat not in (None, "") and integer(vat, "vatId") not in vats:
        raise ShopError(0, "VAT rate with the specified identifier does not exist")
    measure = fields.get("measure")
    measures: dict[int, Row] = getattr(shop, "measures", {})
    if measure not in (None, "") and integer(measure, "measure") not in measures:
        raise ShopError(0, "Unit of measurement with the specified identifier does not exist")
