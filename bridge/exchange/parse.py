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

import msgspec
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


def _events(source: Source, name: str, events: tuple[str, ...], tags: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """lxml's iterparse of ``tags`` (any namespace) with the hardened settings, errors worded for the operator.

    Only the tags asked for reach Python (the rest of an item is read from its element in C), which is most
    of the speed on a file of millions of elements. Any DTD is refused at the first element.
    """
    label = _label(source, name)
    where: str | HeadKept = os.fspath(source) if isinstance(source, (str, os.PathLike)) else HeadKept(source)
    try:
        parser = etree.iterparse(
            where,
            events=events,
            tag=[f"{{*}}{tag}" for tag in {ROOT, *tags}],
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        checked = False
        for event, element in parser:
            if not checked:
                _check_root(element.getroottree(), label)
                checked = True
            yield event, element
        if not checked:
            _check_root(parser.root.getroottree(), label)
    except etree.XMLSyntaxError as error:
        line, column = error.position if error.position else (None, None)
        if declares_dtd(where):  # refused by libxml2 itself (e.g. entity amplification) before its first event
            raise _dtd_refusal(label, line) from None
        message = error.msg or str(error)
        hint = ""
        if "Premature end" in message or "EndTag" in message or "not properly terminated" in message:
            hint = " Файл оборван: вероятно, он передан не полностью; повторите выгрузку."
        raise ExchangeFileError(
            f"Файл {label}: ошибка XML в строке {line}, столбец {column}: {message}.{hint}", line=line, column=column
        ) from None
    except OSError as error:
        raise ExchangeFileError(f"Файл {label}: не удалось прочитать ({error.strerror or error}).") from None


HEAD_BYTES = 64 * 1024  # where a DOCTYPE can be: before the root element, after at most a declaration and comments


class HeadKept:
    """A stream for lxml to read that keeps its first ``HEAD_BYTES``, to tell afterwards why a file was refused."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        return data


def declares_dtd(where: str | HeadKept) -> bool:
    """Whether the file has a DOCTYPE, for a file libxml2 refused before the reader's own check could see it:
    depending on its version, libxml2 stops an entity bomb ("entity amplification") before the first event, and
    the operator is told of the DTD either way. Also used by the sale side's reader."""
    if isinstance(where, HeadKept):
        head = where.head
    else:
        try:
            with open(where, "rb") as file:
                head = file.read(HEAD_BYTES)
        except OSError:
            return False
    return b"<!DOCTYPE" in head


def _dtd_refusal(label: str, line: int | None) -> ExchangeFileError:
    return ExchangeFileError(
        f"Файл {label}: содержит объявление DOCTYPE (DTD), а файлы обмена CommerceML его не содержат; файл "
        "отклонён без чтения. Выгрузите файл из 1С заново.",
        line=line,
    )


def _check_root(tree: Any, label: str) -> None:
    docinfo = tree.docinfo
    root = tree.getroot()
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _dtd_refusal(label, root.sourceline if root is not None else None)
    if root is None or local(root.tag) != ROOT:
        found = local(root.tag) if root is not None else ""
        raise ExchangeFileError(
            f"Файл {label}: это не файл обмена CommerceML: корневой элемент «{found}», а ожидается «{ROOT}».",
            line=root.sourceline if root is not None else None,
        )


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
    for _event, element in _events(source, name, ("end",), wanted):
        if local(element.tag) in wanted:
            yield element
            _drop(element)


# --- reading one element ---------------------------------------------------------------------------------


def _text(element: Any) -> str:
    return (element.text or "").strip() if element is not None else ""


def _kids(element: Any) -> dict[str, list[Any]]:
    """The direct children of an element by local name, in one pass (the reader's innermost loop)."""
    kids: dict[str, list[Any]] = {}
    names = _LOCAL
    for child in element:
        tag = child.tag
        try:
            name = names[tag]
        except (KeyError, TypeError):
            name = local(tag)
        found = kids.get(name)
        if found is None:
            kids[name] = [child]
        else:
            found.append(child)
    return kids


def _texts(element: Any, wanted: frozenset[str]) -> dict[str, list[str]]:
    """The texts of the children of ``element`` whose local names are ``wanted``, without other objects per child."""
    found: dict[str, list[str]] = {}
    names = _LOCAL
    for child in element:
        tag = child.tag
        try:
            name = names[tag]
        except (KeyError, TypeError):
            name = local(tag)
        if name in wanted:
            text = (child.text or "").strip()
            known = found.get(name)
            if known is None:
                found[name] = [text]
            else:
                known.append(text)
    return found


def _first(texts: dict[str, list[str]], tag: str) -> str:
    found = texts.get(tag)
    return found[0] if found else ""


class _Item:
    """The direct children of an element by local name, read once."""

    __slots__ = ("element", "kids")

    def __init__(self, element: Any) -> None:
        self.element = element
        self.kids = _kids(element)

    def all(self, tag: str) -> list[Any]:
        return self.kids.get(tag, [])

    def first(self, tag: str) -> Any:
        found = self.kids.get(tag)
        return found[0] if found else None

    def text(self, tag: str) -> str:
        found = self.kids.get(tag)
        return (found[0].text or "").strip() if found else ""

    def optional(self, tag: str) -> str | None:
        return self.text(tag) or None

    def attr(self, name: str) -> str:
        value = self.element.get(name)
        if value is not None:
            return str(value).strip()
        for key, value in self.element.attrib.items():
            if local(key) == name:
                return str(value).strip()
        return ""

    def pairs(self, container: str, name_tag: str, value_tag: str) -> tuple[tuple[str, str], ...]:
        """(name, value) of each child of ``container`` (every ``Значение`` when one name has several)."""
        found: list[tuple[str, str]] = []
        wanted = frozenset((name_tag, value_tag))
        for box in self.kids.get(container, ()):
            for entry in box:
                texts = _texts(entry, wanted)
                key = _first(texts, name_tag)
                values = texts.get(value_tag)
                if not values:
                    found.append((key, ""))
                else:
                    found.extend((key, value) for value in values)
        return tuple(found)

    def deleted(self) -> bool:
        kids = self.kids
        if "ПометкаУдаления" not in kids and "Статус" not in kids and not self.element.attrib:
            return False
        mark = self.text("ПометкаУдаления") or self.attr("ПометкаУдаления")
        status = self.text("Статус") or self.attr("Статус")
        return mark.lower() in TRUE_WORDS or status.lower() == "удален"


_encode = msgspec.json.Encoder(decimal_format="string").encode
_UNORDERED = frozenset({"barcodes", "properties", "characteristics", "traits", "stock", "prices"})


def _digest(fields: dict[str, Any]) -> str:
    """A digest of an item as read, that ignores what 1C varies between two exports of the same thing.

    Computed from the fields read (their texts already trimmed), so a change 1C makes anywhere the import
    looks changes it, and formatting does not: runs of whitespace count as one, and the order of barcodes,
    properties, characteristics, requisites, prices and warehouses is ignored (1C lists them in any order);
    the order of ``Группы`` (the first is the main section) and ``Картинка`` (the first is the main picture)
    counts.
    """
    parts: list[Any] = []
    for key in sorted(fields):
        value = fields[key]
        if isinstance(value, str):
            value = " ".join(value.split())
        elif key in _UNORDERED and value:
            value = sorted(value)
        parts.append(key)
        parts.append(value)
    return hashlib.blake2b(_encode(parts), digest_size=16).hexdigest()


class _Numbers:
    """Decimal reading that names the item and the line when 1C sent something that is not a number."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, raw: str, what: str, element: Any) -> Decimal:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            try:
                value = Decimal(raw.replace("\u00a0", "").replace(" ", "").replace(",", "."))
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
    values: dict[str, Any] = dict(
        id=raw_id,
        name=fields.text("Наименование"),
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
    return Product(digest=_digest(values), **values)


_PRICE_FIELDS = frozenset(("ИдТипаЦены", "ЦенаЗаЕдиницу", "Валюта", "КоличествоОт"))


def _prices(fields: _Item, offer_id: str, number: _Numbers) -> tuple[Price, ...] | None:
    boxes = fields.all("Цены")
    if not boxes:
        return None
    prices: list[Price] = []
    what = f"цена предложения {offer_id}"
    for box in boxes:
        for entry in box:
            texts = _texts(entry, _PRICE_FIELDS)
            step = _first(texts, "КоличествоОт")
            prices.append(
                Price(
                    price_type_id=_first(texts, "ИдТипаЦены"),
                    value=number(_first(texts, "ЦенаЗаЕдиницу"), what, entry),
                    currency=_first(texts, "Валюта") or None,
                    quantity_from=number(step, what, entry) if step else None,
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
        store_id, amount = store.get("ИдСклада"), store.get("КоличествоНаСкладе")
        if store_id is None or amount is None:  # a namespaced attribute: rare, read the slow way
            attrs = _Item(store)
            store_id, amount = attrs.attr("ИдСклада"), attrs.attr("КоличествоНаСкладе")
        amounts.append((store_id.strip(), number(amount.strip() or "0", what, store)))
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
    values: dict[str, Any] = dict(
        id=offer_id,
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
    return Offer(**values)


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
    """The state of one pass: the header being learnt, and the records held until it is known."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.number = _Numbers(label)
        self.version = ""
        self.kind: FileKind | None = None
        self.only_changes = False
        self.catalog_id: str | None = None
        self.classifier_id: str | None = None
        self.header_sent = False
        self.held: list[Record] = []
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

    def emit(self, records: Iterable[Record]) -> Iterator[Record]:
        if self.header_sent:
            yield from records
        else:
            self.held.extend(records)

    def learn(self, part: Any) -> None:
        """The ids a part (``Классификатор``, ``Каталог``, a package) names in its own children."""
        tag = local(part.tag)
        for child in part:
            name = local(child.tag)
            value = _text(child)
            if not value:
                continue
            if name == "ИдКлассификатора" or (name == "Ид" and tag == "Классификатор"):
                self.classifier_id = self.classifier_id or value
            elif name == "ИдКаталога" or (name == "Ид" and tag == "Каталог"):
                self.catalog_id = self.catalog_id or value


# The tags whose events reach Python; everything inside an item is read from the item's element.
_TAGS = (
    *CATALOG_PARTS, *PACKAGES, *DOCUMENTS, "Группы", "Свойства", "ТипыЦен", "Склады", "Товары", "Товар",
    "Предложения", "Предложение",
)  # fmt: skip


def read_records(source: Source, *, name: str = "") -> Iterator[Record]:
    """The records of a CommerceML file: its ``Header`` first, then the rest in document order.

    For a file of 1C's order documents, only the ``Header`` (the sale side reads those with
    ``safe_iterparse``). Raises ``ExchangeFileError`` on anything unreadable, possibly after some records.
    """
    reader = _Reader(_label(source, name))
    for event, element in _events(source, name, ("start", "end"), _TAGS):
        tag = local(element.tag)
        parent = element.getparent()
        if event == "start":
            if parent is None:
                reader.version = str(element.get("ВерсияСхемы") or "").strip()
            elif parent.getparent() is None:
                reader.parts.add(tag)
                if tag in PACKAGES or tag == "Каталог":
                    changes = str(element.get("СодержитТолькоИзменения") or "").strip().lower()
                    if tag == "ИзмененияПакетаПредложений" or changes in TRUE_WORDS:
                        reader.only_changes = True
                if tag in DOCUMENTS and not reader.header_sent and not (reader.parts - set(DOCUMENTS)):
                    yield reader.header(FileKind.ORDERS)
                    return
            elif tag == "Товары" and local(parent.tag) == "Каталог":
                reader.learn(parent)
                reader.kind = reader.kind or FileKind.CATALOG
                yield from reader.flush()
            elif tag == "Предложения":
                reader.learn(parent)
            continue
        if parent is None:
            continue
        above = local(parent.tag)
        if tag == "Товар" and above == "Товары":
            record: Record = _product(element, reader.number)
            if not reader.header_sent:
                yield from reader.flush(FileKind.CATALOG)
            yield record
        elif tag == "Предложение" and above == "Предложения":
            offer = _offer(element, reader.number)
            if not reader.header_sent:
                yield from reader.flush(_offer_shape(element))
            yield offer
        else:
            # a list of the classifier or package (read whole: it is small), or a part of the root, whose ids
            # are learnt before it goes; cleared, but not its siblings, which name the part
            if tag == "Группы" and above == "Классификатор":
                yield from reader.emit(_groups(element, None))
            elif tag == "Свойства" and above == "Классификатор":
                yield from reader.emit(_property(e) for e in element if local(e.tag) == "Свойство")
            elif tag == "ТипыЦен" and above in ("Классификатор", *PACKAGES):
                yield from reader.emit(_price_type(e) for e in element if local(e.tag) == "ТипЦены")
            elif tag == "Склады" and above in ("Классификатор", *PACKAGES):
                yield from reader.emit(_warehouse(e) for e in element if local(e.tag) == "Склад")
            elif parent.getparent() is None:
                reader.learn(element)
            else:
                continue
            element.clear(keep_tail=False)
            continue
        _drop(element)
    yield from reader.flush()


def _groups(box: Any, parent_id: str | None) -> Iterator[Group]:
    """The groups of a ``Группы`` tree, each before the groups inside it."""
    for element in box:
        if local(element.tag) != "Группа":
            continue
        group = _group(element, parent_id)
        yield group
        for inner in element:
            if local(inner.tag) == "Группы":
                yield from _groups(inner, group.id)
