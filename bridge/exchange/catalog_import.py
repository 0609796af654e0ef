"""A parsed CommerceML file becomes staged shop updates: only what changed since the bridge last staged it.

1C's exchange node sends the whole catalogue every 15–60 minutes. Each record is compared with what the bridge
last staged for its 1C ``Ид`` (``bridge:exchange:seen:<what>``: a hash per kind of record, ``Ид`` → a 64-bit
fingerprint), and only the differing ones are staged, through ``pending.stage_items``: the same coalesced,
per-key, latest-wins store the JSON pushes feed, flushed by the same jobs under the same rate limit. The JSON
bodies accepted before are split first (``inbox.stage_after_inbox``), so an older push never overwrites the
file's values when the flush splits it later.

- Goods (``Товар``) and variants (an ``Предложение`` ``P#C`` that names itself) → ``products`` items; groups →
  ``sections`` items, parents first. A product's fingerprint is ``НомерВерсии`` when 1C sends one, else the
  parser's digest of the element; a variant's and a section's, the item itself.
- Offers → ``prices`` and ``stock`` items, each part with a fingerprint of its own (the staged items, shop ids
  included), so a stock change does not send the prices again, and a changed mapping sends them afresh.
- A fingerprint is written only after its items were staged, so a crash in between stages them again next
  time (the flush then finds them equal to what the shop holds): never lost, at worst repeated.
- Nothing is deleted. ``active: false`` is staged only for what 1C marks deleted, or, when the mappings opt in
  (``[exchange] deactivate_missing``), for products a full goods file leaves out, refused above
  ``missing_cap``; never after a delta file, nor when the file could not be read to its end. ``active`` is
  otherwise left out, so a product an admin switched off stays off (``reactivate`` switches it on), except one
  the bridge itself deactivated and 1C sends again.

A 1C price type or warehouse that resolves to nothing in the shop is a configuration error: it is recorded
through ``configuration_error`` (counted with its reason), its items are staged all the same, so the flush
reports or holds them, and not marked as staged, so the next export tries them again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Literal, Protocol

import msgspec
from redis import Redis

from bridge import keys
from bridge.errors import PermanentError, TransientError
from bridge.exchange import entries
from bridge.exchange.model import FileKind, Group, Header, Offer, PriceType, Product, Record, Warehouse
from bridge.heap import settled_heap
from bridge.runtime import Runtime
from bridge.shop.errors import ShopError
from bridge.texts import as_text
from bridge.updates import inbox, pending
from bridge.updates.flush import queue_flush
from bridge.updates.kinds import KINDS, prices, products, sections, stock
from bridge.updates.kinds.refs import xml_id_key
from bridge.updates.resolve import by_xml_id, mapped

log = logging.getLogger("bridge.exchange.catalog_import")

CHUNK = 2000  # records per staging round: one HMGET and one stage call per kind
PROGRESS_EVERY = 5000  # records between two ``progress`` calls
# The kinds a file feeds (names taken from the kinds, never spelled out here), in the order a chunk stages
# them: sections before the products in them.
SECTIONS = sections.KIND.name
PRODUCTS = products.KIND.name
PRICES = prices.KIND.name
STOCK = stock.KIND.name
KINDS_ORDER = (SECTIONS, PRODUCTS, PRICES, STOCK)
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
DELETED = "-"  # prefix of the fingerprint of something staged as deactivated (never a hex digit)


class ImageSource(Protocol):
    """Where the pictures of a goods file are read: the files uploaded in the same exchange session."""

    def read(self, path: str) -> bytes | None:
        """The bytes of ``path`` (as the file names it, e.g. ``import_files/ab/x.jpg``), None when not uploaded."""
        ...


@dataclass
class KindCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    errors: int = 0


_WORDS = {PRODUCTS: "товары", SECTIONS: "разделы", PRICES: "цены", STOCK: "остатки"}


@dataclass
class ImportCounts:
    """What one file did, per kind of update, and the reasons of its errors (reason → how many items)."""

    records: int = 0
    kinds: dict[str, KindCounts] = field(default_factory=lambda: {k: KindCounts() for k in KINDS_ORDER})
    reasons: Counter[str] = field(default_factory=Counter)

    def of(self, kind: str) -> KindCounts:
        return self.kinds.setdefault(kind, KindCounts())

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.kinds.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            **{kind: vars(c).copy() for kind, c in self.kinds.items()},
            "reasons": dict(self.reasons),
        }

    def summary(self) -> str:
        """One line for 1C's operator (the final ``success`` of the import)."""
        parts = []
        for kind, c in self.kinds.items():
            if not (c.added or c.updated or c.deactivated or c.errors or c.unchanged):
                continue
            words = f"{_WORDS.get(kind, kind)}: {c.added} новых, {c.updated} изменено, {c.unchanged} без изменений"
            if c.deactivated:
                words += f", {c.deactivated} отключено"
            if c.errors:
                words += f", {c.errors} с ошибками"
            parts.append(words)
        line = f"Обработано записей: {self.records}" + ("; " + "; ".join(parts) if parts else "")
        if self.reasons:
            first, count = self.reasons.most_common(1)[0]
            more = f" и ещё {len(self.reasons) - 1}" if len(self.reasons) > 1 else ""
            line += f". Ошибки настройки ({count}): {first}{more}"
        return line


