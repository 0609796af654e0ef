"""Inventory documents: ``catalog.document.*``, the way to move stock when stock records cannot be written.

A document is added, filled with elements, then conducted, which moves stock: arrival (A), goods receipt
(S, a stock adjustment) and return (R) add to ``storeTo``; write-off (D) takes from ``storeFrom``; a move
(M) does both. Conducting needs inventory accounting on and refuses to take a store below zero; cancelling undoes
a conducted document.
"""

from __future__ import annotations

import collections
import copy
from typing import Any

from bridge.sandbox.shop import stock
from bridge.sandbox.shop.filters import list_answer
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import integer, number
from bridge.sandbox.shop.wire import Answer, ShopError

DOCUMENT_FIELDS = (
    "id", "docType", "docNumber", "title", "status", "currency", "responsibleId", "createdBy", "total",
    "commentary", "siteId", "dateCreate", "dateModify", "dateStatus", "dateDocument",
)  # fmt: skip
DOCUMENT_ELEMENT_FIELDS = ("id", "docId", "elementId", "storeFrom", "storeTo", "amount", "purchasingPrice")
DOCUMENT_TYPES = ("A", "S", "M", "R", "D")


def _deltas(shop: ShopState, document: Row, sign: int) -> dict[tuple[int, int], float]:
    """(product, store) → change of amount when the document is conducted (sign=1) or cancelled (-1)."""
    deltas: dict[tuple[int, int], float] = collections.defaultdict(float)
    for element in shop.document_elements.values():
        if element["docId"] != document["id"]:
            continue
        kind, amount = document["docType"], element["amount"]
        targets: list[tuple[int | None, float]] = []
        if kind in ("A", "S", "R", "M"):
            targets.append((element["storeTo"], amount))
        if kind in ("D", "M"):
            targets.append((element["storeFrom"], -amount))
        for store_id, change in targets:
            if store_id is None or store_id not in shop.stores:
                raise ShopError(0, f"Store is not specified or does not exist (element {element['id']})")
            deltas[(element["elementId"], store_id)] += sign * change
    return deltas


def _apply(shop: ShopState, deltas: dict[tuple[int, int], float]) -> None:
    """All the changes or none: any store that would go below zero refuses the whole document."""
    for (product_id, store_id), change in deltas.items():
        record = stock.store_product(shop, product_id, store_id)
        if (record["amount"] if record else 0) + change < 0:
            raise ShopError(0, f"Insufficient quantity of product {product_id} in store {store_id}")
    for (product_id, store_id), change in deltas.items():
        record = stock.store_product(shop, product_id, store_id, create=True)
        assert record is not None
        total = record["amount"] + change
        record["amount"] = int(total) if float(total).is_integer() else total
        stock.recount(shop, product_id)


# -- the REST methods --------------------------------------------------------------------------------------

METHODS = MethodTable()


@METHODS.register("catalog.document.add")
def document_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    require(fields, ("docType", "currency", "responsibleId"))
    if fields["docType"] not in DOCUMENT_TYPES:
        raise ShopError(0, f"Unknown document type {fields['docType']!r}")
    now = shop.now()
    document = {
        "id": shop.new_id("document"),
        "docType": fields["docType"],
        "docNumber": fields.get("docNumber"),
        "title": fields.get("title"),
        "status": "N",
        "currency": fields["currency"],
        "responsibleId": integer(fields["responsibleId"], "responsibleId"),
        "createdBy": shop.user_id,
        "total": 0,
        "commentary": fields.get("commentary"),
        "siteId": "s1",
        "dateCreate": now,
        "dateModify": now,
        "dateStatus": None,
        "dateDocument": fields.get("dateDocument", now),
    }
    shop.documents[document["id"]] = document
    return Answer({"document": copy.deepcopy(document)})


@METHODS.register("catalog.document.list")
def document_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.documents.values(), params, key="documents", fields=DOCUMENT_FIELDS)


@METHODS.register("catalog.document.element.add")
def document_element_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    fields = required_fields(params)
    require(fields, ("docId", "elementId", "amount"))
    document = shop.documents.get(integer(fields["docId"], "docId"))
    if document is None:
        raise ShopError(0, "Document does not exist")
    if document["status"] == "Y":
        raise ShopError(0, "Conducted document cannot be changed")
    element = {
        "id": shop.new_id("document_element"),
        "docId": document["id"],
        "elementId": integer(fields["elementId"], "elementId"),
        "storeFrom": integer(fields["storeFrom"], "storeFrom") if fields.get("storeFrom") else None,
        "storeTo": integer(fields["storeTo"], "storeTo") if fields.get("storeTo") else None,
        "amount": number(fields["amount"], "amount"),
        "purchasingPrice": number(fields["purchasingPrice"], "purchasingPrice")
        if fields.get("purchasingPrice") not in (None, "")
        else None,
    }
    shop.document_elements[element["id"]] = element
    return Answer({"documentElement": copy.deepcopy(element)})


@METHODS.register("catalog.document.element.list")
def document_element_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(shop.document_elements.values(), params, key="documentElements", fields=DOCUMENT_ELEMENT_FIELDS)


@METHODS.register("catalog.document.conduct")
def document_conduct(shop: ShopState, params: dict[str, Any]) -> Answer:
    document = shop.documents.get(required_id(params))
    if document is None:
        raise ShopError(0, "Document does not exist")
    if not shop.inventory_accounting:
        raise ShopError(0, "Warehouse accounting must be enabled to conduct the document")
    if document["status"] == "Y":
        raise ShopError(0, "Document has already been conducted")
    _apply(shop, _deltas(shop, document, 1))
    document.update(status="Y", dateStatus=shop.now())
    return Answer(True)


@METHODS.register("catalog.document.cancel")
def document_cancel(shop: ShopState, params: dict[str, Any]) -> Answer:
    document = shop.documents.get(required_id(params))
    if document is None:
        raise ShopError(0, "Document does not exist")
    if document["status"] != "Y":
        raise ShopError(0, "Document has not been conducted")
    _apply(shop, _deltas(shop, document, -1))
    document.update(status="C", dateStatus=shop.now())
    return Answer(True)


@METHODS.register("catalog.document.mode.status")
def document_mode_status(shop: ShopState, params: dict[str, Any]) -> Answer:
    return Answer("Y" if shop.inventory_accounting else "N")
