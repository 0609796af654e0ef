"""Products ("nomenclature") from 1C into the shop's catalog: created when missing, changed field by field.

1C names a product by its ``Ид``, which 1C-Bitrix keeps as the product's ``xmlId``; a variant is
``<product Ид>#<characteristic Ид>`` and lives as a trade offer (``catalog.product.offer.*``) in the SKU
catalog, linked to its product. The writer looks every product up by ``xmlId`` first (50 to a ``batch``
list command; shops fed by the shop's own import already have them), then:

- creates the missing ones in the product catalog (``catalog.product.add``, the SKU catalog for variants),
  and remembers the new id, so stock and prices pushed by ``xml_id`` find it without a lookup;
- sends only the fields that differ from what the shop holds (``catalog.product.update``): name,
  description (``detailText``), unit (``measure``: the OKEI code through ``catalog.measure.list``), VAT
  (``vatId`` through ``catalog.vat.list``), main section, the article and barcode properties
  (``CML2_ARTICLE``, ``CML2_BAR_CODE``) and the properties the mappings name; a product equal to the shop's
  costs no write at all;
- with ``update_existing = false`` in catalog.toml, leaves the descriptive fields of products the shop
  already has alone (only ``active`` follows 1C);
- uploads pictures it has not uploaded to that product before (``bridge.updates.pictures``).

Nothing is deleted: ``active: false`` deactivates. A product the shop refuses is reported with the shop's
words. The value of a pending product is the whole document (latest wins), as canonical JSON.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Required

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, with_config
from pydantic_core import PydanticCustomError
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from typing_extensions import TypedDict

from bridge import keys
from bridge.errors import Cause, TransientError
from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand, chunked, run_lists
from bridge.updates import pictures, shop_tables
from bridge.updates.catalog import PRODUCT_TTL, offers_iblock, product_iblock
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, Timestamp, one_of
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import xml_id_key
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry, pending_key
from bridge.updates.writes import Write, result_id, run_writes

log = logging.getLogger("bridge.updates.kinds.products")

NAME = "products"

# --- what 1C sends: POST /1c/products ---------------------------------------------------------------------

FileName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")]
Text = Annotated[str, StringConstraints(max_length=65535)]
SOURCES = (("sha256", "url", "base64"),)


def _one_source(image: dict[str, Any]) -> dict[str, Any]:
    given = [name for name in SOURCES[0] if image.get(name) is not None]
    if len(given) != 1:
        raise PydanticCustomError("image", "give exactly one of sha256, url, base64")
    if given[0] != "url" and not image.get("name"):
        raise PydanticCustomError("image", "a picture given as sha256 or base64 needs its file name in name")
    if given[0] == "base64":
        try:
            base64.b64decode(image["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise PydanticCustomError("image", "base64 is not valid base64") from None
    return image


@with_config(ConfigDict(**STRICT, json_schema_extra=one_of(SOURCES)))
class ImageRef(TypedDict, total=False):
    """A picture: content the bridge stores (``sha256``), a URL the bridge fetches, or the bytes (``base64``)."""

    name: Annotated[FileName | None, Field(description="the file name, such as photo.jpg")]
    sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$", description="content already stored by the bridge")]
    url: Annotated[
        str | None,
        Field(max_length=2048, pattern=r"^https?://\S+$", description="fetched by the bridge (public hosts)"),
    ]
    base64: Annotated[str | None, Field(max_length=12_000_000, description="the file's bytes in base64")]


Image = Annotated[ImageRef, AfterValidator(_one_source)]


@with_config(ConfigDict(**STRICT))
class Characteristic(TypedDict):
    name: Key
    value: Annotated[str, StringConstraints(max_length=255)]


@with_config(ConfigDict(**STRICT))
class ProductItem(TypedDict, total=False):
    """One product or variant as 1C knows it; what is absent is left as the shop has it."""

    xml_id: Required[Annotated[Key, Field(description="the 1C Ид (the shop's xmlId); a variant is <product Ид>#<Ид>")]]
    parent_xml_id: Annotated[Key | None, Field(description="the product of a variant (else taken from xml_id's P#C)")]
    name: Required[Annotated[Key, Field(description="the product's name")]]
    article: Annotated[Key | None, Field(description="the article (property CML2_ARTICLE)")]
    barcodes: Annotated[list[Key] | None, Field(description="barcodes (property CML2_BAR_CODE)")]
    description: Annotated[Text | None, Field(description="the description (detailText; html when it holds a tag)")]
    unit_code: Annotated[
        str | None, Field(pattern=r"^\s*\d{1,4}\s*$", description="the unit's OKEI code, such as 796 (piece)")
    ]
    vat_rate: Annotated[
        str | None,
        Field(pattern=r"^(\d{1,2}([.,]\d{1,2})?|none)$", description='VAT rate in percent ("20"), or "none"'),
    ]
    section_xml_ids: Annotated[list[Key] | None, Field(description="sections by xmlId; the first is the main one")]
    properties: Annotated[
        dict[Key, Annotated[str, StringConstraints(max_length=4096)]] | None,
        Field(
            description="property xmlId → value text, or the xmlId of a list value (only properties catalog.toml names)"
        ),
    ]
    images: Annotated[list[Image] | None, Field(max_length=50, description="pictures; the first is the main one")]
    active: Annotated[bool | None, Field(description="false deactivates the product (nothing is ever deleted)")]
    characteristics: Annotated[list[Characteristic] | None, Field(description="name/value pairs of a variant")]
    ts: Annotated[Timestamp | None, Field(description=TS_DESCRIPTION)]


@with_config(ConfigDict(**STRICT))
class ProductBody(TypedDict):
    """``POST /1c/products``: products and variants; the latest document per xml_id wins."""

    items: list[ProductItem]


def key_of(item: dict[str, Any]) -> str:
    return xml_id_key(item["xml_id"])


def normalised(item: dict[str, Any]) -> dict[str, Any]:
    """The document as it is kept pending: no nulls, no ``ts``, pictures by digest or URL."""
    doc = {k: v for k, v in item.items() if v is not None and k != "ts"}
    if "images" in doc:
        doc["images"] = [_image_ref(image) for image in doc["images"]]
    if "unit_code" in doc:
        doc["unit_code"] = str(doc["unit_code"]).strip()
    if "vat_rate" in doc:
        doc["vat_rate"] = str(doc["vat_rate"]).replace(",", ".")
    return doc


def _image_ref(image: dict[str, Any]) -> dict[str, Any]:
    if image.get("base64") is not None:
        return {"name": image["name"], "sha256": pictures.digest(base64.b64decode(image["base64"]))}
    return {k: v for k, v in image.items() if v is not None}


def value_of(item: dict[str, Any]) -> str:
    return json.dumps(normalised(item), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def describe_key(key: list[Any]) -> str:
    return f"product xml_id {key[0]!r}"


def store_image(redis: Redis, name: str, content: bytes) -> dict[str, str]:
    """Keep a picture's bytes for the writer; the item's ``{"name", "sha256"}``."""
    return pictures.store_image(redis, name, content)


async def keep_pictures(redis: AsyncRedis, items: Sequence[dict[str, Any]]) -> None:
    """The intake's part: the base64 pictures of an accepted body are stored before the 202."""
    found = [
        (str(image["name"]), base64.b64decode(image["base64"]))
        for item in items
        for image in item.get("images") or ()
        if image.get("base64") is not None
    ]
    await pictures.store_images_async(redis, found)


