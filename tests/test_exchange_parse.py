"""CommerceML files → records: every schema version, encoding and layout 1C sends, hostile files refused.

Files are written by ``tests/exchange_files.py`` from records, and read back: what comes out must be what went
in (the digest aside). Hand-written snippets cover the layouts the generator does not write.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.exchange.model import FileKind, Group, Header, Offer, Price, PriceType, Product, Property, Record, Warehouse
from bridge.exchange.parse import ExchangeFileError, read_records, safe_iterparse
from tests import exchange_files as files
from tests.test_exchange_import import (  # noqa: F401  (fixtures)
    FAR,
    MAIN,
    RETAIL,
    WHOLESALE,
    document_kinds,
    env,
    run,
    shop_catalog,
    staged,
)
from tests.updates_env import UpdatesEnv

GROUPS = (
    Group("g-furniture", "Мебель", None),
    Group("g-chairs", "Стулья", "g-furniture"),
    Group("g-office", "Офисные «кресла» & табуреты", "g-chairs"),
    Group("g-old", "Архив", None, deleted=True),
    Group("g-tables", "Столы", "g-furniture"),
)
PROPERTIES = (
    Property("prop-country", "Страна производства", "Справочник", (("v-kr", "КОРЕЯ, РЕСПУБЛИКА"), ("v-ru", "Россия"))),
    Property("prop-size", "Размер", "Строка"),
)
PRICE_TYPES = (PriceType(RETAIL, "Розничная", "руб"), PriceType(WHOLESALE, "Оптовая", "RUB"))
WAREHOUSES = (Warehouse(MAIN, "Основной склад"), Warehouse(FAR, 'Магазин "Обувь"'))

PRODUCTS = (
    Product(
        id="chair",
        name="Стул <офисный> & мягкий",
        digest="",
        version="AAAAAAAAAAE=",
        article="Б-130001",
        barcodes=("8809288404089", "4600000000017"),
        description="Удобный стул.\nДва абзаца.",
        full_name="Стул офисный мягкий, серый",
        unit_code="796",
        unit_name="Штука",
        vat_rate="20",
        group_ids=("g-office", "g-chairs"),
        images=("import_files/ab/chair.jpg", "import_files/ab/chair-2.jpg"),
        properties=(("prop-country", "v-kr"), ("prop-size", "XL"), ("prop-size", "XXL")),
        characteristics=(("Цвет", "Серый"),),
        traits=(("ВидНоменклатуры", "Товар"), ("Полное наименование", "Стул офисный мягкий, серый")),
        weight=Decimal("4.250"),
    ),
    Product(id="desk", name="Стол", digest="", group_ids=("g-tables",), unit_code="796", unit_name="Штука"),
    Product(id="stool", name="Табурет (снят)", digest="", deleted=True),
    Product(id="desk#black", name="Стол чёрный", digest="", parent_id="desk"),
)
OFFERS = (
    Offer(
        id="chair",
        digest="",
        prices=(Price(RETAIL, Decimal("1719.50"), "руб"), Price(WHOLESALE, Decimal("1500"), "RUB", Decimal("10"))),
        stock=((MAIN, Decimal("20")), (FAR, Decimal("1.5"))),
        quantity=Decimal("21.5"),
    ),
    Offer(
        id="desk#black",
        digest="",
        name="Стол (чёрный)",
        article="СТ-01-Ч",
        barcodes=("4600000000024",),
        characteristics=(("Цвет", "Чёрный"), ("Размер", "120×60")),
        prices=(Price(RETAIL, Decimal("9990"), "руб"),),
        stock=((MAIN, Decimal("0")),),
        quantity=Decimal("0"),
    ),
    Offer(id="stool", digest="", prices=(Price(RETAIL, Decimal("1"), "руб"),), deleted=True),
)


def parse(data: bytes, name: str = "import.xml") -> list[Record]:
    return list(read_records(io.BytesIO(data), name=name))


def without_digest(records: list[Record]) -> list[Record]:
    return [dataclasses.replace(r, digest="") if isinstance(r, (Product, Offer)) else r for r in records]


def refusal(data: bytes, name: str = "offers.xml") -> ExchangeFileError:
    with pytest.raises(ExchangeFileError) as caught:
        parse(data, name)
    return caught.value


ENCODINGS = [("utf-8", False, True), ("utf-8", True, True), ("windows-1251", False, False), ("utf-8", True, False)]


# --- every version, encoding, BOM, namespace: what went in comes out ----------------------------------------


@pytest.mark.parametrize("version", files.VERSIONS)
@pytest.mark.parametrize(("encoding", "bom", "namespace"), ENCODINGS)
def test_a_catalogue_reads_back_as_written(version: str, encoding: str, bom: bool, namespace: bool) -> None:
    data = files.catalog_xml(
        PRODUCTS, GROUPS, PROPERTIES, version=version, encoding=encoding, bom=bom, namespace=namespace
    )
    assert data.startswith(b"\xef\xbb\xbf") == bom
    records = parse(data)
    header = Header(FileKind.CATALOG, version, False, files.CATALOG_ID, files.CLASSIFIER_ID)
    expected: list[Record] = [header, *GROUPS[:3], GROUPS[4], GROUPS[3], *PROPERTIES]
    # the generator nests the groups, so the document order is depth first; 2.03/2.04 send no OKEI attribute
    # but the code as the text, so the unit's name is not sent
    products = [dataclasses.replace(p, unit_name=None) if version < "2.05" else p for p in PRODUCTS]
    got = without_digest(records)
    assert got[0] == header
    assert sorted(map(repr, got[1:6])) == sorted(map(repr, expected[1:6]))
    assert got[6:8] == list(PROPERTIES)
    assert got[8:] == products


@pytest.mark.parametrize("version", files.VERSIONS)
@pytest.mark.parametrize(("encoding", "bom", "namespace"), ENCODINGS)
def test_an_offers_package_reads_back_as_written(version: str, encoding: str, bom: bool, namespace: bool) -> None:
    data = files.offers_xml(
        OFFERS, PRICE_TYPES, WAREHOUSES, version=version, encoding=encoding, bom=bom, namespace=namespace
    )
    records = parse(data, "offers.xml")
    assert records[0] == Header(FileKind.OFFERS, version, False, files.CATALOG_ID, files.CLASSIFIER_ID)
    assert without_digest(records[1:]) == [*PRICE_TYPES, *WAREHOUSES, *OFFERS]


@pytest.mark.parametrize("stock_style", ["attributes", "rests"])
def test_both_stock_layouts_read_the_same(stock_style: str) -> None:
    data = files.offers_xml(OFFERS, PRICE_TYPES, WAREHOUSES, stock_style=stock_style)
    assert without_digest(parse(data)[5:]) == list(OFFERS)


def test_groups_come_parents_first_with_their_parent() -> None:
    records = parse(files.catalog_xml((), GROUPS))
    groups = [r for r in records if isinstance(r, Group)]
    assert set(groups) == set(GROUPS)
    seen: set[str] = set()
    for group in groups:
        assert group.parent_id is None or group.parent_id in seen, group
        seen.add(group.id)


# --- recognising the file ---------------------------------------------------------------------------------


def test_prices_only_and_rests_only_packages_are_recognised() -> None:
    prices = parse(files.prices_xml(OFFERS), "prices.xml")
    assert prices[0].kind is FileKind.PRICES and prices[0].only_changes  # type: ignore[union-attr]
    assert [(o.id, o.prices, o.stock) for o in prices[1:]] == [(o.id, o.prices, None) for o in OFFERS]  # type: ignore[union-attr]
    rests = parse(files.rests_xml(OFFERS), "rests.xml")
    assert rests[0].kind is FileKind.RESTS  # type: ignore[union-attr]
    assert [(o.id, o.prices, o.stock) for o in rests[1:]] == [(o.id, None, o.stock) for o in OFFERS]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "only_changes"),
    [
        (lambda: files.offers_xml(OFFERS, only_changes=True), True),
        (lambda: files.offers_xml(OFFERS, changes_root=True), True),
        (lambda: files.offers_xml(OFFERS), False),
        (lambda: files.catalog_xml(PRODUCTS, only_changes=True), True),
        (lambda: files.catalog_xml(PRODUCTS).replace(b'"false"', b'"1"'), True),
    ],
)
def test_only_changes_is_read_from_the_package_or_its_root(make: Any, only_changes: bool) -> None:
    header = parse(make())[0]
    assert isinstance(header, Header) and header.only_changes is only_changes


def test_a_classifier_alone_is_a_catalogue_with_its_price_types_and_warehouses() -> None:
    data = files.catalog_xml((), (), (), price_types=PRICE_TYPES, warehouses=WAREHOUSES, with_catalog=False)
    records = parse(data, "priceLists.xml")
    assert records == [Header(FileKind.CATALOG, "2.08", False, None, files.CLASSIFIER_ID), *PRICE_TYPES, *WAREHOUSES]


ORDERS = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.05" ДатаФормирования="2026-12-01T10:00:00">
<Документ><Ид>132</Ид><Номер>132</Номер><Сумма>231.74</Сумма></Документ>
<Документ><Ид>133</Ид><Номер>133</Номер><Сумма>10</Сумма></Документ>
</КоммерческаяИнформация>"""


