"""Products created and read, their variants, and the reference tables they point at:
``catalog.catalog.list``, ``catalog.product.add``/``.get``, ``catalog.product.offer.list/add/update``,
``catalog.measure.list``, ``catalog.vat.list``, ``catalog.productPropertyEnum.list/add``.

The shop keeps simple products in the product catalog's iblock and variants ("offers", type 4) in its SKU
iblock, each offer linked to its parent by ``parentId`` (stored as a property value:
``{"value": "<parent id>", "valueId": "<n>"}``). ``add``/``update`` answer ``element`` (``offer`` for the
offer methods), ``get`` answers ``product``: the shop's own inconsistency, kept.
"""

from __future__ import annotations

import copy
from typing import Any

from bridge.sandbox.shop.catalog import PRODUCT_DEFAULTS, PRODUCT_FIELDS, add_property, check_references, product_update
from bridge.sandbox.shop.filters import PROPERTY_KEY, list_answer
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import as_list, integer
from bridge.sandbox.shop.wire import Answer, ShopError

CATALOG_FIELDS = (
    "id",
    "iblockId",
    "iblockTypeId",
    "lid",
    "name",
    "productIblockId",
    "skuPropertyId",
    "subscription",
    "vatId",
)
MEASURE_FIELDS = ("id", "code", "measureTitle", "symbol", "symbolIntl", "symbolLetterIntl", "isDefault")
VAT_FIELDS = ("id", "name", "active", "rate", "sort", "timestampX")
ENUM_FIELDS = ("id", "propertyId", "value", "xmlId", "def", "sort")
BARCODE_CODE = "CML2_BAR_CODE"


class NomenclatureArranging(ShopState):
    """The product catalog is iblock 1 with its SKU catalog iblock 2, as a fresh shop with trade offers has."""

    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self.catalogs: dict[int, Row] = {}
        self.measures: dict[int, Row] = {}
        self.vats: dict[int, Row] = {}
        self.property_enums: dict[int, Row] = {}
        self.set_catalog(1, 2)
        for mid, code, title, symbol in ((1, 6, "Метр", "м"), (3, 166, "Килограмм", "кг"), (5, 796, "Штука", "шт")):
            self.measures[mid] = {
                "id": mid, "code": code, "measureTitle": title, "symbol": symbol, "symbolIntl": symbol,
                "symbolLetterIntl": symbol.upper(), "isDefault": "Y" if code == 796 else "N",
            }  # fmt: skip
        for vid, name, rate in ((1, "Без НДС", None), (2, "НДС 10%", 10), (3, "НДС 20%", 20)):
            self.vats[vid] = {"id": vid, "name": name, "active": "Y", "rate": rate, "sort": vid * 100, "timestampX": ""}

    def set_catalog(self, product_iblock: int, offers_iblock: int | None = None) -> None:
        """Make ``product_iblock`` the shop's product catalog (and ``offers_iblock`` its SKU catalog)."""
        with self.lock:
            self.catalogs.clear()
            self.catalogs[product_iblock] = _catalog(product_iblock, "Catalog", None, None)
            if not _has(self, product_iblock, BARCODE_CODE):
                add_property(self, product_iblock, "Штрихкод", BARCODE_CODE, property_id=self.new_id("property"))
            if offers_iblock is not None:
                for name, code in (("Артикул", "CML2_ARTICLE"), ("Штрихкод", BARCODE_CODE)):  # as the shop's import
                    if not _has(self, offers_iblock, code):
                        add_property(self, offers_iblock, name, code, property_id=self.new_id("property"))
                link = add_property(self, offers_iblock, "Элемент каталога", "CML2_LINK", kind="E")
                self.catalogs[offers_iblock] = _catalog(offers_iblock, "Catalog (offers)", product_iblock, link["id"])
            for prop in self.product_properties.values():  # the shop's own import sets xmlId = code
                if prop["code"] in ("CML2_ARTICLE", BARCODE_CODE, "CML2_LINK") and prop["xmlId"] is None:
                    prop["xmlId"] = prop["code"]

    def add_list_property(self, iblock_id: int, name: str, xml_id: str) -> Row:
        with self.lock:
            prop = add_property(self, iblock_id, name, xml_id.upper().replace("-", "_"), kind="L")
            prop["xmlId"] = xml_id
            return copy.deepcopy(prop)

    def add_string_property(self, iblock_id: int, name: str, xml_id: str) -> Row:
        with self.lock:
            prop = add_property(self, iblock_id, name, f"P_{len(self.product_properties)}")
            prop["xmlId"] = xml_id
            return copy.deepcopy(prop)

    def product_by_xml(self, xml_id: str) -> Row | None:
        """The product or offer with that ``xmlId``, None when the shop has none."""
        with self.lock:
            found = [p for p in self.products.values() if p.get("xmlId") == xml_id]
            return copy.deepcopy(found[0]) if found else None


def _catalog(iblock_id: int, name: str, product_iblock: int | None, sku_property: int | None) -> Row:
    return {
        "id": iblock_id, "iblockId": iblock_id, "iblockTypeId": "CRM_PRODUCT_CATALOG", "lid": "s1", "name": name,
        "productIblockId": product_iblock, "skuPropertyId": sku_property, "subscription": "N", "vatId": 1,
    }  # fmt: skip


def _has(shop: ShopState, iblock_id: int, code: str) -> bool:
    return any(p["iblockId"] == iblock_id and p["code"] == code for p in shop.product_properties.values())


def catalogs(shop: ShopState) -> dict[int, Row]:
    found: dict[int, Row] = getattr(shop, "catalogs", {})
    return found


