"""The mapping files: what the shop's ids and names are called in 1C, and the shape of the 1C document.

They are TOML, because the people who edit them are integrators, not programmers: comments are allowed and
there is little syntax to get wrong. Unknown keys are errors: a typo such as ``stock_stratgy`` must not
silently fall back to a default and send stock the wrong way. Every problem is reported as one plain line
naming the file and the key, all problems at once, so that ``bridge check`` can be run once and every
mistake fixed in one go.

What lives where. This package is a folder so that the code and the files it cannot work without travel
together in the wheel:

- ``schemas/``: the JSON Schema of each file. They are part of the code, not of the operator's
  configuration, so they are only ever read from here: an operator's folder cannot replace or weaken them.
- ``defaults/``: the three files as the bridge ships them (the common UT 11 statuses, the default catalog
  lookup, 1C's "Customer order" document), with comments, for an operator to copy. They say exactly what
  the built-in defaults below say (a test keeps the two equal), so a missing file means these values.

The operator's folder (``BRIDGE_MAPPINGS_DIR``) holds only their own TOML files, any of the three:

- Unset, the setting is ``./mappings``: that folder when it exists, else the packaged defaults.
- Set to a folder that does not exist: an error at start and in ``bridge check`` (a typo in a path must not
  quietly run the bridge on the defaults); see ``bridge.cli.common``.
- A file missing from the folder: its packaged default is used, and ``bridge check`` names each such file.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import jsonschema

from bridge.errors import PermanentError

STATUSES_FILE = "statuses.toml"
CATALOG_FILE = "catalog.toml"
ORDER_FILE = "order.toml"
FILES = (STATUSES_FILE, CATALOG_FILE, ORDER_FILE)

# Package data (see the module's docstring): never looked up in the operator's folder.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"

StockStrategy = Literal["storeproduct", "document", "quantity"]
# Whether the buyer is found (or created) among 1C's counterparties before an order goes (bridge.orders.counterparty).
CounterpartyMode = Literal["off", "find", "find_or_create"]

DEFAULT_STATUSES: dict[str, str] = {
    "N": "New",
    "P": "In progress",
    "D": "Ready for shipment",
    "F": "Handed to courier",
    "FF": "Completed",
    "C": "Cancelled by client",
}
# 1C's "Customer order" names. Keys are what order.toml calls them; values are the names 1C sees.
DEFAULT_FIELDS: dict[str, str] = {
    "number": "Number",
    "site_id": "SiteId",
    "date": "Date",
    "status": "Status",
    "counterparty": "Counterparty",
    "goods": "Goods",
    "delivery": "Delivery",
    "document_amount": "DocumentAmount",
    "currency": "Currency",
    "comment": "Comment",
    "properties": "Properties",
    "cancelled": "Cancelled",
}
# "id" is filled only when counterparties are looked up in 1C ([counterparty] mode): the 1C ref of the buyer.
DEFAULT_COUNTERPARTY_FIELDS: dict[str, str] = {
    "tin": "TIN",
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "id": "Id",
}
DEFAULT_LINE_FIELDS: dict[str, str] = {
    "article": "Article",
    "xml_id": "XmlId",
    "name": "Name",
    "quantity": "Quantity",
    "price": "Price",
    "amount": "Amount",
    "vat_rate": "VATRate",
}
DEFAULT_DELIVERY_FIELDS: dict[str, str] = {"name": "Name", "price": "Price", "address": "Address"}
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "counterparty_tin": ("INN",),
    "counterparty_name": ("COMPANY", "FIO"),
    "counterparty_email": ("EMAIL",),
    "counterparty_phone": ("PHONE",),
    "delivery_address": ("ADDRESS",),
    "article": ("ARTICLE", "CML2_ARTICLE"),
}
DEFAULT_PROPERTIES: tuple[str, ...] = ("UTM_SOURCE", "PROMO_CODE")
DEFAULT_VAT_FORMAT = "{percent}%"
DEFAULT_VAT_NONE = "Без НДС"

# The tables of order.toml that name fields, with the nested object they belong to (for ``field``).
_FIELD_GROUPS: dict[str, tuple[str, dict[str, str]]] = {
    "fields": ("", DEFAULT_FIELDS),
    "counterparty_fields": ("counterparty", DEFAULT_COUNTERPARTY_FIELDS),
    "line_fields": ("goods", DEFAULT_LINE_FIELDS),
    "delivery_fields": ("delivery", DEFAULT_DELIVERY_FIELDS),
}


class MappingError(PermanentError):
    """The mapping files have mistakes; ``problems`` holds one plain line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "the mappings are not valid")