def test_order_documents_give_only_their_header_and_safe_iterparse_reads_them() -> None:
    assert parse(ORDERS.encode()) == [Header(FileKind.ORDERS, "2.05", False)]
    numbers = [el.findtext("{*}Номер") for el in safe_iterparse(io.BytesIO(ORDERS.encode()), tags=("Документ",))]
    assert numbers == ["132", "133"]


# --- fields 1C sends in more than one way -------------------------------------------------------------------

SNIPPET = """<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="{version}">
{body}
</КоммерческаяИнформация>"""


def snippet(body: str, version: str = "2.04") -> bytes:
    return SNIPPET.format(body=body, version=version).encode()


def test_the_site_id_wins_and_deletion_is_read_in_every_style() -> None:
    records = parse(
        snippet(
            """<Каталог><Ид>c</Ид><Товары>
            <Товар><Ид>1c-guid</Ид><ИдСайта>site-7</ИдСайта><Наименование>A</Наименование></Товар>
            <Товар Статус="Удален"><Ид>b</Ид><Наименование>B</Наименование></Товар>
            <Товар><Ид>c</Ид><Статус>Удален</Статус><Наименование>C</Наименование></Товар>
            <Товар><Ид>d</Ид><ПометкаУдаления>1</ПометкаУдаления></Товар>
            <Товар><Ид>e</Ид><ПометкаУдаления>false</ПометкаУдаления><БазоваяЕдиница>796 </БазоваяЕдиница></Товар>
            </Товары></Каталог>"""
        )
    )
    goods = [r for r in records if isinstance(r, Product)]
    assert [(p.id, p.deleted) for p in goods] == [
        ("site-7", False),
        ("b", True),
        ("c", True),
        ("d", True),
        ("e", False),
    ]
    assert goods[4].unit_code == "796" and goods[4].unit_name is None


