"""Catalog sections: ``catalog.section.list``, ``.add``, ``.update``.

A section nests under ``iblockSectionId`` (its parent), which must be a section of the same iblock; the
answers wrap one section in ``section`` and a list in ``sections``.
"""

from __future__ import annotations

import copy
from typing import Any

from bridge.sandbox.shop.filters import list_answer
from bridge.sandbox.shop.methods import MethodTable, require, required_fields, required_id
from bridge.sandbox.shop.state import Row, ShopState
from bridge.sandbox.shop.values import integer
from bridge.sandbox.shop.wire import Answer, ShopError

SECTION_FIELDS = (
    "id", "iblockId", "iblockSectionId", "name", "xmlId", "code", "sort", "active", "description", "descriptionType",
)  # fmt: skip
UPDATABLE = frozenset(SECTION_FIELDS) - {"id", "iblockId"}


class SectionArranging(ShopState):
    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self.sections: dict[int, Row] = {}

    def add_section(
        self, name: str, *, xml_id: str | None = None, parent: int | None = None, iblock_id: int = 1
    ) -> Row:
        with self.lock:
            return copy.deepcopy(
                _add(self, {"iblockId": iblock_id, "name": name, "xmlId": xml_id, "iblockSectionId": parent})
            )

    def section_by_xml(self, xml_id: str) -> Row | None:
        with self.lock:
            found = [s for s in self.sections.values() if s.get("xmlId") == xml_id]
            return copy.deepcopy(found[0]) if found else None


def _sections(shop: ShopState) -> dict[int, Row]:
    found: dict[int, Row] = getattr(shop, "sections", {})
    return found


def _parent(shop: ShopState, iblock_id: int, value: Any) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    parent = _sections(shop).get(integer(value, "iblockSectionId"))
    if parent is None or parent["iblockId"] != iblock_id:
        raise ShopError(200700300000, "Parent section not found or belongs to another information block")
    return int(parent["id"])


def _add(shop: ShopState, fields: dict[str, Any]) -> Row:
    require(fields, ("iblockId", "name"))
    iblock_id = integer(fields["iblockId"], "iblockId")
    if iblock_id not in getattr(shop, "catalogs", {}):
        raise ShopError(200700300050, "Information block does not exist")
    sid = shop.new_id("section")
    section = {
        "id": sid, "iblockId": iblock_id, "iblockSectionId": _parent(shop, iblock_id, fields.get("iblockSectionId")),
        "name": str(fields["name"]), "xmlId": fields.get("xmlId") or str(sid), "code": fields.get("code"),
        "sort": fields.get("sort") or 500, "active": fields.get("active") or "Y",
        "description": fields.get("description") or "", "descriptionType": fields.get("descriptionType") or "text",
    }  # fmt: skip
    _sections(shop)[sid] = section
    return section


METHODS = MethodTable()


@METHODS.register("catalog.section.list")
def section_list(shop: ShopState, params: dict[str, Any]) -> Answer:
    return list_answer(_sections(shop).values(), params, key="sections", fields=SECTION_FIELDS)


@METHODS.register("catalog.section.add")
def section_add(shop: ShopState, params: dict[str, Any]) -> Answer:
    return Answer({"section": copy.deepcopy(_add(shop, required_fields(params)))})


@METHODS.register("catalog.section.update")
def section_update(shop: ShopState, params: dict[str, Any]) -> Answer:
    section = _sections(shop).get(required_id(params))
    fields = required_fields(params)
    if section is None:
        raise ShopError(200700300030, "Section does not exist")
    for name, value in fields.items():
        if name not in UPDATABLE:
            raise ShopError(0, f"Field {name} cannot be changed")
        if name == "iblockSectionId":
            parent = _parent(shop, section["iblockId"], value)
            if parent == section["id"]:
                raise ShopError(200700300010, "A section cannot be its own parent")
            section[name] = parent
        else:
            section[name] = value
    return Answer({"section": copy.deepcopy(section)})
