"""CommerceML 2 files written from the documented layouts, for tests and benchmarks (never copied samples).

The inputs are the parser's own records (``bridge.exchange.model``), so a test can write a file from records
and check that reading it gives them back. ``synthetic_export`` streams a big ``import.xml`` + ``offers.xml``
pair to disk without holding either in memory.

Layouts follow 1C's output per ``ВерсияСхемы``: the namespace (``urn:1C.ru:commerceml_2`` up to 2.09,
``…_210`` for 2.10, ``…_3`` for 3.x), deletion as ``Статус="Удален"`` before 2.05 and ``ПометкаУдаления``
after, per-warehouse stock as ``<Склад ИдСклада= КоличествоНаСкладе=/>`` in 2.x and ``Остатки`` in 3.x and in
the separate rests files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from bridge.exchange.model import Group, Offer, Price, PriceType, Product, Property, Warehouse

VERSIONS = ("2.03", "2.04", "2.05", "2.07", "2.08", "2.09", "2.10", "3.1")
CATALOG_ID = "cat-0a1b2c3d-0000-0000-0000-000000000001"
CLASSIFIER_ID = "cls-0a1b2c3d-0000-0000-0000-000000000001"


def namespace_of(version: str) -> str:
    if version.startswith("3"):
        return "urn:1C.ru:commerceml_3"
    if version == "2.10":
        return "urn:1C.ru:commerceml_210"
    return "urn:1C.ru:commerceml_2"


def _el(tag: str, text: object | None) -> str:
    return "" if text is None else f"<{tag}>{escape(str(text))}</{tag}>"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _open(version: str, namespace: bool, encoding: str) -> str:
    ns = f' xmlns="{namespace_of(version)}" xmlns:xs="http://www.w3.org/2001/XMLSchema"' if namespace else ""
    return (
        f'<?xml version="1.0" encoding="{encoding.upper() if encoding == "utf-8" else encoding}"?>\n'
        f'<КоммерческаяИнформация{ns} ВерсияСхемы="{version}" ДатаФормирования="2026-12-01T10:00:00">\n'
    )


CLOSE = "</КоммерческаяИнформация>\n"


def _encode(text: str, encoding: str, bom: bool) -> bytes:
    data = text.encode(encoding, errors="xmlcharrefreplace")
    return (b"\xef\xbb\xbf" + data) if bom and encoding.lower().replace("_", "-") == "utf-8" else data


# --- pieces -------------------------------------------------------------------------------------------


def _deleted(deleted: bool, version: str) -> tuple[str, str]:
    """(attribute, element) marking a deleted item in this version's style."""
    if not deleted:
        return "", ""
    if version < "2.05":
        return ' Статус="Удален"', ""
    return "", "<ПометкаУдаления>true</ПометкаУдаления>"


def _groups_xml(groups: Sequence[Group], version: str) -> str:
    children: dict[str | None, list[Group]] = {}
    for group in groups:
        children.setdefault(group.parent_id, []).append(group)

    def write(parent: str | None) -> str:
        out = []
        for group in children.get(parent, []):
            attr, mark = _deleted(group.deleted, version)
            inner = write(group.id)
            nested = f"<Группы>{inner}</Группы>" if inner else ""
            out.append(f"<Группа{attr}>{_el('Ид', group.id)}{mark}{_el('Наименование', group.name)}{nested}</Группа>")
        return "".join(out)

    body = write(None)
    return f"<Группы>{body}</Группы>" if body else ""


def _properties_xml(properties: Sequence[Property]) -> str:
    if not properties:
        return ""
    out = []
    for prop in properties:
        values = "".join(
            f"<Справочник>{_el('ИдЗначения', vid)}{_el('Значение', text)}</Справочник>" for vid, text in prop.values
        )
        choices = f"<ВариантыЗначений>{values}</ВариантыЗначений>" if prop.values else ""
        kind = _el("ТипЗначений", prop.value_type) if prop.value_type else ""
        out.append(f"<Свойство>{_el('Ид', prop.id)}{_el('Наименование', prop.name)}{kind}{choices}</Свойство>")
    return f"<Свойства>{''.join(out)}</Свойства>"