def test_stock_in_the_2_04_attributes_the_rests_total_and_the_sibling_amount() -> None:
    records = parse(
        snippet(
            """<ПакетПредложений><Предложения>
            <Предложение><Ид>a</Ид><Количество>7</Количество>
              <Склад ИдСклада="w1" КоличествоНаСкладе="3"/><Склад ИдСклада="w2" КоличествоНаСкладе="4,5"/></Предложение>
            <Предложение><Ид>b</Ид><Остатки><Остаток><Количество>12</Количество></Остаток></Остатки></Предложение>
            <Предложение><Ид>c</Ид><Остатки><Остаток><Склад><Ид>w1</Ид></Склад><Количество>2</Количество></Остаток>
              <Остаток><Склад><Ид>w2</Ид><Количество>5</Количество></Склад><Количество>9</Количество></Остаток>
            </Остатки></Предложение>
            <Предложение><Ид>d</Ид><КоличествоНаСкладах><КоличествоНаСкладе><ИдСклада>w1</ИдСклада>
              <Количество>1</Количество></КоличествоНаСкладе></КоличествоНаСкладах></Предложение>
            <Предложение><Ид>e</Ид><Цены><Цена><ИдТипаЦены>t</ИдТипаЦены><ЦенаЗаЕдиницу>1 234,50</ЦенаЗаЕдиницу>
              </Цена></Цены></Предложение>
            </Предложения></ПакетПредложений>"""
        )
    )
    offers = {r.id: r for r in records if isinstance(r, Offer)}
    assert offers["a"].stock == (("w1", Decimal(3)), ("w2", Decimal("4.5"))) and offers["a"].quantity == 7
    assert offers["b"].stock is None and offers["b"].quantity == 12
    assert offers["c"].stock == (("w1", Decimal(2)), ("w2", Decimal(5)))  # the inner amount wins
    assert offers["d"].stock == (("w1", Decimal(1)),)
    assert offers["e"].stock is None and offers["e"].prices == (Price("t", Decimal("1234.50")),)
    assert records[0] == Header(FileKind.OFFERS, "2.04", False)  # the first item is a full offer