def configuration_error(counts: ImportCounts, kind: str, reason: str, items: int = 1) -> None:
    """The one place an unresolvable price type, warehouse or setting is recorded (counted with its reason)."""
    counts.of(kind).errors += items
    counts.reasons[reason] += items


def fingerprint(*parts: str) -> str:
    """64 bits of BLAKE2b in hex: collisions are negligible for millions of ids, and 16 bytes per id in Redis."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


_canonical = msgspec.json.Encoder(order="sorted").encode


def document_fingerprint(doc: dict[str, Any], *parts: str) -> str:
    """The fingerprint of a document (a section, a variant) by its canonical JSON (sorted keys), and ``parts``."""
    return hashlib.blake2b(b"\x1f".join((_canonical(doc), *(p.encode() for p in parts))), digest_size=8).hexdigest()


def entries_fingerprint(found: Sequence[tuple[str, str]]) -> str:
    """The fingerprint of an offer's prices or stock: the texts of its pending entries (shop ids included)."""
    return hashlib.blake2b("\n".join(f"{k}\t{v}" for k, v in found).encode(), digest_size=8).hexdigest()


def seen_key(what: str) -> str:
    return keys.EXCHANGE_SEEN.format(what=what)


def apply_file(
    rt: Runtime,
    records: Iterable[Record],
    *,
    batch: str,
    images: ImageSource | None,
    progress: Callable[[str], None],
) -> ImportCounts:
    """Stage what changed in one parsed file and queue the flushes of the kinds it touched.

    The records are consumed as they come (a file of any size); a reader error raised by ``records`` is
    passed on, after what was staged so far stays staged (it was a real change), and nothing is deactivated.
    """
    importer = _Importer(rt, batch, images, progress)
    with settled_heap(collect=False):  # the chunk's survivors would start a full collection every few thousand
        for record in records:
            importer.take(record)
        importer.finish()
    return importer.counts


# --- the work ------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    """One 1C object of a chunk: its fingerprint, and how to build its items once it is known to differ."""

    what: str
    id: str
    fp: str
    # the stored fingerprint → the (key, value) texts of the pending entries to stage
    build: Callable[[str | None], list[tuple[str, str]]]
    deleted: bool = False
    complete: bool = True  # False: an item could not be resolved; staged but not marked, so tried again


