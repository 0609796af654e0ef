"""A CommerceML 2 file of any size → the model's records, streamed in document order.

1C's exchange node sends ``import.xml`` files of hundreds of megabytes, so the file is never held as a tree:
lxml's ``iterparse`` reads it element by element, and each item (``Товар``, ``Предложение``, ``Группа``, …) is
turned into a record and cleared, with its already-read siblings, as soon as it ends. Memory stays at the size
of the largest single item.

The file comes from outside, so the parser is hardened: any DTD is refused before its first element is read
(no entity is ever expanded, no external file or URL is ever fetched), text nodes and depth stay within
libxml2's default limits, and every failure is an ``ExchangeFileError`` worded for the 1C operator.

Tags are read by their local name, so every namespace 1C and Bitrix use (``urn:1C.ru:commerceml_2``,
``urn:1C.ru:commerceml_210``, ``urn:1C.ru:commerceml_3``, none) reads the same; the encoding is the
declaration's (UTF-8 with or without a BOM, windows-1251).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from lxml import etree

from bridge.exchange.model import (
    FileKind,
    Group,
    Header,
    Offer,
    Price,
    PriceType,
    Product,
    Property,
    Record,
    Warehouse,
)

ROOT = "КоммерческаяИнформация"
CATALOG_PARTS = ("Классификатор", "Каталог")
PACKAGES = ("ПакетПредложений", "ИзмененияПакетаПредложений")
DOCUMENTS = ("Документ", "Контейнер")
TRUE_WORDS = ("true", "1", "истина", "да")

Source = IO[bytes] | str | os.PathLike[str]


class ExchangeFileError(Exception):
    """A file that cannot be read; str() is a sentence a 1C operator can act on, in Russian, e.g.
    'Файл offers.xml: ошибка XML в строке 12, столбец 5: ...'."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


_LOCAL: dict[str, str] = {}


def local(tag: Any) -> str:
    """The tag without its namespace: 1C's files differ only by the namespace (or its absence).

    Cached: a file has a few dozen distinct tags and millions of elements.
    """
    try:
        return _LOCAL[tag]
    except KeyError:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if isinstance(tag, str) and len(_LOCAL) < 10_000:
            _LOCAL[tag] = name
        return name
    except TypeError:  # not hashable: not an element's tag
        return ""


def _label(source: Source, name: str) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return str(getattr(source, "name", "") and os.path.basename(str(source.name))) or "обмена"