def test_3_1_values_of_a_property_as_variants() -> None:
    records = parse(
        snippet(
            """<Классификатор><Ид>k</Ид><Свойства><Свойство><Ид>Бренд</Ид><Наименование>Бренд</Наименование>
            <ТипЗначений>Справочник</ТипЗначений><ВариантыЗначений><Вариант><Ид>v1</Ид><Значение>Acme</Значение></Вариант>
            </ВариантыЗначений></Свойство></Свойства></Классификатор>""",
            version="3.1",
        )
    )
    assert records[1] == Property("Бренд", "Бренд", "Справочник", (("v1", "Acme"),))


def test_the_digest_ignores_whitespace_and_order_but_not_content() -> None:
    def digest(inner: str) -> str:
        body = f"<Каталог><Товары><Товар><Ид>x</Ид>{inner}</Товар></Товары></Каталог>"
        product = parse(snippet(body))[1]
        assert isinstance(product, Product)
        return product.digest

    props = "<ЗначенияСвойства><Ид>p1</Ид><Значение>1</Значение></ЗначенияСвойства>"
    props2 = "<ЗначенияСвойства><Ид>p2</Ид><Значение>2</Значение></ЗначенияСвойства>"
    base = digest(f"<Наименование>Стул</Наименование><ЗначенияСвойств>{props}{props2}</ЗначенияСвойств>")
    assert base == digest(
        f"<ЗначенияСвойств>\n  {props2}\n  {props}</ЗначенияСвойств>\n<Наименование> Стул </Наименование>"
    )
    assert base != digest(f"<Наименование>Стул!</Наименование><ЗначенияСвойств>{props}{props2}</ЗначенияСвойств>")
    pictures = digest("<Картинка>a.jpg</Картинка><Картинка>b.jpg</Картинка>")
    assert pictures != digest("<Картинка>b.jpg</Картинка><Картинка>a.jpg</Картинка>")  # the first is the main one
    assert digest("<Группы><Ид>a</Ид><Ид>b</Ид></Группы>") != digest("<Группы><Ид>b</Ид><Ид>a</Ид></Группы>")


# --- hostile and broken files -----------------------------------------------------------------------------


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-42")
    for doctype in (
        f'<!DOCTYPE КоммерческаяИнформация [<!ENTITY x SYSTEM "file://{secret}">]>',
        f'<!DOCTYPE КоммерческаяИнформация [<!ENTITY % x SYSTEM "file://{secret}"> %x;]>',
    ):
        data = (
            f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<КоммерческаяИнформация ВерсияСхемы="2.08">'
            "<Каталог><Товары><Товар><Ид>a</Ид><Наименование>&x;</Наименование></Товар></Товары></Каталог>"
            "</КоммерческаяИнформация>"
        ).encode()
        error = refusal(data, "import.xml")
        assert "TOPSECRET" not in str(error) and "DOCTYPE" in str(error) and str(error).startswith("Файл import.xml")