class _Importer:
    def __init__(self, rt: Runtime, batch: str, images: ImageSource | None, progress: Callable[[str], None]) -> None:
        self.rt = rt
        self.redis = rt.redis
        self.batch = batch
        self.images = images
        self.progress = progress
        self.rules = rt.mappings.exchange
        self.counts = ImportCounts()
        self.header: Header | None = None
        self.chunk: list[_Candidate] = []
        self.goods_seen: set[str] = set()  # ids of goods in this file, for deactivate_missing
        self.touched: set[str] = set()
        self.names: dict[str, dict[str, str]] = {"price_types": {}, "stores": {}}
        self.currencies: dict[str, str] = {}
        self.resolved: dict[tuple[str, str], int | str | None] = {}
        self.parts: dict[tuple[str, str], tuple[str, str | None]] = {}  # (what, Ид) → (key part, reason)

    # -- reading

    def take(self, record: Record) -> None:
        self.counts.records += 1
        if isinstance(record, Offer):  # the most frequent first
            self._offer(record)
        elif isinstance(record, Product):
            if not record.parent_id and "#" not in record.id:
                self.goods_seen.add(record.id)
            self.chunk.append(self._product(record))
        elif isinstance(record, Header):
            self.header = record
        elif isinstance(record, PriceType):
            self._remember("price_types", record.id, record.name)
            if record.currency:
                self.currencies[record.id] = record.currency
        elif isinstance(record, Warehouse):
            self._remember("stores", record.id, record.name)
        elif isinstance(record, Group):
            self.chunk.append(self._section(record))
        if len(self.chunk) >= CHUNK:
            self._commit()
        if self.counts.records % PROGRESS_EVERY == 0:
            self._commit()
            self.progress(f"Обработано записей: {self.counts.records}")

    def finish(self) -> None:
        self._commit()
        header = self.header
        if (
            self.rules.deactivate_missing
            and header is not None
            and header.kind is FileKind.CATALOG
            and not header.only_changes
            and self.goods_seen
        ):
            self._deactivate_missing()
        for kind in KINDS_ORDER:
            if kind in self.touched:
                queue_flush(self.rt, kind)
        log.info("exchange file %s: %s", self.batch, self.counts.summary())

    def _remember(self, what: str, onec_id: str, name: str) -> None:
        """1C price types and warehouses by name, kept across files: prices*.xml names them only by Ид."""
        self.names[what][onec_id] = name
        self.redis.hset(seen_key(f"{what}-names"), onec_id, name)

    # -- sections and products

    def _section(self, group: Group) -> _Candidate:
        item: dict[str, Any] = {"xml_id": group.id, "name": group.name or group.id}
        if group.parent_id:
            item["parent_xml_id"] = group.parent_id
        if group.deleted:
            item["active"] = False
        return _Candidate(
            SECTIONS, group.id, document_fingerprint(item), lambda _old: _documents(SECTIONS, [item]), group.deleted
        )

    def _product(self, product: Product) -> _Candidate:
        fp = fingerprint("v", product.version) if product.version else fingerprint("d", product.digest)

        def build(old: str | None) -> list[tuple[str, str]]:
            return _documents(PRODUCTS, [self._product_item(product, old)])

        return _Candidate(PRODUCTS, product.id, fp, build, deleted=product.deleted)

    def _active(self, deleted: bool, old: str | None) -> bool | None:
        if deleted:
            return False
        if self.rules.reactivate or (old is not None and old.startswith(DELETED)):
            return True  # the bridge deactivated it, or the mappings ask: 1C sends it again, so it is on again
        return None  # left as the shop has it: an admin's "off" stays off

    def _product_item(self, product: Product, old: str | None) -> dict[str, Any]:
        item: dict[str, Any] = {"xml_id": product.id, "name": product.name or product.full_name or product.id}
        if product.parent_id:
            item["parent_xml_id"] = product.parent_id
        if product.article:
            item["article"] = product.article.strip()
        if product.barcodes:
            item["barcodes"] = list(product.barcodes)
        if product.description:
            item["description"] = product.description
        if product.unit_code and product.unit_code.strip().isdigit():
            item["unit_code"] = product.unit_code.strip()
        vat = vat_rate(product.vat_rate)
        if vat is not None:
            item["vat_rate"] = vat
        if product.group_ids:
            item["section_xml_ids"] = list(product.group_ids)
        properties = {pid: value for pid, value in product.properties if value and value.strip() != ZERO_GUID}
        if properties:
            item["properties"] = properties
        if product.characteristics:
            item["characteristics"] = [{"name": n, "value": v} for n, v in product.characteristics]
        pictures = self._pictures(product.images)
        if pictures:
            item["images"] = pictures  # a picture not uploaded in this exchange keeps the shop's one
        active = self._active(product.deleted, old)
        if active is not None:
            item["active"] = active
        return item

    def _pictures(self, paths: Sequence[str]) -> list[dict[str, str]]:
        if self.images is None:
            return []
        found = []
        for path in paths:
            content = self.images.read(path)
            if content:
                found.append(products.store_image(self.redis, PurePosixPath(path).name, content))
        return found

    # -- offers

    def _offer(self, offer: Offer) -> None:
        if offer.is_variant and offer.name:
            self.chunk.append(self._variant(offer))
        product = entries.product(offer.id)
        if offer.prices is not None:
            items, complete = self._prices(offer, product)
            self.chunk.append(self._part(PRICES, offer.id, items, complete))
        if offer.stock is not None or offer.quantity is not None:
            items, complete = self._stock(offer, product)
            self.chunk.append(self._part(STOCK, offer.id, items, complete))

    def _variant(self, offer: Offer) -> _Candidate:
        base: dict[str, Any] = {"xml_id": offer.id, "parent_xml_id": offer.product_id, "name": offer.name}
        if offer.article:
            base["article"] = offer.article.strip()
        if offer.barcodes:
            base["barcodes"] = list(offer.barcodes)
        if offer.characteristics:
            base["characteristics"] = [{"name": n, "value": v} for n, v in offer.characteristics]
        fp = document_fingerprint(base, str(offer.deleted))

        def build(old: str | None) -> list[tuple[str, str]]:
            active = self._active(offer.deleted, old)
            return _documents(PRODUCTS, [base if active is None else {**base, "active": active}])

        return _Candidate(PRODUCTS, offer.id, fp, build, deleted=offer.deleted)

    def _part(self, what: str, offer_id: str, found: list[tuple[str, str]], complete: bool) -> _Candidate:
        return _Candidate(what, offer_id, entries_fingerprint(found), lambda _old: found, complete=complete)

    def _prices(self, offer: Offer, product: str) -> tuple[list[tuple[str, str]], bool]:
        found: list[tuple[str, str]] = []
        complete = True
        for price in offer.prices or ():
            if price.quantity_from is not None and price.quantity_from > 1:
                continue  # a quantity break: the shop's price per price type is the one from the first unit
            currency = normalise_currency(price.currency or self.currencies.get(price.price_type_id))
            if currency is None:
                reason = (
                    f"offer {offer.id!r}: price type {price.price_type_id!r} has currency "
                    f"{price.currency or self.currencies.get(price.price_type_id)!r}, which is not an ISO code"
                )
                configuration_error(self.counts, PRICES, reason)
                complete = False
                continue
            part, problem = self._named("price_types", price.price_type_id)
            if problem is not None:  # resolved by the flush (mappings, then xmlId), or reported there
                configuration_error(self.counts, PRICES, problem)
                complete = False
            found.append(entries.price(product, part, _number(price.value), currency))
        return found, complete

    def _stock(self, offer: Offer, product: str) -> tuple[list[tuple[str, str]], bool]:
        if offer.stock is None:
            if self.rules.total_store is None:
                reason = (
                    "1C sends only a total amount (Количество) without warehouses; name the shop store it goes "
                    "to as total_store under [exchange] in catalog.toml"
                )
                configuration_error(self.counts, STOCK, reason)
                return [], False
            amount = offer.quantity if offer.quantity is not None else Decimal(0)
            store = entries.named(self.rules.total_store, "")
            return [entries.stock(product, store, _amount(amount))], True
        found: list[tuple[str, str]] = []
        complete = True
        for store_id, amount in offer.stock:
            part, problem = self._named("stores", store_id)
            if problem is not None:
                configuration_error(self.counts, STOCK, problem)
                complete = False
            found.append(entries.stock(product, part, _amount(amount)))
        return found, complete

    def _named(self, what: Literal["price_types", "stores"], onec_id: str) -> tuple[str, str | None]:
        """The key part of a 1C price type or warehouse (the shop's id, else 1C's Ид), and the reason it has none."""
        cached = self.parts.get((what, onec_id))
        if cached is None:
            target = self._target(what, onec_id)
            shop_id = target if isinstance(target, int) else None
            cached = (entries.named(shop_id, onec_id), target if isinstance(target, str) else None)
            if (what, onec_id) in self.resolved:  # not when the shop could not be asked: asked again next time
                self.parts[(what, onec_id)] = cached
        return cached

    def _target(self, what: Literal["price_types", "stores"], onec_id: str) -> int | str | None:
        """The shop's id for a 1C price type or warehouse; the reason (words) when there is none; None: ask later."""
        known = self.resolved.get((what, onec_id), False)
        if known is not False:
            return known
        table = self.rt.mappings.price_types if what == "price_types" else self.rt.mappings.stores
        found: int | str | None = mapped(table, onec_id)
        name = self.names[what].get(onec_id)
        if found is None and name is None:
            stored = self.redis.hget(seen_key(f"{what}-names"), onec_id)
            name = None if stored is None else as_text(stored)
        if found is None and name:
            found = mapped(table, name)
        if found is None:
            try:
                found = by_xml_id(self.rt, what, onec_id)
            except (ShopError, TransientError, PermanentError) as error:
                log.warning("exchange %s: the shop's %s could not be listed (%s)", self.batch, what, error)
                return None  # not cached: the flush resolves it when the shop answers
            if found is None:
                found = unresolved(what, onec_id, name)
        self.resolved[(what, onec_id)] = found
        return found

    # -- the diff and the staging

    def _commit(self) -> None:
        chunk, self.chunk = self.chunk, []
        if not chunk:
            return
        by_what: dict[str, list[_Candidate]] = {}
        for candidate in chunk:
            by_what.setdefault(candidate.what, []).append(candidate)
        for what in KINDS_ORDER:
            candidates = by_what.get(what)
            if candidates:
                self._stage(what, candidates)

    def _stage(self, what: str, candidates: list[_Candidate]) -> None:
        counts = self.counts.of(what)
        stored = self.redis.hmget(seen_key(what), [c.id for c in candidates])
        staged: dict[str, tuple[str, str, str]] = {}  # key → (key, ts, value): the later of two for one key wins
        items = 0
        marks: dict[str, str] = {}
        for candidate, raw in zip(candidates, stored, strict=True):
            old = None if raw is None else as_text(raw)
            new = (DELETED + candidate.fp) if candidate.deleted else candidate.fp
            if old == new and candidate.complete:
                counts.unchanged += 1
                continue
            built = candidate.build(old)
            for key, value in built:
                staged[key] = (key, "", value)
            items += len(built)
            if candidate.complete:
                marks[candidate.id] = new
            if not built or not candidate.complete:
                continue  # counted as an error where it was found
            if candidate.deleted:
                counts.deactivated += 1
            elif old is None:
                counts.added += 1
            else:
                counts.updated += 1
        if staged:
            with inbox.split_first(self.redis, what):
                pending.stage_entries(self.redis, what, list(staged.values()), items=items, batch=self.batch)
            self.touched.add(what)
        if marks:  # only once staged: a crash before this line stages the same items again next time
            self.redis.hset(seen_key(what), mapping={k: v for k, v in marks.items()})

    def _deactivate_missing(self) -> None:
        """Deactivate the goods the bridge staged before that this full file left out, within the cap."""
        known = [
            as_text(field)
            for field, value in self.redis.hscan_iter(seen_key(PRODUCTS), count=5000)
            if "#" not in as_text(field) and not as_text(value).startswith(DELETED)
        ]
        missing = sorted(set(known) - self.goods_seen)
        if not missing:
            return
        share = len(missing) / len(known)
        if share > self.rules.missing_cap:
            reason = (
                f"the full goods file leaves out {len(missing)} of {len(known)} known products ({share:.0%}), more "
                f"than missing_cap = {self.rules.missing_cap} under [exchange] in catalog.toml: none was deactivated"
            )
            configuration_error(self.counts, PRODUCTS, reason, len(missing))
            log.error("exchange %s: %s", self.batch, reason)
            return
        items: list[dict[str, Any]] = []
        marks: dict[str, str] = {}
        for start in range(0, len(missing), CHUNK):
            ids = missing[start : start + CHUNK]
            for onec_id, doc in zip(ids, last_documents(self.redis, PRODUCTS, ids), strict=True):
                if doc is None:
                    configuration_error(
                        self.counts, PRODUCTS, "a product left out of a full file was never sent to the shop"
                    )
                    continue
                items.append({**doc, "active": False})
                marks[onec_id] = DELETED
            if items:
                inbox.stage_after_inbox(self.redis, PRODUCTS, items, [None] * len(items), batch=self.batch)
                self.touched.add(PRODUCTS)
                self.redis.hset(seen_key(PRODUCTS), mapping={k: v for k, v in marks.items()})
                self.counts.of(PRODUCTS).deactivated += len(marks)
            items, marks = [], {}


