"""The shop's small reference tables the nomenclature writers point at, read once and cached for minutes.

A product names its unit by ``catalog_measure.id`` (1C sends the OKEI code), its VAT by ``vatId`` (1C sends a
rate), its properties as ``propertyN`` (the mappings and 1C name them by ``xmlId`` or code) and its sections
by id (1C names them by ``xmlId``). Each table is one paged list call, cached briefly so that a flush of
thousands of products asks once and an admin's change in the shop is seen within minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from bridge import keys
from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand, chunked, run_lists

TABLE_TTL = 300
SECTION_TTL = 24 * 3600
_NO_VAT = ("без ндс", "no vat", "without vat", "exclude")


def _cached_rows(rt: Runtime, cache_key: str, method: str, params: dict[str, Any], key: str) -> list[dict[str, Any]]:
    cached = rt.redis.get(cache_key)
    if cached is not None:
        rows: list[dict[str, Any]] = json.loads(cached)
        return rows
    rows = list(rt.shop.list_all(method, params, key))
    rt.redis.set(cache_key, json.dumps(rows), ex=TABLE_TTL)
    return rows


def properties(rt: Runtime, iblock_id: int) -> list[dict[str, Any]]:
    """The iblock's properties (id, code, xmlId, propertyType, multiple)."""
    params = {
        "select": ["id", "iblockId", "code", "xmlId", "propertyType", "multiple", "name"],
        "filter": {"iblockId": iblock_id},
    }
    cache_key = keys.CACHE_PROPERTIES.format(iblock_id=iblock_id)
    return _cached_rows(rt, cache_key, "catalog.productProperty.list", params, "productProperties")


def find_property(rt: Runtime, iblock_id: int, name: str) -> dict[str, Any] | None:
    """The property whose ``xmlId`` is ``name`` (how 1C and the shop's own import know it), else whose code is."""
    rows = properties(rt, iblock_id)
    by_xml = [row for row in rows if str(row.get("xmlId") or "") == name]
    by_code = [row for row in rows if str(row.get("code") or "") == name]
    found = by_xml or by_code
    return min(found, key=lambda row: int(row["id"])) if found else None


def measure_id(rt: Runtime, unit_code: str) -> int | None:
    """``catalog_measure.id`` of an OKEI code such as "796"."""
    try:
        code = int(unit_code.strip())
    except ValueError:
        return None
    rows = _cached_rows(
        rt,
        keys.CACHE_REFERENCES.format(table="measures"),
        "catalog.measure.list",
        {"select": ["id", "code"]},
        "measures",
    )
    return next((int(row["id"]) for row in rows if _int(row.get("code")) == code), None)


def vat_id(rt: Runtime, rate: str) -> int | None:
    """``vatId`` of a rate ("20", "10", "0") or of "none" (the shop's "no VAT" rate: no rate, or named so)."""
    select = {"select": ["id", "name", "rate", "active"]}
    rows = _cached_rows(rt, keys.CACHE_REFERENCES.format(table="vats"), "catalog.vat.list", select, "vats")
    if rate == "none":
        for row in rows:
            if row.get("rate") in (None, "") or any(w in str(row.get("name") or "").lower() for w in _NO_VAT):
                return int(row["id"])
        return None
    wanted = _decimal(rate)
    return next((int(row["id"]) for row in rows if wanted is not None and _decimal(row.get("rate")) == wanted), None)


def find_sections(rt: Runtime, iblock_id: int, xml_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Sections of the iblock by ``xmlId`` (id, name, active, parent); what the shop lacks is absent."""
    wanted = sorted(set(xml_ids))
    select = ["id", "iblockId", "xmlId", "name", "active", "iblockSectionId"]
    commands = {
        f"s{n}": ListCommand(
            "catalog.section.list", {"select": select, "filter": {"iblockId": iblock_id, "@xmlId": chunk}}, "sections"
        )
        for n, chunk in enumerate(chunked(wanted))
    }
    found: dict[str, dict[str, Any]] = {}
    for rows in run_lists(rt.shop, commands).values():
        for row in sorted(rows, key=lambda r: int(r.get("id") or 0), reverse=True):
            if row.get("xmlId") is not None:
                found[str(row["xmlId"])] = row  # the lowest id wins when an xmlId repeats
    remember_sections(rt, iblock_id, {xml: int(row["id"]) for xml, row in found.items()})
    return found


def section_ids(rt: Runtime, iblock_id: int, xml_ids: Iterable[str]) -> dict[str, int]:
    """Section ids by ``xmlId``: the cache first, then the shop."""
    wanted = sorted(set(xml_ids))
    if not wanted:
        return {}
    cached = rt.redis.mget([keys.CACHE_SECTION.format(iblock_id=iblock_id, xml_id=x) for x in wanted])
    found = {xml: int(value) for xml, value in zip(wanted, cached, strict=True) if value is not None}
    missing = [xml for xml in wanted if xml not in found]
    if missing:
        found.update({xml: int(row["id"]) for xml, row in find_sections(rt, iblock_id, missing).items()})
    return found


def remember_sections(rt: Runtime, iblock_id: int, ids: dict[str, int]) -> None:
    if not ids:
        return
    pipe = rt.redis.pipeline(transaction=False)
    for xml, section_id in ids.items():
        pipe.set(keys.CACHE_SECTION.format(iblock_id=iblock_id, xml_id=xml), section_id, ex=SECTION_TTL)
    pipe.execute()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