def test_billion_laughs_is_refused_not_expanded() -> None:
    entities = '<!ENTITY a "hahahahaha">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE КоммерческаяИнформация [{entities}]>'
        "<КоммерческаяИнформация><Каталог><Товары><Товар><Ид>a</Ид><Наименование>&j;</Наименование>"
        "</Товар></Товары></Каталог></КоммерческаяИнформация>"
    ).encode()
    assert "DOCTYPE" in str(refusal(data))


def test_an_external_dtd_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>'
    assert "DOCTYPE" in str(refusal(data))


def test_malformed_xml_names_its_line_and_column() -> None:
    good = files.offers_xml(OFFERS, PRICE_TYPES, WAREHOUSES).decode()
    lines = good.split("\n")
    lines[4] = lines[4].replace("</Ид>", "</Ид", 1)
    error = refusal("\n".join(lines).encode())
    assert error.line == 5 and error.column is not None and error.column > 0
    assert str(error).startswith(f"Файл offers.xml: ошибка XML в строке 5, столбец {error.column}: ")


def test_a_truncated_file_is_refused_after_what_it_held() -> None:
    data = files.offers_xml(OFFERS, PRICE_TYPES, WAREHOUSES)
    cut = data[: data.index(b"desk#black") + 3]
    read: list[Record] = []
    with pytest.raises(ExchangeFileError) as caught:
        read.extend(read_records(io.BytesIO(cut), name="offers.xml"))
    assert "передан не полностью" in str(caught.value)
    assert [r.id for r in read if isinstance(r, Offer)] == ["chair"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "ошибка XML"),
        (b'<?xml version="1.0"?><html><body>502 Bad Gateway</body></html>', "корневой элемент «html»"),
        (snippet("<Что-тоДругое/>"), "не содержит ни каталога"),
        (
            snippet(
                "<ПакетПредложений><Предложения><Предложение><Ид>a</Ид><Количество>много</Количество>"
                "</Предложение></Предложения></ПакетПредложений>"
            ),
            "«много» не число",
        ),
        ("<r/>".encode("utf-16"), "корневой элемент «r»"),
    ],
)
def test_unreadable_files_are_refused_in_words_for_the_operator(data: bytes, words: str) -> None:
    error = refusal(data)
    assert words in str(error) and str(error).startswith("Файл offers.xml: ")


def test_a_missing_path_is_an_exchange_file_error(tmp_path: Path) -> None:
    with pytest.raises(ExchangeFileError, match=r"offers\.xml"):
        list(read_records(tmp_path / "offers.xml"))


def test_a_path_and_a_stream_read_the_same(tmp_path: Path) -> None:
    data = files.catalog_xml(PRODUCTS, GROUPS, PROPERTIES)
    (tmp_path / "import.xml").write_bytes(data)
    assert list(read_records(tmp_path / "import.xml")) == parse(data)
    assert list(read_records(str(tmp_path / "import.xml"))) == parse(data)


# --- the synthetic export --------------------------------------------------------------------------------


def test_the_synthetic_export_is_stable_and_changes_only_its_share(tmp_path: Path) -> None:
    first = files.synthetic_export(2000, directory=tmp_path / "a")
    again = files.synthetic_export(2000, directory=tmp_path / "b")
    changed = files.synthetic_export(2000, directory=tmp_path / "c", changed_share=0.05)
    assert first.import_path.read_bytes() == again.import_path.read_bytes()
    assert first.offers_path.read_bytes() == again.offers_path.read_bytes()
    assert (first.offers, first.products, first.variants, first.changed) == (2000, 1000, 1500, 0)
    base = {r.id: r for r in read_records(first.offers_path) if isinstance(r, Offer)}
    other = {r.id: r for r in read_records(changed.offers_path) if isinstance(r, Offer)}
    differing = [k for k in base if base[k].prices != other[k].prices]
    assert len(differing) == changed.changed and 50 <= changed.changed <= 150
    assert all(base[k].stock == other[k].stock for k in base)
    goods = [r for r in read_records(first.import_path) if isinstance(r, Product)]
    assert len(goods) == 1000 and {o.product_id for o in base.values()} == {p.id for p in goods}