def last_documents(redis: Redis, kind: str, ids: Sequence[str]) -> list[dict[str, Any] | None]:
    """The document last staged for each id: pending if still waiting, else the one the shop got."""
    fields = [xml_id_key(i) for i in ids]
    waiting = redis.hmget(pending.pending_key(kind), fields)
    applied = pending.applied_values(redis, kind, fields)
    docs: list[dict[str, Any] | None] = []
    for token, done in zip(waiting, applied, strict=True):
        text = None
        if token is not None:
            text = as_text(token).split("|", 2)[2]
        elif done is not None:
            text = as_text(done).split("|", 1)[1]
        doc = json.loads(text) if text else None
        docs.append(doc if isinstance(doc, dict) else None)
    return docs


def _documents(kind: str, items: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, value) texts of whole documents (products, sections), by the kind's own functions."""
    found = KINDS[kind]
    return [(found.key_of(item), found.value_of(item)) for item in items]


def unresolved(what: str, onec_id: str, name: str | None) -> str:
    named = f"{onec_id!r}" + (f" ({name!r})" if name and name != onec_id else "")
    if what == "price_types":
        return (
            f"1C price type {named} is neither under [price_types] in catalog.toml (by Ид or name) nor the xmlId "
            "of a shop price type"
        )
    return (
        f"1C warehouse {named} is neither under [stores] in catalog.toml (by Ид or name) nor the xmlId of a shop store"
    )