# --- the writer -----------------------------------------------------------------------------------------

BASE_SELECT = ["id", "iblockId", "xmlId", "name", "active", "detailText", "measure", "vatId", "iblockSectionId"]


class Catalog:
    """What one round needs of the shop's catalog: the iblocks, and ``propertyN`` by name, per iblock."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.products = product_iblock(rt)

    @functools.cached_property
    def offers(self) -> int | None:
        """Asked only when variants come: a catalog named in the settings needs no catalog.catalog.list otherwise."""
        return offers_iblock(self.rt)

    def field(self, iblock_id: int, name: str) -> tuple[str, dict[str, Any]] | None:
        prop = shop_tables.find_property(self.rt, iblock_id, name)
        return (f"property{int(prop['id'])}", prop) if prop is not None else None

    def named_fields(self, iblock_id: int) -> list[str]:
        lookup = self.rt.mappings.products
        names = [lookup.article_property, lookup.barcode_property, *lookup.properties]
        return [found[0] for name in names if (found := self.field(iblock_id, name)) is not None]


def parent_of(doc: dict[str, Any]) -> str | None:
    parent = doc.get("parent_xml_id")
    if parent:
        return str(parent)
    xml_id = str(doc["xml_id"])
    return xml_id.split("#", 1)[0] if "#" in xml_id else None


def apply(rt: Runtime, entries: Sequence[Entry], outcomes: Outcomes) -> None:
    """Bring the shop's products to the entries' documents; every entry ends up in ``outcomes``."""
    if not entries:
        return
    catalog = Catalog(rt)
    docs = {entry.field: json.loads(entry.value_json) for entry in entries}
    sections = _sections(rt, catalog, entries, docs, outcomes)
    products = [e for e in entries if e.field in sections and parent_of(docs[e.field]) is None]
    variants = [e for e in entries if e.field in sections and parent_of(docs[e.field]) is not None]
    parent_refs = {p for e in variants if (p := parent_of(docs[e.field]))}
    found = _look_up(rt, "catalog.product.list", "products", catalog.products, catalog,
                     [str(docs[e.field]["xml_id"]) for e in products] + sorted(parent_refs))  # fmt: skip
    ids: dict[str, int] = {xml: int(row["id"]) for xml, row in found.items()}
    _write(rt, catalog, catalog.products, products, docs, found, sections, ids, outcomes, offer=False)
    if not variants:
        return
    if catalog.offers is None:
        reason = (
            f"the shop's product catalog (iblock {catalog.products}) has no SKU (trade offers) catalog for "
            "variants; add one in the shop, or set iblock_id in catalog.toml to the catalog that has one"
        )
        outcomes.hold(variants, reason, why="no_sku_catalog")
        return
    ready: list[Entry] = []
    for entry in variants:
        parent = parent_of(docs[entry.field]) or ""
        if parent in ids or _cached_id(rt, parent) is not None:
            ids.setdefault(parent, _cached_id(rt, parent) or 0)
            ready.append(entry)
        elif rt.redis.hexists(pending_key(NAME), xml_id_key(parent)):
            outcomes.wait(
                [entry], TransientError(f"the variant's product {parent!r} is not written yet", cause=Cause.BUSY)
            )
        else:
            outcomes.drop(
                [entry],
                f"the variant's product {parent!r} is not in the shop; send the product first",
                why="unknown_parent",
            )
    found_offers = _look_up(rt, "catalog.product.offer.list", "offers", catalog.offers, catalog,
                            [str(docs[e.field]["xml_id"]) for e in ready])  # fmt: skip
    _write(rt, catalog, catalog.offers, ready, docs, found_offers, sections, ids, outcomes, offer=True)


def _cached_id(rt: Runtime, xml_id: str) -> int | None:
    cached = rt.redis.get(keys.CACHE_PRODUCT.format(how="xml", value=xml_id))
    return int(cached) if cached is not None else None


def _sections(
    rt: Runtime, catalog: Catalog, entries: Sequence[Entry], docs: dict[str, dict[str, Any]], outcomes: Outcomes
) -> dict[str, int | None]:
    """Each entry's main section id (None: none given or none found); entries whose section is still pending wait."""
    wanted = {x for doc in docs.values() for x in doc.get("section_xml_ids") or ()}
    known = shop_tables.section_ids(rt, catalog.products, wanted)
    main: dict[str, int | None] = {}
    for entry in entries:
        first = (docs[entry.field].get("section_xml_ids") or [None])[0]
        if first is None or first in known:
            main[entry.field] = known.get(first) if first is not None else None
        elif rt.redis.hexists(pending_key("sections"), xml_id_key(first)):
            outcomes.wait([entry], TransientError(f"section {first!r} is not written yet", cause=Cause.BUSY))
        else:
            log.warning("product %s: section %r is not in the shop; written without it", entry.key[0], first)
            main[entry.field] = None
    return main