def _events(source: Source, name: str, events: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """lxml's iterparse with the hardened settings, its errors worded for the operator, and any DTD refused."""
    label = _label(source, name)
    where: str | IO[bytes] = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source
    try:
        parser = etree.iterparse(
            where,
            events=events if "start" in events else ("start", *events),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        first = True
        for event, element in parser:
            if first:
                first = False
                docinfo = element.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
                    raise ExchangeFileError(
                        f"Файл {label}: содержит объявление DOCTYPE (DTD), а файлы обмена CommerceML его не "
                        "содержат; файл отклонён без чтения. Выгрузите файл из 1С заново.",
                        line=element.sourceline,
                    )
                if local(element.tag) != ROOT:
                    raise ExchangeFileError(
                        f"Файл {label}: это не файл обмена CommerceML: корневой элемент "
                        f"«{local(element.tag)}», а ожидается «{ROOT}».",
                        line=element.sourceline,
                    )
            if event in events:
                yield event, element
    except etree.XMLSyntaxError as error:
        line, column = error.position if error.position else (None, None)
        message = error.msg or str(error)
        hint = ""
        if "Premature end" in message or "EndTag" in message or "not properly terminated" in message:
            hint = " Файл оборван: вероятно, он передан не полностью; повторите выгрузку."
        raise ExchangeFileError(
            f"Файл {label}: ошибка XML в строке {line}, столбец {column}: {message}.{hint}", line=line, column=column
        ) from None
    except OSError as error:
        raise ExchangeFileError(f"Файл {label}: не удалось прочитать ({error.strerror or error}).") from None


def _drop(element: Any) -> None:
    """Free an element that was read, and the siblings read before it, so a huge file never builds a tree."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def safe_iterparse(source: Source, *, tags: Iterable[str] = (), name: str = "") -> Iterator[Any]:
    """Each element whose local name is in ``tags``, at its end, read with the hardened settings of this module.

    The element is complete when yielded and is cleared (with the siblings before it) as soon as the caller
    asks for the next one: copy what you need before that. Errors are ``ExchangeFileError``.
    """
    wanted = frozenset(tags)
    for _event, element in _events(source, name, ("end",)):
        if local(element.tag) in wanted:
            yield element
            _drop(element)


# --- reading one element ---------------------------------------------------------------------------------


def _text(element: Any) -> str:
    return (element.text or "").strip() if element is not None else ""


class _Item:
    """The direct children of an element by local name, read once."""

    __slots__ = ("element", "kids")

    def __init__(self, element: Any) -> None:
        self.element = element
        kids: dict[str, list[Any]] = {}
        for child in element:
            kids.setdefault(local(child.tag), []).append(child)
        self.kids = kids

    def all(self, tag: str) -> list[Any]:
        return self.kids.get(tag, [])

    def first(self, tag: str) -> Any:
        found = self.kids.get(tag)
        return found[0] if found else None

    def text(self, tag: str) -> str:
        return _text(self.first(tag))

    def optional(self, tag: str) -> str | None:
        return self.text(tag) or None

    def attr(self, name: str) -> str:
        for key, value in self.element.attrib.items():
            if local(key) == name:
                return str(value).strip()
        return ""

    def pairs(self, container: str, name_tag: str, value_tag: str) -> tuple[tuple[str, str], ...]:
        """(name, value) of each child of ``container`` (every ``Значение`` when one name has several)."""
        found: list[tuple[str, str]] = []
        for box in self.all(container):
            for entry in box:
                fields = _Item(entry)
                key = fields.text(name_tag)
                values = fields.all(value_tag)
                if not values:
                    found.append((key, ""))
                for value in values:
                    found.append((key, _text(value)))
        return tuple(found)

    def deleted(self) -> bool:
        mark = self.text("ПометкаУдаления") or self.attr("ПометкаУдаления")
        status = self.text("Статус") or self.attr("Статус")
        return mark.lower() in TRUE_WORDS or status.lower() == "удален"


def _digest(element: Any) -> str:
    """A digest of the element's content that ignores what 1C varies between two exports of the same thing.

    Whitespace around texts and the order of children are ignored (1C lists properties and requisites in any
    order), except the order of ``Картинка`` (the first is the main picture) and of ``Группы`` (the first
    is the main section).
    """
    return hashlib.blake2b(_canonical(element).encode(), digest_size=16).hexdigest()


def _canonical(element: Any) -> str:
    tag = local(element.tag)
    attrib = element.attrib
    attrs = "".join(sorted(f"@{local(k)}={' '.join(str(v).split())}" for k, v in attrib.items())) if attrib else ""
    text = " ".join(element.text.split()) if element.text else ""
    if len(element) == 0:
        return f"<{tag}{attrs}>{text}</>"
    if tag == "Группы":
        children = [_canonical(child) for child in element]
    else:
        pictures: list[str] = []
        children = []
        for child in element:
            (pictures if local(child.tag) == "Картинка" else children).append(_canonical(child))
        children.sort()
        if pictures:
            children.append("[" + "|".join(pictures) + "]")
    return f"<{tag}{attrs}>{text}{''.join(children)}</>"


class _Numbers:
    """Decimal reading that names the item and the line when 1C sent something that is not a number."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, raw: str, what: str, element: Any) -> Decimal:
        cleaned = raw.replace("\u00a0", "").replace(" ", "").replace(",", ".")
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            line = element.sourceline
            raise ExchangeFileError(
                f"Файл {self.label}: в строке {line} {what} «{raw}» не число; исправьте данные в 1С и "
                "повторите выгрузку.",
                line=line,
            )
        return value

    def optional(self, raw: str, what: str, element: Any) -> Decimal | None:
        return self(raw, what, element) if raw else None


def _group(element: Any, parent_id: str | None) -> Group:
    fields = _Item(element)
    return Group(fields.text("Ид"), fields.text("Наименование"), parent_id, fields.deleted())


def _property(element: Any) -> Property:
    fields = _Item(element)
    values: list[tuple[str, str]] = []
    for box in fields.all("ВариантыЗначений"):
        for choice in box:
            entry = _Item(choice)
            choice_id = entry.text("ИдЗначения") or entry.text("Ид")
            if choice_id:
                values.append((choice_id, entry.text("Значение")))
    return Property(fields.text("Ид"), fields.text("Наименование"), fields.text("ТипЗначений"), tuple(values))


def _price_type(element: Any) -> PriceType:
    fields = _Item(element)
    return PriceType(fields.text("Ид"), fields.text("Наименование"), fields.optional("Валюта"))


def _warehouse(element: Any) -> Warehouse:
    fields = _Item(element)
    return Warehouse(fields.text("Ид"), fields.text("Наименование"))


def _barcodes(fields: _Item) -> tuple[str, ...]:
    return tuple(_text(e) for tag in ("Штрихкод", "ШтрихКод") for e in fields.all(tag) if _text(e))


def _product(element: Any, number: _Numbers) -> Product:
    fields = _Item(element)
    raw_id = fields.text("ИдСайта") or fields.text("Ид")
    traits = fields.pairs("ЗначенияРеквизитов", "Наименование", "Значение")
    trait = dict(traits)
    unit = fields.first("БазоваяЕдиница")
    unit_code = unit_name = None
    if unit is not None:
        unit_fields = _Item(unit)
        text = _text(unit)
        unit_code = unit_fields.attr("Код") or (text if text.isdigit() else "") or None
        unit_name = unit_fields.attr("НаименованиеПолное") or (text if not text.isdigit() else "") or None
    vat = None
    for box in fields.all("СтавкиНалогов"):
        for rate in box:
            vat = vat or (_Item(rate).text("Ставка") or None)
    weight_text = fields.text("Вес") or trait.get("Вес", "").strip()
    return Product(
        id=raw_id,
        name=fields.text("Наименование"),
        digest=_digest(element),
        version=fields.optional("НомерВерсии"),
        parent_id=raw_id.split("#", 1)[0] if "#" in raw_id else None,
        article=fields.optional("Артикул"),
        barcodes=_barcodes(fields),
        description=fields.optional("Описание"),
        full_name=fields.optional("ПолноеНаименование") or (trait.get("Полное наименование", "").strip() or None),
        unit_code=unit_code,
        unit_name=unit_name,
        vat_rate=vat,
        group_ids=tuple(_text(e) for box in fields.all("Группы") for e in box if _text(e)),
        images=tuple(_text(e) for e in fields.all("Картинка") if _text(e)),
        properties=fields.pairs("ЗначенияСвойств", "Ид", "Значение"),
        characteristics=fields.pairs("ХарактеристикиТовара", "Наименование", "Значение"),
        traits=traits,
        weight=number.optional(weight_text, f"вес товара {raw_id}", element),
        deleted=fields.deleted(),
    )


def _prices(fields: _Item, offer_id: str, number: _Numbers) -> tuple[Price, ...] | None:
    boxes = fields.all("Цены")
    if not boxes:
        return None
    prices: list[Price] = []
    for box in boxes:
        for entry in box:
            price = _Item(entry)
            what = f"цена предложения {offer_id}"
            prices.append(
                Price(
                    price_type_id=price.text("ИдТипаЦены"),
                    value=number(price.text("ЦенаЗаЕдиницу"), what, entry),
                    currency=price.optional("Валюта"),
                    quantity_from=number.optional(price.text("КоличествоОт"), what, entry),
                )
            )
    return tuple(prices)


def _stock(
    fields: _Item, offer_id: str, number: _Numbers
) -> tuple[tuple[tuple[str, Decimal], ...] | None, Decimal | None]:
    """Per-warehouse amounts in every layout 1C uses, and the total of an ``Остаток`` that names no warehouse."""
    what = f"остаток предложения {offer_id}"
    amounts: list[tuple[str, Decimal]] = []
    total: Decimal | None = None
    seen = False
    for store in fields.all("Склад"):  # 2.04–2.08: <Склад ИдСклада="…" КоличествоНаСкладе="…"/>
        seen = True
        attrs = _Item(store)
        amounts.append((attrs.attr("ИдСклада"), number(attrs.attr("КоличествоНаСкладе") or "0", what, store)))
    for box in fields.all("КоличествоНаСкладах"):
        seen = True
        for entry in box:
            item = _Item(entry)
            amounts.append((item.text("ИдСклада"), number(item.text("Количество") or "0", what, entry)))
    for box in fields.all("Остатки"):  # prices/rests layout: Остатки/Остаток/Склад(Ид, Количество)
        seen = True
        for rest in box:
            entry = _Item(rest)
            store = entry.first("Склад")
            if store is None:
                if entry.text("Количество"):
                    total = number(entry.text("Количество"), what, rest)
                continue
            inner = _Item(store)
            raw = inner.text("Количество") or entry.text("Количество") or "0"
            amounts.append((inner.text("Ид"), number(raw, what, store)))
    return (tuple(amounts) if amounts or seen else None), total


def _offer(element: Any, number: _Numbers) -> Offer:
    fields = _Item(element)
    offer_id = fields.text("Ид")
    stock, rest_total = _stock(fields, offer_id, number)
    quantity = number.optional(fields.text("Количество"), f"количество предложения {offer_id}", element)
    if stock == () and rest_total is not None:
        stock = None
    return Offer(
        id=offer_id,
        digest=_digest(element),
        version=fields.optional("НомерВерсии"),
        name=fields.optional("Наименование"),
        article=fields.optional("Артикул"),
        barcodes=_barcodes(fields),
        characteristics=fields.pairs("ХарактеристикиТовара", "Наименование", "Значение"),
        prices=_prices(fields, offer_id, number),
        stock=stock,
        quantity=quantity if quantity is not None else rest_total,
        deleted=fields.deleted(),
    )


def _offer_shape(element: Any) -> FileKind:
    """Bitrix's rule: an item of exactly [Ид, Цены] is a price record, of exactly [Ид, Остатки] a rest record."""
    tags = {local(child.tag) for child in element} - {"Ид"}
    if tags == {"Цены"}:
        return FileKind.PRICES
    if tags == {"Остатки"}:
        return FileKind.RESTS
    return FileKind.OFFERS


# --- the file --------------------------------------------------------------------------------------------


class _Reader:
    """The state of one pass: where we are, the header being learnt, records held until the header is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.number = _Numbers(label)
        self.path: list[str] = []
        self.version = ""
        self.kind: FileKind | None = None
        self.only_changes = False
        self.catalog_id: str | None = None
        self.classifier_id: str | None = None
        self.header_sent = False
        self.held: list[Record] = []
        self.groups: list[list[Any]] = []  # open Группа: [element, id or None when not yet yielded]
        self.parts: set[str] = set()

    def header(self, kind: FileKind | None = None) -> Header:
        self.header_sent = True
        chosen = kind or self.kind
        if chosen is None:
            if self.parts & set(PACKAGES):
                chosen = FileKind.OFFERS
            elif self.parts & set(CATALOG_PARTS):
                chosen = FileKind.CATALOG
            else:
                raise ExchangeFileError(
                    f"Файл {self.label}: не содержит ни каталога (Классификатор, Каталог), ни пакета "
                    "предложений, ни документов; это не файл обмена товарами."
                )
        return Header(chosen, self.version, self.only_changes, self.catalog_id, self.classifier_id)

    def flush(self, kind: FileKind | None = None) -> Iterator[Record]:
        if not self.header_sent:
            yield self.header(kind)
        yield from self.held
        self.held.clear()

    def emit(self, record: Record) -> Iterator[Record]:
        if self.header_sent:
            yield record
        else:
            self.held.append(record)

    def within(self, *tags: str) -> bool:
        return any(tag in self.path for tag in tags)


def read_records(source: Source, *, name: str = "") -> Iterator[Record]:
    """The records of a CommerceML file: its ``Header`` first, then the rest in document order.

    For a file of 1C's order documents, only the ``Header`` (the sale side reads those with
    ``safe_iterparse``). Raises ``ExchangeFileError`` on anything unreadable, possibly after some records.
    """
    reader = _Reader(_label(source, name))
    path = reader.path
    for event, element in _events(source, name, ("start", "end")):
        tag = local(element.tag)
        if event == "start":
            depth = len(path)
            path.append(tag)
            if depth == 0:
                reader.version = str(element.get("ВерсияСхемы") or "").strip()
            elif depth == 1:
                reader.parts.add(tag)
                if tag in PACKAGES or tag == "Каталог":
                    changes = str(element.get("СодержитТолькоИзменения") or "").strip().lower()
                    if tag == "ИзмененияПакетаПредложений" or changes in TRUE_WORDS:
                        reader.only_changes = True
                if tag in DOCUMENTS and not reader.header_sent and not (reader.parts - set(DOCUMENTS)):
                    yield reader.header(FileKind.ORDERS)
                    return
            elif tag == "Группа" and reader.within("Классификатор"):
                reader.groups.append([element, None])
            elif tag == "Группы" and reader.groups and path[-2] == "Группа":
                yield from _open_group(reader)
            elif tag == "Товары" and depth == 2 and path[1] == "Каталог":
                reader.kind = reader.kind or FileKind.CATALOG
                yield from reader.flush()
            continue
        path.pop()
        depth = len(path)
        parent = path[-1] if path else ""
        if depth == 2 and tag in ("Ид", "ИдКаталога", "ИдКлассификатора"):
            _learn_id(reader, path[1], tag, _text(element))
            continue
        if tag == "Товар" and parent == "Товары" and path[1] == "Каталог":
            record: Record = _product(element, reader.number)
            if not reader.header_sent:
                yield from reader.flush(FileKind.CATALOG)
            yield record
        elif tag == "Предложение" and parent == "Предложения":
            offer = _offer(element, reader.number)
            if not reader.header_sent:
                yield from reader.flush(_offer_shape(element))
            yield offer
        elif tag == "Группа" and reader.groups and reader.groups[-1][0] is element:
            if reader.groups[-1][1] is None:
                yield from _open_group(reader)
            reader.groups.pop()
        elif tag == "Свойство" and parent == "Свойства" and reader.within("Классификатор"):
            yield from reader.emit(_property(element))
        elif tag == "ТипЦены" and parent == "ТипыЦен" and not reader.within("Предложение", "Товар"):
            yield from reader.emit(_price_type(element))
        elif tag == "Склад" and parent == "Склады" and not reader.within("Предложение", "Товар"):
            yield from reader.emit(_warehouse(element))
        else:
            if depth <= 1:
                element.clear(keep_tail=False)
            continue
        _drop(element)
    yield from reader.flush()


def _learn_id(reader: _Reader, part: str, tag: str, value: str) -> None:
    if not value:
        return
    if tag == "ИдКлассификатора" or (tag == "Ид" and part == "Классификатор"):
        reader.classifier_id = reader.classifier_id or value
    elif tag == "ИдКаталога" or (tag == "Ид" and part == "Каталог"):
        reader.catalog_id = reader.catalog_id or value


def _open_group(reader: _Reader) -> Iterator[Record]:
    """Yield the innermost open group (its Ид and name are read by now), so a parent always precedes its children."""
    entry = reader.groups[-1]
    parent_id = reader.groups[-2][1] if len(reader.groups) > 1 else None
    group = _group(entry[0], parent_id)
    entry[1] = group.id
    yield from reader.emit(group)