def _price_types_xml(price_types: Sequence[PriceType]) -> str:
    if not price_types:
        return ""
    rows = "".join(
        f"<ТипЦены>{_el('Ид', p.id)}{_el('Наименование', p.name)}{_el('Валюта', p.currency)}"
        "<Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме></Налог></ТипЦены>"
        for p in price_types
    )
    return f"<ТипыЦен>{rows}</ТипыЦен>"


def _warehouses_xml(warehouses: Sequence[Warehouse]) -> str:
    if not warehouses:
        return ""
    rows = "".join(f"<Склад>{_el('Ид', w.id)}{_el('Наименование', w.name)}</Склад>" for w in warehouses)
    return f"<Склады>{rows}</Склады>"


def _pairs(container: str, entry: str, key: str, pairs: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<{entry}>{_el(key, k)}{_el('Значение', v)}</{entry}>" for k, v in pairs)
    return f"<{container}>{rows}</{container}>" if rows else ""


def _barcodes_xml(barcodes: Iterable[str]) -> str:
    return "".join(_el("Штрихкод", code) for code in barcodes)


def _number(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def product_xml(product: Product, version: str = "2.08") -> str:
    attr, mark = _deleted(product.deleted, version)
    unit = ""
    if product.unit_code or product.unit_name:
        if version < "2.05":
            unit = _el("БазоваяЕдиница", product.unit_code or product.unit_name)
        else:
            code = f' Код="{product.unit_code} "' if product.unit_code else ""  # 1C pads the OKEI code
            full = f" НаименованиеПолное={quoteattr(product.unit_name)}" if product.unit_name else ""
            unit = f'<БазоваяЕдиница{code}{full} МеждународноеСокращение="PCE">шт</БазоваяЕдиница>'
    groups = "".join(_el("Ид", g) for g in product.group_ids)
    vat = (
        f"<СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование>{_el('Ставка', product.vat_rate)}"
        "</СтавкаНалога></СтавкиНалогов>"
        if product.vat_rate
        else ""
    )
    return (
        f"<Товар{attr}>{_el('Ид', product.id)}{_el('НомерВерсии', product.version)}{mark}"
        f"{_barcodes_xml(product.barcodes)}{_el('Артикул', product.article)}{_el('Наименование', product.name)}"
        f"{unit}{_el('ПолноеНаименование', product.full_name)}"
        f"{f'<Группы>{groups}</Группы>' if groups else ''}{_el('Описание', product.description)}"
        f"{''.join(_el('Картинка', image) for image in product.images)}"
        f"{_pairs('ЗначенияСвойств', 'ЗначенияСвойства', 'Ид', product.properties)}{vat}"
        f"{_pairs('ХарактеристикиТовара', 'ХарактеристикаТовара', 'Наименование', product.characteristics)}"
        f"{_pairs('ЗначенияРеквизитов', 'ЗначениеРеквизита', 'Наименование', product.traits)}"
        f"{_el('Вес', _number(product.weight))}</Товар>\n"
    )


def _prices_xml(prices: Sequence[Price] | None) -> str:
    if prices is None:
        return ""
    rows = []
    for price in prices:
        value = _number(price.value)
        rows.append(
            f"<Цена><Представление>{value} {escape(price.currency or '')} за шт</Представление>"
            f"{_el('ИдТипаЦены', price.price_type_id)}{_el('ЦенаЗаЕдиницу', value)}{_el('Валюта', price.currency)}"
            f"<Единица>шт</Единица><Коэффициент>1</Коэффициент>{_el('КоличествоОт', _number(price.quantity_from))}"
            "</Цена>"
        )
    return f"<Цены>{''.join(rows)}</Цены>"


def _stock_xml(stock: Sequence[tuple[str, Decimal]] | None, style: str) -> str:
    if stock is None:
        return ""
    if style == "attributes":
        return "".join(f'<Склад ИдСклада={quoteattr(w)} КоличествоНаСкладе="{_number(a)}"/>' for w, a in stock)
    rows = "".join(f"<Остаток><Склад>{_el('Ид', w)}{_el('Количество', _number(a))}</Склад></Остаток>" for w, a in stock)
    return f"<Остатки>{rows}</Остатки>"


def offer_xml(offer: Offer, version: str = "2.08", stock_style: str | None = None) -> str:
    style = stock_style or ("rests" if version.startswith("3") else "attributes")
    attr, mark = _deleted(offer.deleted, version)
    stock = _stock_xml(offer.stock, style)
    quantity = _el("Количество", _number(offer.quantity))
    return (
        f"<Предложение{attr}>{_el('Ид', offer.id)}{_el('НомерВерсии', offer.version)}{mark}"
        f"{_barcodes_xml(offer.barcodes)}{_el('Артикул', offer.article)}{_el('Наименование', offer.name)}"
        f"{_pairs('ХарактеристикиТовара', 'ХарактеристикаТовара', 'Наименование', offer.characteristics)}"
        f"{_prices_xml(offer.prices)}{quantity if style == 'attributes' else ''}{stock}"
        f"{quantity if style != 'attributes' else ''}</Предложение>\n"
    )


def _only_prices(offer: Offer) -> str:
    return f"<Предложение>{_el('Ид', offer.id)}{_prices_xml(offer.prices)}</Предложение>\n"


def _only_rests(offer: Offer) -> str:
    return f"<Предложение>{_el('Ид', offer.id)}{_stock_xml(offer.stock, 'rests')}</Предложение>\n"


# --- whole files --------------------------------------------------------------------------------------


def catalog_xml(
    products: Sequence[Product],
    groups: Sequence[Group] = (),
    properties: Sequence[Property] = (),
    *,
    version: str = "2.08",
    encoding: str = "utf-8",
    bom: bool = False,
    namespace: bool = True,
    only_changes: bool = False,
    price_types: Sequence[PriceType] = (),
    warehouses: Sequence[Warehouse] = (),
    catalog_id: str = CATALOG_ID,
    classifier_id: str = CLASSIFIER_ID,
    with_catalog: bool = True,
) -> bytes:
    """An ``import.xml``: the classifier (groups, properties, and price types / warehouses if given), the goods."""
    classifier = (
        f"<Классификатор>{_el('Ид', classifier_id)}<Наименование>Классификатор (Основной каталог товаров)"
        f"</Наименование>{_groups_xml(groups, version)}{_properties_xml(properties)}"
        f"{_price_types_xml(price_types)}{_warehouses_xml(warehouses)}</Классификатор>\n"
    )
    catalog = ""
    if with_catalog:
        goods = "".join(product_xml(p, version) for p in products)
        catalog = (
            f'<Каталог СодержитТолькоИзменения="{_flag(only_changes)}">{_el("Ид", catalog_id)}'
            f"{_el('ИдКлассификатора', classifier_id)}<Наименование>Основной каталог товаров</Наименование>"
            f"<Товары>\n{goods}</Товары></Каталог>\n"
        )
    return _encode(_open(version, namespace, encoding) + classifier + catalog + CLOSE, encoding, bom)


def _package(
    body: str,
    price_types: Sequence[PriceType],
    warehouses: Sequence[Warehouse],
    *,
    version: str,
    encoding: str,
    bom: bool,
    namespace: bool,
    only_changes: bool,
    changes_root: bool,
    catalog_id: str,
    classifier_id: str,
) -> bytes:
    root = "ИзмененияПакетаПредложений" if changes_root else "ПакетПредложений"
    flag = "" if changes_root else f' СодержитТолькоИзменения="{_flag(only_changes)}"'
    text = (
        _open(version, namespace, encoding)
        + f"<Классификатор>{_el('Ид', classifier_id)}</Классификатор>\n"
        + f"<{root}{flag}>{_el('Ид', catalog_id + '#')}<Наименование>Пакет предложений</Наименование>"
        + f"{_el('ИдКаталога', catalog_id)}{_el('ИдКлассификатора', classifier_id)}"
        + f"{_price_types_xml(price_types)}{_warehouses_xml(warehouses)}<Предложения>\n{body}</Предложения></{root}>\n"
        + CLOSE
    )
    return _encode(text, encoding, bom)


def offers_xml(
    offers: Sequence[Offer],
    price_types: Sequence[PriceType] = (),
    warehouses: Sequence[Warehouse] = (),
    *,
    version: str = "2.08",
    encoding: str = "utf-8",
    bom: bool = False,
    namespace: bool = True,
    only_changes: bool = False,
    changes_root: bool = False,
    stock_style: str | None = None,
    catalog_id: str = CATALOG_ID,
    classifier_id: str = CLASSIFIER_ID,
) -> bytes:
    """An ``offers.xml``: price types, warehouses and offers with prices and stock."""
    body = "".join(offer_xml(o, version, stock_style) for o in offers)
    return _package(
        body,
        price_types,
        warehouses,
        version=version,
        encoding=encoding,
        bom=bom,
        namespace=namespace,
        only_changes=only_changes,
        changes_root=changes_root,
        catalog_id=catalog_id,
        classifier_id=classifier_id,
    )


def prices_xml(
    offers: Sequence[Offer],
    *,
    version: str = "2.08",
    encoding: str = "utf-8",
    bom: bool = False,
    namespace: bool = True,
) -> bytes:
    """A ``prices.xml`` of 2.08+: each item is exactly [Ид, Цены]; the price types come in another file."""
    body = "".join(_only_prices(o) for o in offers)
    return _package(
        body, (), (), version=version, encoding=encoding, bom=bom, namespace=namespace, only_changes=True,
        changes_root=False, catalog_id=CATALOG_ID, classifier_id=CLASSIFIER_ID,
    )  # fmt: skip


def rests_xml(
    offers: Sequence[Offer],
    *,
    version: str = "2.08",
    encoding: str = "utf-8",
    bom: bool = False,
    namespace: bool = True,
) -> bytes:
    """A ``rests.xml`` of 2.08+: each item is exactly [Ид, Остатки]."""
    body = "".join(_only_rests(o) for o in offers)
    return _package(
        body, (), (), version=version, encoding=encoding, bom=bom, namespace=namespace, only_changes=True,
        changes_root=False, catalog_id=CATALOG_ID, classifier_id=CLASSIFIER_ID,
    )  # fmt: skip


# --- a big synthetic export ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticExport:
    """What ``synthetic_export`` wrote: the two files and what they hold."""

    import_path: Path
    offers_path: Path
    products: int
    offers: int
    variants: int
    changed: int  # offers whose prices differ from the export with changed_share=0
    groups: tuple[Group, ...]
    price_types: tuple[PriceType, ...]
    warehouses: tuple[Warehouse, ...]


def synthetic_price_types(count: int) -> tuple[PriceType, ...]:
    return tuple(PriceType(f"price-type-{k}", f"Тип цены {k}", "RUB") for k in range(1, count + 1))


def synthetic_warehouses(count: int) -> tuple[Warehouse, ...]:
    return tuple(Warehouse(f"warehouse-{k}", f"Склад {k}") for k in range(1, count + 1))


def _mix(*numbers: int) -> int:
    digest = hashlib.blake2b(",".join(map(str, numbers)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _synthetic_goods(n_offers: int, variants: bool) -> Iterator[tuple[int, list[str]]]:
    """(product number, its offer ids): with variants, every second product has three, the others none."""
    made = 0
    number = 0
    while made < n_offers:
        pid = f"prod-{number:07d}"
        if variants and number % 2 == 1:
            ids = [f"{pid}#var-{number:07d}-{k}" for k in range(1, 4)][: n_offers - made]
        else:
            ids = [pid]
        made += len(ids)
        yield number, ids
        number += 1


def synthetic_export(
    n_offers: int,
    *,
    directory: Path,
    variants: bool = True,
    warehouses: int = 5,
    price_types: int = 2,
    seed: int = 0,
    changed_share: float = 0.0,
    version: str = "2.08",
) -> SyntheticExport:
    """Write ``import.xml`` and ``offers.xml`` of ``n_offers`` offers to ``directory``, streamed.

    The same arguments give the same bytes; ``changed_share`` raises the prices of that share of the offers
    (chosen by a hash of their number, so the changed set is the same for every run with the same seed).
    """
    directory.mkdir(parents=True, exist_ok=True)
    types = synthetic_price_types(price_types)
    stores = synthetic_warehouses(warehouses)
    groups = tuple(Group(f"group-{g}", f"Раздел {g}", None if g < 10 else f"group-{g % 10}") for g in range(50))
    goods = list(_synthetic_goods(n_offers, variants))
    import_path = directory / "import.xml"
    offers_path = directory / "offers.xml"
    threshold = int(changed_share * 1_000_000)
    counts = {"products": 0, "offers": 0, "variants": 0, "changed": 0}
    with import_path.open("wb") as out:
        head = catalog_xml((), groups, (), version=version, with_catalog=False).decode()
        out.write(head[: head.rindex(CLOSE)].encode())
        out.write(
            f'<Каталог СодержитТолькоИзменения="false">{_el("Ид", CATALOG_ID)}{_el("ИдКлассификатора", CLASSIFIER_ID)}'
            "<Наименование>Основной каталог товаров</Наименование><Товары>\n".encode()
        )
        _write_batched(out, (product_xml(_synthetic_product(number), version) for number, _ids in goods))
        counts["products"] = len(goods)
        out.write(("</Товары></Каталог>\n" + CLOSE).encode())

    def offers() -> Iterator[str]:
        for number, ids in goods:
            for index, offer_id in enumerate(ids):
                serial = number * 4 + index
                changed = threshold > 0 and _mix(seed, serial, 7) % 1_000_000 < threshold
                counts["offers"] += 1
                counts["variants"] += "#" in offer_id
                counts["changed"] += changed
                yield offer_xml(_synthetic_offer(offer_id, serial, seed, changed, types, stores), version)

    with offers_path.open("wb") as out:
        whole = offers_xml((), types, stores, version=version).decode()
        cut = whole.index("<Предложения>\n") + len("<Предложения>\n")
        out.write(whole[:cut].encode())
        _write_batched(out, offers())
        out.write(whole[cut:].encode())
    return SyntheticExport(
        import_path, offers_path, counts["products"], counts["offers"], counts["variants"], counts["changed"],
        groups, types, stores,
    )  # fmt: skip


def _write_batched(out: IO[bytes], pieces: Iterable[str], size: int = 2000) -> None:
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) >= size:
            out.write("".join(batch).encode())
            batch.clear()
    out.write("".join(batch).encode())


def _synthetic_product(number: int) -> Product:
    return Product(
        id=f"prod-{number:07d}",
        name=f"Товар номер {number}",
        digest="",
        article=f"ART-{number:07d}",
        barcodes=(f"46{number:011d}",),
        unit_code="796",
        unit_name="Штука",
        vat_rate="20",
        group_ids=(f"group-{number % 50}",),
        properties=(("prop-color", f"Цвет {number % 7}"),),
        traits=(("ВидНоменклатуры", "Товар"), ("ТипНоменклатуры", "Товар")),
        weight=Decimal(number % 9 + 1) / 4,
    )


def _synthetic_offer(
    offer_id: str,
    serial: int,
    seed: int,
    changed: bool,
    types: Sequence[PriceType],
    stores: Sequence[Warehouse],
) -> Offer:
    base = Decimal(100 + _mix(seed, serial, 1) % 90_000) / 10
    prices = tuple(Price(t.id, base + k * 10 + (Decimal(1) if changed else 0), "RUB") for k, t in enumerate(types))
    stock = tuple((s.id, Decimal(_mix(seed, serial, 2, k) % 40)) for k, s in enumerate(stores))
    is_variant = "#" in offer_id
    return Offer(
        id=offer_id,
        digest="",
        name=f"Вариант {offer_id.rsplit('-', 1)[-1]} товара {serial // 4}" if is_variant else None,
        characteristics=(("Размер", str(40 + serial % 4)),) if is_variant else (),
        prices=prices,
        stock=stock,
        quantity=sum((a for _s, a in stock), Decimal(0)),
    )