def _new_element(shop: ShopState, fields: dict[str, Any], *, offer: bool) -> Row:
    require(fields, ("iblockId", "name"))
    iblock_id = integer(fields["iblockId"], "iblockId")
    catalog = catalogs(shop).get(iblock_id)
    if catalog is None or (catalog["productIblockId"] is not None) != offer:
        raise ShopError(200040300000, "Information block does not exist")
    check_references(shop, fields)
    pid = shop.new_id("product")
    now = shop.now()
    row: Row = {
        "id": pid, "iblockId": iblock_id, "name": str(fields["name"]), "code": fields.get("code"),
        "xmlId": str(fields["xmlId"]) if fields.get("xmlId") not in (None, "") else str(pid),
        "active": fields.get("active") or "Y", "available": "Y", "type": 4 if offer else 1, "quantity": 0,
        "quantityReserved": 0, "purchasingPrice": None, "purchasingCurrency": None, "sort": 500,
        "dateCreate": now, "timestampX": now, **PRODUCT_DEFAULTS,
    }  # fmt: skip
    if offer:
        parent = fields.get("parentId")
        if parent in (None, "") or integer(parent, "parentId") not in shop.products:
            raise ShopError(0, "Parent product not found")
        row["parentId"] = {"value": str(integer(parent, "parentId")), "valueId": str(shop.new_id("value"))}
    for name, value in fields.items():
        if name in ("iblockId", "name", "xmlId", "parentId", "active", "code"):
            continue
        if PROPERTY_KEY.match(name):
            row[name] = _property_value(shop, value)
        elif name in ("measure", "vatId", "iblockSectionId"):  # form and batch values arrive as text
            row[name] = None if value in (None, "") else integer(value, name)
        elif name in PRODUCT_DEFAULTS:
            row[name] = value
        else:
            raise ShopError(0, f"Unknown field {name}")
    shop.products[pid] = row
    return row


def _property_value(shop: ShopState, value: Any) -> Any:
    if isinstance(value, list):
        return [_property_value(shop, v) for v in value]
    if isinstance(value, dict):
        return {"value": value.get("value"), "valueId": str(shop.new_id("value"))}
    return {"value": value, "valueId": str(shop.new_id("value"))}


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("catalog.catalog.list")
def catalog_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(catalogs(shop).values(), params, key="catalogs", fields=CATALOG_FIELDS)


@METHODS.register("catalog.product.add")
def product_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    return Answer({"element": copy.deepcopy(_new_element(shop, required_fields(params), offer=False))})


@METHODS.register("catalog.product.get")
def product_get(shop: ShopState, params: dict[str, Any]) -> Answer:
    product = shop.products.get(required_id(params))
    if product is None:
        raise ShopError(0, "The product does not exist")
    return Answer({"product": copy.deepcopy(product)})


def _offer_iblock(shop: ShopState, params: dict[str, Any]) -> None:
    raw_filter = params.get("filter")
    select = [str(name) for name in as_list(params.get("select"))]
    if not isinstance(raw_filter, dict) or raw_filter.get("iblockId") in (None, ""):
        raise ShopError(0, "Required filter fields: iblockId")
    if "id" not in select or "iblockId" not in select:
        raise ShopError(0, "Required select fields: id, iblockId")


@METHODS.register("catalog.product.offer.list")
def offer_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    _offer_iblock(shop, params)
    offers = (p for p in shop.products.values() if p.get("type") == 4)
    answer = list_answer(offers, params, key="offers", fields=PRODUCT_FIELDS, dynamic=True)
    return answer


@METHODS.register("catalog.product.offer.add")
def offer_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    return Answer({"offer": copy.deepcopy(_new_element(shop, required_fields(params), offer=True))})


@METHODS.register("catalog.product.offer.update")
def offer_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    product = shop.products.get(required_id(params))
    if product is None or product.get("type") != 4:
        raise ShopError(0, "Product with the specified identifier does not exist in the information block")
    fields = dict(required_fields(params))
    parent = fields.pop("parentId", None)
    if parent not in (None, ""):
        if integer(parent, "parentId") not in shop.products:
            raise ShopError(0, "Parent product not found")
        product["parentId"] = {"value": str(integer(parent, "parentId")), "valueId": product["parentId"]["valueId"]}
    if fields:
        product_update(shop, {"id": product["id"], "fields": fields})
    return Answer({"offer": copy.deepcopy(product)})


@METHODS.register("catalog.measure.list")
def measure_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(getattr(shop, "measures", {}).values(), params, key="measures", fields=MEASURE_FIELDS)


@METHODS.register("catalog.vat.list")
def vat_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(getattr(shop, "vats", {}).values(), params, key="vats", fields=VAT_FIELDS)


@METHODS.register("catalog.productpropertyenum.list")
def enum_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    enums = getattr(shop, "property_enums", {})
    return list_answer(enums.values(), params, key="productPropertyEnums", fields=ENUM_FIELDS)


@METHODS.register("catalog.productpropertyenum.add")
def enum_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    require(fields, ("propertyId", "value", "xmlId"))
    prop = shop.product_properties.get(integer(fields["propertyId"], "propertyId"))
    if prop is None or prop["propertyType"] != "L":
        raise ShopError(0, "Only list properties are supported")
    enums: dict[int, Row] = getattr(shop, "property_enums", {})
    if any(e["propertyId"] == prop["id"] and e["xmlId"] == fields["xmlId"] for e in enums.values()):
        raise ShopError(0, f"A value with xmlId '{fields['xmlId']}' already exists.")
    enum = {
        "id": shop.new_id("enum"), "propertyId": prop["id"], "value": str(fields["value"]),
        "xmlId": str(fields["xmlId"]), "def": fields.get("def") or "N", "sort": fields.get("sort") or 500,
    }  # fmt: skip
    enums[enum["id"]] = enum
    return Answer({"productPropertyEnum": copy.deepcopy(enum)})
