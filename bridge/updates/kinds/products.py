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
words. A variant whose product is still on its way waits for it, one whose product is held is held with it
(``product_held``), and only one whose product is nowhere is dropped (``unknown_parent``). The value of a
pending product is the whole document (latest wins), as canonical JSON.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from bridge.updates import on_the_way, pictures, shop_tables
from bridge.updates.catalog import PRODUCT_TTL, offers_iblock, product_iblock
from bridge.updates.intake.models import STRICT, TS_DESCRIPTION, Key, Timestamp, one_of
from bridge.updates.kinds.base import UpdateKind
from bridge.updates.kinds.refs import xml_id_key
from bridge.updates.outcomes import Outcomes, Problem
from bridge.updates.pending import Entry
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
    ready = _with_parents(rt, catalog, variants, docs, ids, outcomes)
    found_offers = _look_up(rt, "catalog.product.offer.list", "offers", catalog.offers, catalog,
                            [str(docs[e.field]["xml_id"]) for e in ready])  # fmt: skip
    _write(rt, catalog, catalog.offers, ready, docs, found_offers, sections, ids, outcomes, offer=True)


def _with_parents(
    rt: Runtime,
    catalog: Catalog,
    variants: Sequence[Entry],
    docs: dict[str, dict[str, Any]],
    ids: dict[str, int],
    outcomes: Outcomes,
) -> list[Entry]:
    """The variants whose product the shop has; the others wait for it, are held with it, or are dropped.

    An offer is written into its product, and 1C does not send an unchanged variant again, so dropping one
    whose product is still on its way (pending, or in a products body not yet split) or held (its dead letter
    says why) would lose it for good. Such a variant waits for the product, or is held with it and goes on
    with ``bridge failed retry``; only a product that is nowhere drops it. A product this very round holds is
    not in the held store yet (the flush moves it there after the round), so it is taken from ``outcomes``.
    """
    parents = {entry.field: parent_of(docs[entry.field]) or "" for entry in variants}
    ids.update(_cached_ids(rt, sorted(set(parents.values()) - ids.keys())))
    held_here = {str(docs[entry.field]["xml_id"]) for entry, _, _ in outcomes.held if entry.field in docs}
    absent = sorted(set(parents.values()) - ids.keys() - held_here)
    coming, held = on_the_way.on_their_way(rt.redis, NAME, absent)
    ready: list[Entry] = []
    for entry in variants:
        parent = parents[entry.field]
        if parent in ids:
            ready.append(entry)
        elif parent in coming:
            outcomes.wait(
                [entry], TransientError(f"the variant's product {parent!r} is not written yet", cause=Cause.BUSY)
            )
        elif parent in held_here or parent in held:
            outcomes.refuse([entry], on_the_way.held_with(f"the variant's product {parent!r}"))
        else:
            outcomes.drop([entry], _unknown_parent(catalog.products, parent), why="unknown_parent")
    return ready


def _unknown_parent(iblock_id: int, xml_id: str) -> str:
    return (
        f"the variant's product {xml_id!r} is not in the shop's catalog (iblock {iblock_id}), not waiting to be "
        "written and not held; send the product first (POST /1c/products, or the exchange's goods file)"
    )


def _cached_ids(rt: Runtime, xml_ids: Sequence[str]) -> dict[str, int]:
    """The products' ids remembered by an earlier round (one read for all of them)."""
    if not xml_ids:
        return {}
    cached = rt.redis.mget([keys.CACHE_PRODUCT.format(how="xml", value=xml) for xml in xml_ids])
    return {xml: int(value) for xml, value in zip(xml_ids, cached, strict=True) if value is not None}


def _sections(
    rt: Runtime, catalog: Catalog, entries: Sequence[Entry], docs: dict[str, dict[str, Any]], outcomes: Outcomes
) -> dict[str, int | Problem | None]:
    """Each entry's main section: its id, None when none is given, or why the shop has none (the product is held).

    A product is never written without the section it names: an unchanged product is not sent again, so it
    would keep lacking it after the section arrived. A section still on its way (in the sections inbox, or
    pending) makes the product wait for the sections flush; one that is nowhere holds the product.
    """
    firsts = {entry.field: (docs[entry.field].get("section_xml_ids") or [None])[0] for entry in entries}
    wanted = {x for doc in docs.values() for x in doc.get("section_xml_ids") or ()}
    known = shop_tables.section_ids(rt, catalog.products, wanted)
    missing = sorted({x for x in firsts.values() if x is not None and x not in known})
    coming, held = on_the_way.on_their_way(rt.redis, "sections", missing)
    gone = [x for x in missing if x not in coming]
    if gone:  # looked up again after the look at what is on its way: a sections flush may have written it since
        again = shop_tables.find_sections(rt, catalog.products, gone)
        known.update({xml: int(row["id"]) for xml, row in again.items()})
    main: dict[str, int | Problem | None] = {}
    for entry in entries:
        first = firsts[entry.field]
        if first is None or first in known:
            main[entry.field] = known.get(first) if first is not None else None
        elif first in coming:
            outcomes.wait([entry], TransientError(f"section {first!r} is not written yet", cause=Cause.BUSY))
        else:
            main[entry.field] = _missing_section(catalog.products, first, held=first in held)
    return main