@dataclass(frozen=True)
class ProductLookup:
    """How a product named by 1C (``xml_id`` or ``sku``) is found in the shop's catalog, and how 1C's
    nomenclature is written to it.

    ``iblock_id`` None: the shop's product catalog, as ``catalog.catalog.list`` names it (or
    ``BRIDGE_SHOP_IBLOCK_ID``). ``update_existing`` False leaves the descriptive fields of products the shop
    already has as its admins made them. ``properties``: the 1C property ids (the shop property's ``xmlId``)
    whose values are written.
    """

    iblock_id: int | None = None
    article_property: str = "CML2_ARTICLE"
    lookup: tuple[str, ...] = ("xml_id", "article")
    barcode_property: str = "CML2_BAR_CODE"
    update_existing: bool = True
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentStrategy:
    """What the ``document`` stock strategy writes into ``catalog.document.add`` (both fields are required)."""

    currency: str = "RUB"
    responsible_id: int = 1


@dataclass(frozen=True)
class ExchangeRules:
    """What the CommerceML exchange may do beyond writing what 1C sent (``[exchange]`` in catalog.toml).

    ``deactivate_missing``: a product the bridge staged before but a full (not "only changes") goods file
    leaves out is deactivated; refused when more than ``missing_cap`` (a share) of the known products would
    go. ``reactivate``: every product 1C sends (not marked deleted) is switched on, even one an admin
    switched off in the shop. ``total_store``: the shop store that an offer's total ``Количество`` goes to
    when 1C sends no per-warehouse amounts.
    """

    deactivate_missing: bool = False
    missing_cap: float = 0.1
    reactivate: bool = False
    total_store: int | None = None