def _look_up(
    rt: Runtime, method: str, key: str, iblock_id: int, catalog: Catalog, xml_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Rows by ``xmlId`` with every field the writer compares; the ids are remembered for stock and prices."""
    select = [*BASE_SELECT, *catalog.named_fields(iblock_id)]
    commands = {
        f"x{n}": ListCommand(method, {"select": select, "filter": {"iblockId": iblock_id, "@xmlId": chunk}}, key)
        for n, chunk in enumerate(chunked(sorted(set(xml_ids))))
    }
    found: dict[str, dict[str, Any]] = {}
    for rows in run_lists(rt.shop, commands).values():
        for row in sorted(rows, key=lambda r: int(r.get("id") or 0), reverse=True):
            if row.get("xmlId") is not None:
                found[str(row["xmlId"])] = row  # the lowest id wins when an xmlId repeats
    _remember(rt, {xml: int(row["id"]) for xml, row in found.items()})
    return found


def _remember(rt: Runtime, ids: dict[str, int]) -> None:
    if not ids:
        return
    pipe = rt.redis.pipeline(transaction=False)
    for xml, product_id in ids.items():
        pipe.set(keys.CACHE_PRODUCT.format(how="xml", value=xml), product_id, ex=PRODUCT_TTL)
    pipe.execute()


def desired(rt: Runtime, catalog: Catalog, iblock_id: int, doc: dict[str, Any], section: int | None) -> dict[str, Any]:
    """The shop fields the document asks for (only what it gives)."""
    fields: dict[str, Any] = {"name": doc["name"]}
    if "active" in doc:
        fields["active"] = "Y" if doc["active"] else "N"
    if "description" in doc:
        fields["detailText"] = doc["description"]
    if "unit_code" in doc:
        measure = shop_tables.measure_id(rt, doc["unit_code"])
        if measure is None:
            log.warning("product %s: the shop has no unit with OKEI code %s", doc["xml_id"], doc["unit_code"])
        else:
            fields["measure"] = measure
    if "vat_rate" in doc:
        vat = shop_tables.vat_id(rt, doc["vat_rate"])
        if vat is None:
            log.warning("product %s: the shop has no VAT rate %s", doc["xml_id"], doc["vat_rate"])
        else:
            fields["vatId"] = vat
    if section is not None:
        fields["iblockSectionId"] = section
    lookup = rt.mappings.products
    if "article" in doc:
        _set_property(catalog, iblock_id, lookup.article_property, [doc["article"]], fields)
    if "barcodes" in doc:
        _set_property(catalog, iblock_id, lookup.barcode_property, list(doc["barcodes"]), fields)
    for name, value in (doc.get("properties") or {}).items():
        if name in lookup.properties:
            _set_property(catalog, iblock_id, name, [value], fields)
    return fields


def _set_property(catalog: Catalog, iblock_id: int, name: str, values: list[str], fields: dict[str, Any]) -> None:
    found = catalog.field(iblock_id, name)
    if found is None:
        log.warning("the shop's iblock %s has no property %r; its values are not written", iblock_id, name)
        return
    field, prop = found
    if prop.get("propertyType") == "L":
        values = [str(enum_id(catalog.rt, prop, v)) for v in values]
    if prop.get("multiple") == "Y":
        fields[field] = [{"value": v} for v in values]
    elif values:
        fields[field] = {"value": values[0]}


def enum_id(rt: Runtime, prop: dict[str, Any], value: str) -> int:
    """The list value of a list property whose xmlId (else text) is ``value``; created with that xmlId if missing."""
    params = {"select": ["id", "propertyId", "value", "xmlId"], "filter": {"propertyId": int(prop["id"])}}
    rows = list(rt.shop.list_all("catalog.productPropertyEnum.list", params, "productPropertyEnums"))
    for row in rows:
        if str(row.get("xmlId")) == value or str(row.get("value")) == value:
            return int(row["id"])
    created = rt.shop.result(
        "catalog.productPropertyEnum.add", {"fields": {"propertyId": int(prop["id"]), "value": value, "xmlId": value}}
    )
    return int(result_id(created, "productPropertyEnum") or 0)


def _differs(current: Any, wanted: Any) -> bool:
    return _plain(current) != _plain(wanted)


def _plain(value: Any) -> Any:
    """A field as compared: property values by their texts, numbers and text alike, empty as None."""
    if isinstance(value, list):
        return sorted(str(p) for p in (_plain(v) for v in value) if p is not None)
    if isinstance(value, dict):
        return _plain(value.get("value"))
    if value in (None, "", []):
        return None
    return str(value)


def _write(
    rt: Runtime,
    catalog: Catalog,
    iblock_id: int,
    entries: Sequence[Entry],
    docs: dict[str, dict[str, Any]],
    found: dict[str, dict[str, Any]],
    sections: dict[str, int | None],
    ids: dict[str, int],
    outcomes: Outcomes,
    *,
    offer: bool,
) -> None:
    family = "catalog.product.offer" if offer else "catalog.product"
    result_key = "offer" if offer else "element"
    writes: list[Write] = []
    settled = Outcomes(outcomes.kind)
    for entry in entries:
        doc = docs[entry.field]
        xml_id = str(doc["xml_id"])
        fields = desired(rt, catalog, iblock_id, doc, sections.get(entry.field))
        if offer:
            fields["parentId"] = ids[parent_of(doc) or ""]
        row = found.get(xml_id)
        if row is None:
            fields = {"iblockId": iblock_id, "xmlId": xml_id, **fields}
            writes.append(Write(f"{family}.add", {"fields": fields}, [entry], _created(rt, ids, xml_id, result_key)))
            continue
        ids[xml_id] = int(row["id"])
        if not rt.mappings.products.update_existing:
            fields = {k: v for k, v in fields.items() if k == "active"}
        fields.pop("parentId", None)  # an offer keeps the parent it has
        changed = {k: v for k, v in fields.items() if _differs(row.get(k), v)}
        if changed:
            writes.append(Write(f"{family}.update", {"id": int(row["id"]), "fields": changed}, [entry]))
        else:
            settled.apply([entry])
    run_writes(rt.shop, writes, settled)
    for entry in settled.applied:
        doc = docs[entry.field]
        existing = str(doc["xml_id"]) in found
        if existing and not rt.mappings.products.update_existing:
            outcomes.apply([entry])
            continue
        try:
            pictures.upload(rt, ids[str(doc["xml_id"])], list(doc.get("images") or ()), what=f"product {doc['xml_id']}")
        except TransientError as error:
            outcomes.wait([entry], error)
            continue
        outcomes.apply([entry])
    settled.applied.clear()
    outcomes.merge(settled)


def _created(rt: Runtime, ids: dict[str, int], xml_id: str, result_key: str) -> Any:
    def remember(result: Any) -> None:
        new_id = result_id(result, result_key)
        if new_id is not None:
            ids[xml_id] = new_id
            _remember(rt, {xml_id: new_id})

    return remember


KIND = UpdateKind(
    name=NAME,
    summary="products and variants (nomenclature)",
    body=ProductBody,
    item=ProductItem,
    choices=(),
    required=("xml_id", "name"),
    fast_fields=None,
    key_of=key_of,
    value_of=value_of,
    describe_key=describe_key,
    apply=apply,
    keep_content=keep_pictures,
)