_CURRENCIES = {"руб": "RUB", "руб.": "RUB", "рубль": "RUB", "rur": "RUB", "643": "RUB", "р": "RUB", "р.": "RUB"}
_ISO = re.compile(r"^[A-Z]{3}$")


@functools.lru_cache(maxsize=1024)  # once per price of every offer, with a handful of distinct texts
def normalise_currency(text: str | None) -> str | None:
    """``руб`` → RUB as the shop's own import does; an ISO code as is (in capitals); None for anything else."""
    if text is None:
        return None
    cleaned = text.strip()
    if cleaned.casefold() in _CURRENCIES:
        return _CURRENCIES[cleaned.casefold()]
    return cleaned.upper() if _ISO.match(cleaned.upper()) else None


def vat_rate(text: str | None) -> str | None:
    """``20`` / ``20%`` / ``НДС 20%`` → "20"; ``Без НДС`` → "none"; anything else: not sent."""
    if text is None:
        return None
    cleaned = text.strip().casefold()
    if "без" in cleaned or cleaned in ("none", "без ндс"):
        return "none"
    found = re.search(r"\d{1,2}([.,]\d{1,2})?", cleaned)
    return found.group(0).replace(",", ".") if found else None


def _number(value: Decimal) -> float:
    return float(value)


def _amount(value: Decimal) -> float:
    """A negative balance (goods sold ahead of stock in 1C) is nothing available in the shop."""
    return max(0.0, float(value))