@dataclass(frozen=True)
class DocumentMapping:
    """The shape of the order document sent to 1C, with every name configurable."""

    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    counterparty_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_COUNTERPARTY_FIELDS))
    line_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LINE_FIELDS))
    delivery_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DELIVERY_FIELDS))
    properties: tuple[str, ...] = DEFAULT_PROPERTIES
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    vat_format: str = DEFAULT_VAT_FORMAT
    vat_none: str = DEFAULT_VAT_NONE
    vat_rates: Mapping[str, str] = field(default_factory=dict)

    def field(self, name: str) -> str:
        """The configured name of a field given by its contract name: "Number", "Goods.Price", "Delivery.Name".

        Code that edits a stored document (e.g. setting Cancelled on an order the shop deleted) uses this so
        it keeps working when an integrator renames the fields.
        """
        head, _, tail = name.partition(".")
        if not tail:
            return self.fields[_key_for(head, DEFAULT_FIELDS)]
        groups = {
            "counterparty": (self.counterparty_fields, DEFAULT_COUNTERPARTY_FIELDS),
            "goods": (self.line_fields, DEFAULT_LINE_FIELDS),
            "delivery": (self.delivery_fields, DEFAULT_DELIVERY_FIELDS),
        }
        group = groups.get(_key_for(head, DEFAULT_FIELDS))
        if group is None:
            raise KeyError(name)
        names, defaults = group
        return names[_key_for(tail, defaults)]

    def vat_text(self, rate: Any) -> str:
        """How a basket line's ``vatRate`` (a fraction such as 0.2, or None) is written for 1C."""
        if rate is None or (isinstance(rate, str) and not rate.strip()):
            return self.vat_none
        try:
            value = Decimal(str(rate).strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"VAT rate {rate!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"VAT rate {rate!r} is not a rate")
        percent = value * 100 if value <= 1 else value  # 0.2 as the shop sends it; 20 tolerated
        text = _plain_number(percent)
        if text in self.vat_rates:
            return self.vat_rates[text]
        return self.vat_format.format(percent=text)


@dataclass(frozen=True)
class Mappings:
    """Everything the mapping files say. ``send_statuses`` None means every shop status is sent to 1C."""

    statuses: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    statuses_to_shop: dict[str, str] = field(default_factory=lambda: {v: k for k, v in DEFAULT_STATUSES.items()})
    send_statuses: frozenset[str] | None = None
    stores: dict[str, int] = field(default_factory=dict)
    price_types: dict[str, int] = field(default_factory=dict)
    products: ProductLookup = field(default_factory=ProductLookup)
    stock_strategy: StockStrategy = "storeproduct"
    document_strategy: DocumentStrategy = field(default_factory=DocumentStrategy)
    exchange: ExchangeRules = field(default_factory=ExchangeRules)
    document: DocumentMapping = field(default_factory=DocumentMapping)
    counterparty_mode: CounterpartyMode = "off"
    directory: Path | None = None
    files: tuple[str, ...] = ()

    def shop_status(self, name: str) -> str | None:
        """The shop status id for a 1C status name (exact first, then ignoring case and outer spaces)."""
        if name in self.statuses_to_shop:
            return self.statuses_to_shop[name]
        wanted = name.strip().casefold()
        for onec_name, shop_id in self.statuses_to_shop.items():
            if onec_name.strip().casefold() == wanted:
                return shop_id
        return None


def default_mappings() -> Mappings:
    """The shipped defaults, as if the mappings folder were empty."""
    return Mappings()


def load_mappings(directory: Path | str, *, schema_dir: Path | None = None) -> Mappings:
    """Read, check and build the mappings in ``directory``; ``MappingError`` lists every problem found.

    A folder that does not exist gives the defaults (``describe`` says so, so ``bridge check`` shows it);
    refusing a folder the operator named but that is missing is the command line's job, which knows whether
    the setting was given.
    """
    directory = Path(directory)
    schemas = _schema_dir(schema_dir)
    problems: list[str] = []
    if directory.exists() and not directory.is_dir():
        raise MappingError([f"{_show_path(directory)}: is a file, but the mappings setting must name a folder"])
    documents: dict[str, dict[str, Any]] = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.toml")):
            if path.name not in FILES:
                hint = _did_you_mean(path.name, FILES)
                problems.append(f"{_show_path(path)}: unknown mapping file{hint} (the bridge reads {', '.join(FILES)})")
        for name in FILES:
            path = directory / name
            if not path.is_file():
                continue
            data = _read_toml(path, problems)
            if data is None:
                continue
            file_problems = _validate(path, data, schemas)
            problems.extend(file_problems)
            if not file_problems:
                documents[name] = data
    builders = (
        (STATUSES_FILE, _build_statuses),
        (CATALOG_FILE, _build_catalog),
        (ORDER_FILE, _build_order),
    )
    built: dict[str, Any] = {}
    for name, builder in builders:
        built.update(builder(documents.get(name, {}), _show_path(directory / name), problems))
    if problems:
        raise MappingError(problems)
    return Mappings(**built, directory=directory, files=tuple(n for n in FILES if n in documents))


COUNTERPARTY_MODES: dict[str, str] = {
    "off": "not looked up in 1C (documents go without Counterparty.Id)",
    "find": "found in 1C by TIN, else e-mail (the id remembered); documents go without Id when 1C has none",
    "find_or_create": "found in 1C by TIN, else e-mail (the id remembered), and created in 1C when it has none",
}


def describe(mappings: Mappings) -> list[str]:
    """A few lines for ``bridge check``: what was loaded and what it means."""
    lines: list[str] = []
    if mappings.directory is None:
        lines.append(f"mappings: the packaged defaults ({DEFAULTS_DIR})")
    elif not mappings.directory.is_dir():
        lines.append(
            f"mappings: folder {_show_path(mappings.directory)} not found, using the packaged defaults ({DEFAULTS_DIR})"
        )
    else:
        defaulted = [n for n in FILES if n not in mappings.files]
        read = ", ".join(mappings.files) or "no files"
        extra = f"; packaged defaults for {', '.join(defaulted)}" if defaulted else ""
        lines.append(f"mappings: {_show_path(mappings.directory)} ({read}{extra})")
    pairs = ", ".join(f"{k} → {v}" for k, v in mappings.statuses.items())
    sent = "all" if mappings.send_statuses is None else ", ".join(sorted(mappings.send_statuses))
    lines.append(f"order statuses: {pairs}; sent to 1C: {sent}")
    lines.append(
        f"stores: {_count(mappings.stores, '1C warehouse')} mapped; "
        f"price types: {_count(mappings.price_types, '1C price type')} mapped"
    )
    products = mappings.products
    ways = " then ".join(
        f"article (property {products.article_property})" if way == "article" else way for way in products.lookup
    )
    lines.append(f"products found by {ways}")
    if not products.update_existing:
        lines.append("nomenclature: products the shop already has keep their descriptive fields")
    if products.properties:
        lines.append(f"nomenclature: properties written: {', '.join(products.properties)}")
    strategy: str = mappings.stock_strategy
    if strategy == "document":
        doc = mappings.document_strategy
        strategy += f" (inventory documents in {doc.currency}, responsible user {doc.responsible_id})"
    lines.append(f"stock strategy: {strategy}")
    document = mappings.document
    lines.append(
        f"1C document: {', '.join(document.fields.values())}; VAT 20% → {document.vat_text('0.2')!r}, "
        f"none → {document.vat_none!r}; properties: {', '.join(document.properties) or 'none'}"
    )
    lines.append(f"counterparties: {COUNTERPARTY_MODES[mappings.counterparty_mode]}")
    return lines


# --- reading and checking ---------------------------------------------------------------------------


def _schema_dir(override: Path | None) -> Path:
    schemas = override if override is not None else SCHEMA_DIR
    if not (schemas / "statuses.schema.json").is_file():  # a broken install, not an operator's mistake
        raise MappingError([f"the mapping schemas are missing: no statuses.schema.json in {schemas}"])
    return schemas


@functools.lru_cache(maxsize=16)
def _validator(schema_path: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    shown = _show_path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        problems.append(f"{shown}: cannot be read ({error.strerror or error})")
        return None
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError:
        problems.append(f"{shown}: is not UTF-8 text (save it as UTF-8)")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{shown}: is not valid TOML: {error}")
        return None


def _validate(path: Path, data: dict[str, Any], schemas: Path) -> list[str]:
    validator = _validator(schemas / path.name.replace(".toml", ".schema.json"))
    shown = _show_path(path)
    messages: list[str] = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        messages.extend(f"{shown}: {message}" for message in _explain(error))
    return list(dict.fromkeys(messages))


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a table",
}


def _explain(error: jsonschema.ValidationError) -> list[str]:
    """One plain line per schema error, naming the key as the TOML file spells it."""
    # jsonschema types these as "Any or unset"; every error that reaches here carries both.
    instance: Any = error.instance
    value: Any = error.validator_value
    path = list(error.absolute_path)
    where = _dotted(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    about = schema.get("description")
    about_text = f" ({about})" if about else ""
    got = _shown_value(instance)
    if "propertyNames" in error.absolute_schema_path:
        return [f"{where or 'the file'}: the key {got} is not {about or 'allowed'}"]
    kind = error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        extras = [k for k in instance if k not in known]
        lines = []
        for extra in extras:
            hint = _did_you_mean(extra, known)
            choices = f" (allowed here: {', '.join(known)})" if known and not hint else ""
            lines.append(f"unknown key {_dotted([*path, extra])}{hint}{choices}")
        return lines
    prefix = where or "the file"
    if kind == "type":
        names: list[str] = value if isinstance(value, list) else [value]
        wanted = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
        return [f"{prefix} must be {wanted}{about_text}, got {got}"]
    if kind == "enum":
        options = ", ".join(_shown_value(v) for v in value)
        return [f"{prefix} must be one of {options}, got {got}"]
    if kind == "minLength":
        return [f"{prefix} must not be empty{about_text}"]
    if kind in ("minItems", "minProperties"):
        return [f"{prefix} must not be empty"]
    if kind == "minimum":
        return [f"{prefix} must be at least {value}{about_text}, got {got}"]
    if kind == "pattern":
        return [f"{prefix} must be {about or 'in the expected form'}, got {got}"]
    if kind == "uniqueItems":
        items = list(instance)
        repeated = next((item for i, item in enumerate(items) if item in items[:i]), None)
        return [f"{prefix} lists {_shown_value(repeated)} more than once"]
    return [f"{prefix}: {error.message}"]


# --- building -----------------------------------------------------------------------------------------


def _build_statuses(data: dict[str, Any], shown: str, problems: list[str]) -> dict[str, Any]:
    statuses: dict[str, str] = dict(data.get("statuses", DEFAULT_STATUSES))
    reverse: dict[str, str] = {}
    for shop_id, onec_name in statuses.items():
        if onec_name in reverse:
            problems.append(
                f"{shown}: statuses.{reverse[onec_name]} and statuses.{shop_id} both map to {_shown_value(onec_name)}; "
                "each 1C status name must be used once, or a status coming back from 1C would be ambiguous"
            )
        else:
            reverse[onec_name] = shop_id
    send = data.get("send", ["*"])
    send_statuses: frozenset[str] | None
    if "*" in send:
        send_statuses = None
        if len(send) > 1:
            problems.append(f'{shown}: send lists "*" (all statuses) together with others; use one or the other')
    else:
        send_statuses = frozenset(send)
        for status in send:
            if status not in statuses:
                hint = _did_you_mean(status, list(statuses))
                problems.append(f"{shown}: send lists {_shown_value(status)}, which is not under [statuses]{hint}")
    return {"statuses": statuses, "statuses_to_shop": reverse, "send_statuses": send_statuses}


def _build_catalog(data: dict[str, Any], shown: str, problems: list[str]) -> dict[str, Any]:
    stores = {str(k): int(v) for k, v in data.get("stores", {}).items()}
    price_types = {str(k): int(v) for k, v in data.get("price_types", {}).items()}
    for table, mapping, what in (("stores", stores, "shop store"), ("price_types", price_types, "catalogGroupId")):
        _report_duplicates(mapping, shown, table, f"{what} %s", problems)
    products_data = data.get("products", {})
    defaults = ProductLookup()
    products = ProductLookup(
        iblock_id=int(products_data["iblock_id"]) if "iblock_id" in products_data else None,
        article_property=str(products_data.get("article_property", defaults.article_property)),
        lookup=tuple(products_data.get("lookup", defaults.lookup)),
        barcode_property=str(products_data.get("barcode_property", defaults.barcode_property)),
        update_existing=bool(products_data.get("update_existing", defaults.update_existing)),
        properties=tuple(str(p) for p in products_data.get("properties", defaults.properties)),
    )
    strategy_data = data.get("document_strategy", {})
    doc_defaults = DocumentStrategy()
    document_strategy = DocumentStrategy(
        currency=str(strategy_data.get("currency", doc_defaults.currency)),
        responsible_id=int(strategy_data.get("responsible_id", doc_defaults.responsible_id)),
    )
    exchange_data = data.get("exchange", {})
    rules = ExchangeRules()
    exchange = ExchangeRules(
        deactivate_missing=bool(exchange_data.get("deactivate_missing", rules.deactivate_missing)),
        missing_cap=float(exchange_data.get("missing_cap", rules.missing_cap)),
        reactivate=bool(exchange_data.get("reactivate", rules.reactivate)),
        total_store=exchange_data.get("total_store", rules.total_store),
    )
    return dict(  # the fields of Mappings, by keyword
        stores=stores,
        price_types=price_types,
        products=products,
        stock_strategy=data.get("stock_strategy", "storeproduct"),
        document_strategy=document_strategy,
        exchange=exchange,
    )


def _build_order(data: dict[str, Any], shown: str, problems: list[str]) -> dict[str, Any]:
    groups: dict[str, dict[str, str]] = {}
    for table, (_, defaults) in _FIELD_GROUPS.items():
        names = {**defaults, **data.get(table, {})}  # a table overrides only the names it gives
        _report_duplicates(names, shown, table, "the field name %s", problems)
        groups[table] = names
    sources = dict(DEFAULT_SOURCES)
    sources.update({k: tuple(v) for k, v in data.get("sources", {}).items()})
    vat = data.get("vat", {})
    vat_format = vat.get("format", DEFAULT_VAT_FORMAT)
    try:
        vat_format.format(percent="20")
        if "{percent}" not in vat_format:
            raise KeyError("percent")
    except (KeyError, IndexError, ValueError):
        problems.append(
            f"{shown}: vat.format must contain {{percent}} and no other {{…}}, got {_shown_value(vat_format)}"
        )
    rates = {_plain_number(Decimal(k)): v for k, v in vat.get("rates", {}).items()}
    document = DocumentMapping(
        fields=groups["fields"],
        counterparty_fields=groups["counterparty_fields"],
        line_fields=groups["line_fields"],
        delivery_fields=groups["delivery_fields"],
        properties=tuple(data.get("properties", DEFAULT_PROPERTIES)),
        sources=sources,
        vat_format=vat_format,
        vat_none=vat.get("none", DEFAULT_VAT_NONE),
        vat_rates=rates,
    )
    return {"document": document, "counterparty_mode": data.get("counterparty", {}).get("mode", "off")}


def _report_duplicates(mapping: Mapping[str, Any], shown: str, table: str, what: str, problems: list[str]) -> None:
    owners: dict[Any, str] = {}
    for key, value in mapping.items():
        if value in owners:
            problems.append(
                f"{shown}: {_dotted([table, owners[value]])} and {_dotted([table, key])} both give "
                f"{what % _shown_value(value)}; each must be used once"
            )
        else:
            owners[value] = key


# --- small helpers ------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _dotted(path: Iterable[Any]) -> str:
    """A key path as TOML spells it: statuses.P, stores."main store", send[2]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _BARE_KEY.match(part) else json.dumps(part, ensure_ascii=False)
            text += f".{key}" if text else key
    return text


def _shown_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {_shown_value(close[0])}?)" if close else ""


def _key_for(name: str, defaults: Mapping[str, str]) -> str:
    """The order.toml key of a contract field name ("DocumentAmount" → "document_amount"), or the key itself."""
    if name in defaults:
        return name
    for key, default in defaults.items():
        if default == name:
            return key
    raise KeyError(name)


def _plain_number(value: Decimal) -> str:
    """20.0 → "20", 7.50 → "7.5": how a percent is written and looked up."""
    return f"{value.normalize():f}"


def _count(mapping: Mapping[str, Any], what: str) -> str:
    return f"{len(mapping)} {what}{'' if len(mapping) == 1 else 's'}"


def _show_path(path: Path) -> str:
    """A path as a person would type it: relative to the working folder when it is inside it."""
    try:
        return os.path.relpath(path) if path.is_absolute() and Path.cwd() in path.parents else str(path)
    except ValueError:
        return str(path)
