"""Catalog sections from 1C (``Группы``) into the shop: matched by ``xmlId``, created and nested parents first.

A section is found by its ``xmlId`` (the 1C ``Ид``) in the product catalog. The missing ones are created in
waves: first those whose parent the shop already has (or that have none), then their children once the
first wave answered, and so on, so every ``catalog.section.add`` names an existing parent. An existing one
gets only the fields that differ (name, parent, active). Nothing is deleted: ``active: false`` deactivates.
Products name sections by ``xmlId`` too; a product whose section is still pending here waits for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from bridge.errors import Cause, TransientError
from bridge.runtime import Runtime
from bridge.updates import shop_tables
from bridge.updates.catalog import product_iblock
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, Timestamp
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import xml_id_key
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry, pending_key
from bridge.updates.writes import Write, result_id, run_writes

NAME = "sections"


@with_config(ConfigDict(**STRICT))
class SectionItem(TypedDict, total=False):
    """One catalog section (a 1C group)."""

    xml_id: Required[Annotated[Key, Field(description="the 1C group's Ид (the section's xmlId)")]]
    name: Required[Annotated[Key, Field(description="the section's name")]]
    parent_xml_id: Annotated[Key | None, Field(description="the parent section's xmlId; absent at the top level")]
    active: Annotated[bool | None, Field(description="false deactivates the section (nothing is ever deleted)")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class SectionBody(TypedDict):
    """``POST /1c/sections``: catalog sections; the latest document per xml_id wins."""

    items: list[SectionItem]


def key_of(item: dict[str, Any]) -> str:
    return xml_id_key(item["xml_id"])


def value_of(item: dict[str, Any]) -> str:
    doc = {k: v for k, v in item.items() if v is not None and k != "ts"}
    return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def describe_key(key: list[Any]) -> str:
    return f"section xml_id {key[0]!r}"


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Create or change the sections of ``entries``, parents first; every entry ends up in ``outcomes``."""
    if not entries:
        return
    iblock_id = product_iblock(rt)
    docs = {entry.field: json.loads(entry.value_json) for entry in entries}
    xml_of = {entry.field: str(docs[entry.field]["xml_id"]) for entry in entries}
    parents = {str(d["parent_xml_id"]) for d in docs.values() if d.get("parent_xml_id")}
    rows = shop_tables.find_sections(rt, iblock_id, [*xml_of.values(), *parents])
    ids = {xml: int(row["id"]) for xml, row in rows.items()}
    ours = set(xml_of.values())
    remaining = list(entries)
    failed: set[str] = set()
    while remaining:
        wave = [e for e in remaining if not docs[e.field].get("parent_xml_id") or docs[e.field]["parent_xml_id"] in ids]
        if not wave:
            break
        remaining = [e for e in remaining if e not in wave]
        settled = Outcomes(outcomes.kind)
        writes: list[Write] = []
        for entry in wave:
            doc, xml_id = docs[entry.field], xml_of[entry.field]
            fields: dict[str, Any] = {"name": doc["name"]}
            parent = doc.get("parent_xml_id")
            fields["iblockSectionId"] = ids[parent] if parent else None
            if "active" in doc:
                fields["active"] = "Y" if doc["active"] else "N"
            row = rows.get(xml_id)
            if row is None:
                add = {"iblockId": iblock_id, "xmlId": xml_id, **{k: v for k, v in fields.items() if v is not None}}
                writes.append(
                    Write("catalog.section.add", {"fields": add}, [entry], _created(rt, iblock_id, ids, xml_id))
                )
                continue
            changed = {k: v for k, v in fields.items() if _text(row.get(k)) != _text(v)}
            if changed:
                if changed.get("iblockSectionId") is None and "iblockSectionId" in changed:
                    changed["iblockSectionId"] = 0  # to the top level
                writes.append(Write("catalog.section.update", {"id": int(row["id"]), "fields": changed}, [entry]))
            else:
                settled.apply([entry])
        run_writes(rt.shop, writes, settled)
        failed.update(xml_of[e.field] for e, _ in settled.dropped)
        failed.update(xml_of[e.field] for e, _ in settled.waiting)
        outcomes.merge(settled)
    for entry in remaining:
        parent = str(docs[entry.field]["parent_xml_id"])
        if parent in failed or (parent not in ours and rt.redis.hexists(pending_key(NAME), xml_id_key(parent))):
            outcomes.wait([entry], TransientError(f"parent section {parent!r} is not written yet", cause=Cause.BUSY))
        elif parent in ours:
            outcomes.drop(
                [entry],
                f"sections {parent!r} and {xml_of[entry.field]!r} are each other's ancestors",
                why="section_cycle",
            )
        else:
            outcomes.drop(
                [entry],
                f"parent section {parent!r} is not in the shop (iblock {iblock_id}); send it too",
                why="unknown_parent",
            )


def _text(value: Any) -> str | None:
    return None if value in (None, "", 0, "0") else str(value)


def _created(rt: Runtime, iblock_id: int, ids: dict[str, int], xml_id: str) -> Any:
    def remember(result: Any) -> None:
        new_id = result_id(result, "section")
        if new_id is not None:
            ids[xml_id] = new_id
            shop_tables.remember_sections(rt, iblock_id, {xml_id: new_id})

    return remember


KIND = UpdateKind(
    name=NAME,
    summary="catalog sections (1C groups)",
    body=SectionBody,
    item=SectionItem,
    choices=(),
    required=("xml_id", "name"),
    fast_fields=None,
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
)