def _missing_section(iblock_id: int, xml_id: str, *, held: bool) -> Problem:
    if held:
        reason = (
            f"the product's section {xml_id!r} is held itself (see its dead letter); once it is sent on, "
            "`bridge failed retry` this one too"
        )
    else:
        reason = (
            f"section {xml_id!r} is not in the shop's catalog (iblock {iblock_id}) and not waiting to be written; "
            "send it from 1C first (POST /1c/sections, or the groups of the exchange's goods file) or create a "
            f"section with xmlId {xml_id!r} in the shop, then `bridge failed retry`"
        )
    return Problem(reason, "unknown_section", setup=True)


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


@dataclass
class Wanted:
    """What a document asks of the shop: the fields, why it cannot be written (held), what it goes without."""

    fields: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None  # set: the product is held, nothing is written
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (class, reason): written without that part


def desired(
    rt: Runtime, catalog: Catalog, iblock_id: int, doc: dict[str, Any], section: int | Problem | None
) -> Wanted:
    """The shop fields the document asks for (only what it gives).

    A property the document fills that the shop's iblock lacks (the article, the barcodes, a mapped one) holds
    the product: 1C will not send an unchanged product again, so written without it the value would stay lost
    after the property was created. A unit or VAT rate the shop lacks is left out with a warning: the shop's
    admins may not want every unit and rate 1C knows, and the product is still worth selling.
    """
    wanted = Wanted({"name": doc["name"]})
    fields = wanted.fields
    xml_id = str(doc["xml_id"])
    if "active" in doc:
        fields["active"] = "Y" if doc["active"] else "N"
    if "description" in doc:
        fields["detailText"] = doc["description"]
    if "unit_code" in doc:
        measure = shop_tables.measure_id(rt, doc["unit_code"])
        if measure is None:
            reason = f"product {xml_id!r}: the shop has no unit with OKEI code {doc['unit_code']}; written without it"
            log.warning("%s", reason)
            wanted.warnings.append(("unknown_unit", reason))
        else:
            fields["measure"] = measure
    if "vat_rate" in doc:
        vat = shop_tables.vat_id(rt, doc["vat_rate"])
        if vat is None:
            reason = f"product {xml_id!r}: the shop has no VAT rate {doc['vat_rate']}; written without it"
            log.warning("%s", reason)
            wanted.warnings.append(("unknown_vat_rate", reason))
        else:
            fields["vatId"] = vat
    if isinstance(section, Problem):
        wanted.problem = section
    elif section is not None:
        fields["iblockSectionId"] = section
    lookup = rt.mappings.products
    named: list[tuple[str, str, list[str]]] = []
    if "article" in doc:
        named.append((lookup.article_property, "article_property", [doc["article"]]))
    if "barcodes" in doc:
        named.append((lookup.barcode_property, "barcode_property", list(doc["barcodes"])))
    for name, value in (doc.get("properties") or {}).items():
        if name in lookup.properties:
            named.append((name, "properties", [value]))
    for name, setting, values in named:
        problem = _set_property(catalog, iblock_id, name, setting, values, fields)
        wanted.problem = wanted.problem or problem
    return wanted


def _set_property(
    catalog: Catalog, iblock_id: int, name: str, setting: str, values: list[str], fields: dict[str, Any]
) -> Problem | None:
    found = catalog.field(iblock_id, name)
    if found is None:
        return missing_property(iblock_id, name, setting)
    key, prop = found
    if prop.get("propertyType") == "L":
        values = [str(enum_id(catalog.rt, prop, v)) for v in values]
    if prop.get("multiple") == "Y":
        fields[key] = [{"value": v} for v in values]
    elif values:
        fields[key] = {"value": values[0]}
    return None


def missing_property(iblock_id: int, name: str, setting: str) -> Problem:
    """The reason a product is held for a property its iblock lacks, in words an integrator can act on."""
    if setting == "properties":
        change = f"remove {name!r} from properties under [products] in catalog.toml"
    else:
        change = f"set {setting} under [products] in catalog.toml to the code or xmlId of the property the shop has"
    return Problem(
        f"the shop's iblock {iblock_id} has no property with xmlId or code {name!r} (named by {setting} under "
        f"[products] in catalog.toml); create it in the shop's iblock {iblock_id}, or {change}, then "
        "`bridge failed retry`",
        "missing_property",
        setup=True,
    )


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
    sections: dict[str, int | Problem | None],
    ids: dict[str, int],
    outcomes: Outcomes,
    *,
    offer: bool,
) -> None:
    family = "catalog.product.offer" if offer else "catalog.product"
    result_key = "offer" if offer else "element"
    writes: list[Write] = []
    settled = Outcomes(outcomes.kind)
    warnings: dict[str, list[tuple[str, str]]] = {}
    for entry in entries:
        doc = docs[entry.field]
        xml_id = str(doc["xml_id"])
        row = found.get(xml_id)
        wanted = desired(rt, catalog, iblock_id, doc, sections.get(entry.field))
        fields = wanted.fields
        if row is None or rt.mappings.products.update_existing:  # else only ``active`` is written: nothing is lost
            if wanted.problem is not None:
                outcomes.refuse([entry], wanted.problem)
                continue
            warnings[entry.field] = wanted.warnings
        if offer:
            fields["parentId"] = ids[parent_of(doc) or ""]
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
            refused = pictures.upload(
                rt, ids[str(doc["xml_id"])], list(doc.get("images") or ()), what=f"product {doc['xml_id']!r}"
            )
        except TransientError as error:
            outcomes.wait([entry], error)
            continue
        outcomes.apply([entry])
        for why, reason in [*warnings.get(entry.field, ()), *refused]:
            outcomes.warn(entry, reason, why=why)
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
