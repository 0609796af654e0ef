"""What a CommerceML 2 file holds, as the parser yields it: plain frozen records, one per XML element of interest.

The parser (``bridge.exchange.parse``) streams a file of any size into these, in document order; the import job
turns them into staged shop updates. Keeping them free of XML and of the shop's vocabulary lets each side be
tested alone: a test can feed the import job records without writing XML, and the parser is checked against
the records it must yield.

Identity follows 1C: every ``id`` is the 1C ``Ид`` as sent (``ИдСайта`` wins over ``Ид`` for goods when
present). A variant's id is ``<product Ид>#<characteristic Ид>``; its ``parent_id`` is the product's ``Ид``.
Amounts and prices are ``Decimal`` so that "12.50" and "12.5" compare equal and nothing is rounded on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class FileKind(StrEnum):
    """What a file is, recognised by its content (the root's children), never by its name."""

    CATALOG = "catalog"  # Классификатор and/or Каталог (import*.xml): groups, properties, goods
    OFFERS = "offers"  # ПакетПредложений with prices and/or stock (offers*.xml)
    PRICES = "prices"  # an offers package whose items carry only Цены (prices*.xml)
    RESTS = "rests"  # an offers package whose items carry only Остатки (rests*.xml)
    ORDERS = "orders"  # Документ elements (1C's order documents, the sale side)


@dataclass(frozen=True)
class Header:
    """The first record of every file: what it is and whether it holds only changes.

    ``only_changes`` is ``СодержитТолькоИзменения`` (true or 1) on ``Каталог`` / ``ПакетПредложений``, and always
    true for ``ИзмененияПакетаПредложений``: a delta never deactivates anything it left out.
    """

    kind: FileKind
    schema_version: str  # ВерсияСхемы, e.g. "2.08"; "" when absent
    only_changes: bool
    catalog_id: str | None = None  # Каталог/Ид, or ПакетПредложений/ИдКаталога
    classifier_id: str | None = None  # Классификатор/Ид, or ИдКлассификатора


@dataclass(frozen=True)
class Group:
    """A ``Группа`` of the classifier: a shop section, nested through ``parent_id``; parents come first."""

    id: str
    name: str
    parent_id: str | None
    deleted: bool = False


@dataclass(frozen=True)
class Property:
    """A ``Свойство`` of the classifier. ``values`` are its list choices (``ИдЗначения`` → text), empty for others."""

    id: str
    name: str
    value_type: str  # ТипЗначений: "Справочник" (a list), "Строка", "Число", … as sent; "" when absent
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PriceType:
    """A ``ТипЦены`` of the offers package (or the classifier)."""

    id: str
    name: str
    currency: str | None = None  # Валюта as sent, e.g. "RUB" or "руб"


@dataclass(frozen=True)
class Warehouse:
    """A ``Склад`` of the offers package (or the classifier)."""

    id: str
    name: str


@dataclass(frozen=True)
class Product:
    """A ``Товар`` of the catalogue (``import*.xml``): the nomenclature, never prices or stock.

    ``digest`` is a stable digest of the element's normalised content, so that an unchanged re-export can be
    recognised when 1C sends no ``НомерВерсии`` (``version``).
    """

    id: str
    name: str
    digest: str
    version: str | None = None  # НомерВерсии
    parent_id: str | None = None  # for a variant sent in the catalogue: the product's Ид
    article: str | None = None  # Артикул
    barcodes: tuple[str, ...] = ()  # Штрихкод / ШтрихКод
    description: str | None = None  # Описание
    full_name: str | None = None  # ПолноеНаименование
    unit_code: str | None = None  # БазоваяЕдиница Код (OKEI), e.g. "796"
    unit_name: str | None = None  # БазоваяЕдиница НаименованиеПолное or text
    vat_rate: str | None = None  # СтавкиНалогов/СтавкаНалога/Ставка as sent: "20", "10", "0", "Без НДС"
    group_ids: tuple[str, ...] = ()  # Группы/Ид, the first is the main section
    images: tuple[str, ...] = ()  # Картинка paths relative to the upload root, e.g. "import_files/ab/x.jpg"
    properties: tuple[tuple[str, str], ...] = ()  # ЗначенияСвойств: (Свойство Ид, Значение as sent)
    characteristics: tuple[tuple[str, str], ...] = ()  # ХарактеристикиТовара: (Наименование, Значение)
    traits: tuple[tuple[str, str], ...] = ()  # ЗначенияРеквизитов: (Наименование, Значение)
    weight: Decimal | None = None  # Вес, kilograms as sent
    deleted: bool = False  # ПометкаУдаления=true or Статус=Удален


@dataclass(frozen=True)
class Price:
    """One ``Цена`` of an offer."""

    price_type_id: str  # ИдТипаЦены
    value: Decimal  # ЦенаЗаЕдиницу
    currency: str | None = None  # Валюта as sent
    quantity_from: Decimal | None = None  # КоличествоОт


@dataclass(frozen=True)
class Offer:
    """A ``Предложение`` of an offers package: prices and stock of a product (``id`` = ``P``) or a variant (``P#C``).

    ``prices`` is None when the element carries no ``Цены`` (a rests-only record), and ``stock`` is None when it
    carries no per-warehouse amounts; ``quantity`` is the total ``Количество`` when sent. A variant also carries
    the fields that describe it (name, characteristics), since 1C sends variants only here.

    ``digest`` stays empty as the reader yields it: the import fingerprints the updates an offer becomes (prices,
    stock, the variant's document), which is cheaper than a digest of the element and follows the mappings too.
    """

    id: str
    digest: str = ""
    version: str | None = None
    name: str | None = None
    article: str | None = None
    barcodes: tuple[str, ...] = ()
    characteristics: tuple[tuple[str, str], ...] = ()
    prices: tuple[Price, ...] | None = None
    stock: tuple[tuple[str, Decimal], ...] | None = None  # (Склад Ид, amount)
    quantity: Decimal | None = None
    deleted: bool = False

    @property
    def product_id(self) -> str:
        """The product's ``Ид``: the part before ``#`` for a variant, the whole id otherwise."""
        return self.id.split("#", 1)[0]

    @property
    def is_variant(self) -> bool:
        return "#" in self.id


Record = Header | Group | Property | PriceType | Warehouse | Product | Offer