# --- through the import ------------------------------------------------------------------------------------


def test_generated_files_through_the_import_stage_what_they_hold(env: UpdatesEnv) -> None:  # noqa: F811
    goods = (
        Product("chair", "Стул", "", group_ids=("g-chairs",)),
        Product("desk", "Стол", "", group_ids=("g-tables",)),
    )
    catalog = files.catalog_xml(goods, GROUPS[:2] + GROUPS[4:], (), version="2.05", encoding="windows-1251")
    counts = run(env, list(read_records(io.BytesIO(catalog), name="import.xml")))
    assert counts.of("products").added == 2 and counts.of("sections").added == 3
    assert staged(env.redis, "products")[("chair",)]["section_xml_ids"] == ["g-chairs"]
    offers = (
        Offer("chair", "", prices=(Price(RETAIL, Decimal("10"), "руб"), Price(WHOLESALE, Decimal("8"), "RUB")),
              stock=((MAIN, Decimal(4)), (FAR, Decimal(1)))),
        Offer("desk", "", prices=(Price(RETAIL, Decimal("20"), "руб"), Price(WHOLESALE, Decimal("15"), "RUB")),
              stock=((MAIN, Decimal(0)), (FAR, Decimal(1)))),
    )  # fmt: skip
    data = files.offers_xml(offers, PRICE_TYPES, WAREHOUSES, version="2.10", bom=True)
    counts = run(env, list(read_records(io.BytesIO(data), name="offers.xml")))
    assert staged(env.redis, "prices") == {
        ("xml", "chair", "id", "1"): [10.0, "RUB"],
        ("xml", "chair", "id", "2"): [8.0, "RUB"],
        ("xml", "desk", "id", "1"): [20.0, "RUB"],
        ("xml", "desk", "id", "2"): [15.0, "RUB"],
    }
    assert staged(env.redis, "stock") == {
        ("xml", "chair", "id", "1"): [4.0],
        ("xml", "chair", "id", "2"): [1.0],
        ("xml", "desk", "id", "1"): [0.0],
        ("xml", "desk", "id", "2"): [1.0],
    }
    for kind in ("prices", "stock"):
        env.redis.delete(f"bridge:pending:{kind}")
    again = run(env, list(read_records(io.BytesIO(data), name="offers.xml")))
    assert again.of("prices").unchanged == 2 and again.of("stock").unchanged == 2


# --- memory ----------------------------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from bridge.exchange.parse import read_records
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = sum(1 for _ in read_records(sys.argv[1]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kb": after - before, "records": count}))
    """
)


@pytest.mark.slow
def test_a_big_file_streams_in_little_memory(tmp_path: Path) -> None:
    """A fresh process reads a file of over 50 MB; its peak memory grows by far less than the file's size."""
    export = files.synthetic_export(35000, directory=tmp_path)
    size = export.offers_path.stat().st_size
    assert size >= 50 * 1024 * 1024
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(export.offers_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    figures = json.loads(done.stdout)
    assert figures["records"] == 35000 + 1 + 2 + 5
    assert figures["growth_kb"] * 1024 < size / 10, figures


def test_nesting_deeper_than_libxml2_allows_is_refused() -> None:
    deep = "<a>" * 5000 + "</a>" * 5000
    error = refusal(snippet(f"<Каталог><Товары><Товар><Ид>x</Ид>{deep}</Товар></Товары></Каталог>"))
    assert "ошибка XML" in str(error) and error.line is not None


def test_safe_iterparse_refuses_a_doctype_too() -> None:
    data = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>{ORDERS.split("?>", 1)[1]}'.encode()
    with pytest.raises(ExchangeFileError, match="DOCTYPE"):
        list(safe_iterparse(io.BytesIO(data), tags=("Документ",)))
