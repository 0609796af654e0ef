"""A shop order (``sale.order.get``) as the CommerceML 2 ``Документ`` 1C's exchange node loads. Pure: no I/O.

1C's standard exchange was written against 1C-Bitrix's own export, so the documents follow its shape and its
exact names (``Статуса заказа ИД`` with its odd spelling included): what 1C's loader reads is a contract
nobody published, only this shape. The schema version 1C named in ``init`` decides the layout:

- below 2.10, one ``Документ`` per order (``ХозОперация`` «Заказ товара»), with payment and delivery facts
  as requisites;
- from 2.10, also one ``Документ`` per payment («Выплата наличных денег» / «Выплата безналичных денег») and
  per shipment («Отпуск товара»), each naming the order in ``Основание``;
- from 3, each order's documents wrapped in a ``Контейнер`` (newer exchange modules see nothing else).

The money is the HTTP service's (``bridge.orders.document``): line amounts after every discount, an
order-level discount spread over the lines in kopecks, so that the lines and the ``ORDER_DELIVERY`` line add
up to ``Сумма`` exactly. Elements are built per order and written by lxml's serializer, which escapes text
and writes a character the encoding lacks (an emoji in a buyer's comment in windows-1251) as a character
reference: no string is ever glued into the XML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from bridge.mappings import Mappings
from bridge.orders.document import build_document

DELIVERY_ID = "ORDER_DELIVERY"
FINAL_STATUS = "F"  # 1C-Bitrix's own "final status", hard-coded there as F
DEFAULT_VERSION = "2.08"
CURRENCIES = {"РУБ": "RUB", "РУБ.": "RUB", "RUR": "RUB", "₽": "RUB"}  # what shops and 1C write for the rouble
KOPECKS = Decimal("0.01")
_TRUE = ("Y", "TRUE", "1")


def version_tuple(version: str | None) -> tuple[int, ...]:
    """ "2.10" → (2, 10); an unreadable or missing version counts as the default 2.08 (one document per order)."""
    text = (version or DEFAULT_VERSION).strip()
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return version_tuple(DEFAULT_VERSION)


def root_attributes(version: str | None, now: datetime) -> dict[str, str]:
    """The attributes of ``КоммерческаяИнформация`` as 1C-Bitrix writes them."""
    return {
        "ВерсияСхемы": (version or DEFAULT_VERSION).strip() or DEFAULT_VERSION,
        "ДатаФормирования": now.replace(tzinfo=None, microsecond=0).isoformat(),
        "ФорматДаты": "ДФ=yyyy-MM-dd; ДЛФ=DT",
        "ФорматВремени": "ДФ=ЧЧ:мм:сс; ДЛФ=T",
        "РазделительДатаВремя": "T",
        "ФорматСуммы": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
        "ФорматКоличества": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
    }


def order_elements(order: Mapping[str, Any], mappings: Mappings, version: str | None) -> list[etree._Element]:
    """The elements one order becomes at this schema version (documents, or one ``Контейнер``).

    Raises ``PermanentError`` (from the shared mapping) for an order that cannot be mapped, such as a status
    statuses.toml does not name: the caller skips it and says why, it is never guessed.
    """
    order = dict(order.get("order", order)) if "id" not in order else dict(order)
    mapped = build_document(order, mappings)
    documents = [_order_document(order, mapped, mappings)]
    level = version_tuple(version)
    if level >= (2, 10):
        documents += [_payment_document(order, p) for p in _list(order.get("payments")) if isinstance(p, dict)]
        documents += [_shipment_document(order, s) for s in _real_shipments(order)]
    if level >= (3,):
        container = etree.Element("Контейнер")
        container.extend(documents)
        return [container]
    return documents


# --- the order ----------------------------------------------------------------------------------------------


def _order_document(order: dict[str, Any], mapped: dict[str, Any], mappings: Mappings) -> etree._Element:
    names = mappings.document
    f, lf, df = names.fields, names.line_fields, names.delivery_fields
    doc = etree.Element("Документ")
    date, time = _date_time(order.get("dateInsert"))
    currency = normalise_currency(order.get("currency"))
    _add(doc, "Ид", _id(order.get("id")))
    _add(doc, "Номер", mapped[f["number"]])
    _add(doc, "Дата", date)
    _add(doc, "ХозОперация", "Заказ товара")
    _add(doc, "Роль", "Продавец")
    _add(doc, "Валюта", currency)
    _add(doc, "Курс", "1")
    _add(doc, "Сумма", _money(mapped[f["document_amount"]]))
    doc.append(_counterparties(order, mapped, mappings))
    _add(doc, "Время", time)
    _add(doc, "Комментарий", mapped[f["comment"]])
    goods = etree.SubElement(doc, "Товары")
    items = [item for item in _list(order.get("basketItems")) if isinstance(item, dict)]
    for item, line in zip(items, mapped[f["goods"]], strict=True):
        goods.append(_goods_line(item, line, lf))
    delivery = mapped[f["delivery"]]
    if delivery is not None:
        goods.append(_delivery_line(delivery[df["price"]]))
    doc.append(_requisites(_order_requisites(order, mapped, mappings)))
    return doc


def _counterparties(order: dict[str, Any], mapped: dict[str, Any], mappings: Mappings) -> etree._Element:
    names = mappings.document
    buyer = mapped[names.fields["counterparty"]]
    cf = names.counterparty_fields
    properties = _properties(order.get("propertyValues"))
    name = _text(buyer.get(cf["name"]))
    email, phone, tin = _text(buyer.get(cf["email"])), _text(buyer.get(cf["phone"])), _text(buyer.get(cf["tin"]))
    kpp = properties.get("kpp", "")
    company = properties.get("company", "")
    address = _first(properties, names.sources["delivery_address"])
    wrapper = etree.Element("Контрагенты")
    party = etree.SubElement(wrapper, "Контрагент")
    # 1C-Bitrix's buyer id: user id, login, name; 1C matches buyers by it on every later order.
    _add(party, "Ид", f"{_id(order.get('userId'))}#{email or phone}#{name}")
    _add(party, "Наименование", name)
    _add(party, "Роль", "Покупатель")
    if company:
        _add(party, "ОфициальноеНаименование", company)
    else:
        _add(party, "ПолноеНаименование", name)
    if tin:
        _add(party, "ИНН", tin)
    if kpp:
        _add(party, "КПП", kpp)
    if address:
        where = etree.SubElement(party, "ЮридическийАдрес" if company else "АдресРегистрации")
        _add(where, "Представление", address)
    contacts = etree.SubElement(party, "Контакты")
    for kind, value in (("Электронная почта", email), ("Телефон рабочий", phone)):
        if value:
            contact = etree.SubElement(contacts, "Контакт")
            _add(contact, "Тип", kind)
            _add(contact, "Значение", value)
    return wrapper


def _goods_line(item: dict[str, Any], line: dict[str, Any], lf: Mapping[str, str]) -> etree._Element:
    goods = etree.Element("Товар")
    _add(goods, "Ид", line[lf["xml_id"]] or _id(item.get("productId")))
    _add(
        goods,
        "ИдКаталога",
        _text(item.get("catalogXmlId")) or _properties(item.get("properties")).get("catalog.xml_id"),
    )
    if line[lf["article"]]:
        _add(goods, "Артикул", line[lf["article"]])
    _add(goods, "Наименование", line[lf["name"]])
    unit = etree.SubElement(goods, "БазоваяЕдиница")
    code = _text(item.get("measureCode")).strip() or "796"
    unit.set("Код", code)
    if code == "796":
        unit.set("НаименованиеПолное", "Штука")
        unit.set("МеждународноеСокращение", "PCE")
    unit.text = _text(item.get("measureName")) or "шт"
    amount = Decimal(str(line[lf["amount"]]))
    _add(goods, "ЦенаЗаЕдиницу", _money(line[lf["price"]]))
    _add(goods, "Количество", _quantity(line[lf["quantity"]]))
    _add(goods, "Сумма", _money(amount))
    rate = _vat_percent(item.get("vatRate"))
    if rate is not None:
        included = _text(item.get("vatIncluded")).upper() in _TRUE or item.get("vatIncluded") is None
        goods.append(_vat_rates(rate))
        tax = amount * rate / (100 + rate) if included else amount * rate / 100
        goods.append(_taxes(rate, tax, included))
    goods.append(_requisites([("ВидНоменклатуры", "Товар"), ("ТипНоменклатуры", "Товар")]))
    return goods


def _delivery_line(price: Any) -> etree._Element:
    goods = etree.Element("Товар")
    _add(goods, "Ид", DELIVERY_ID)
    _add(goods, "Наименование", "Доставка заказа")
    unit = etree.SubElement(
        goods, "БазоваяЕдиница", Код="796", НаименованиеПолное="Штука", МеждународноеСокращение="PCE"
    )
    unit.text = "шт"
    _add(goods, "ЦенаЗаЕдиницу", _money(price))
    _add(goods, "Количество", "1")
    _add(goods, "Сумма", _money(price))
    goods.append(_requisites([("ВидНоменклатуры", "Услуга"), ("ТипНоменклатуры", "Услуга")]))
    return goods


def _order_requisites(order: dict[str, Any], mapped: dict[str, Any], mappings: Mappings) -> list[tuple[str, str]]:
    payments = [p for p in _list(order.get("payments")) if isinstance(p, dict)]
    shipments = _real_shipments(order)
    status_id = _text(order.get("statusId"))
    status_name = mapped[mappings.document.fields["status"]]
    paid = _flag(order.get("payed")) or (bool(payments) and all(_flag(p.get("paid")) for p in payments))
    paid_dates = [_text(p.get("datePaid")) for p in payments if _flag(p.get("paid")) and p.get("datePaid")]
    values = [
        (
            "Метод оплаты",
            ", ".join(dict.fromkeys(_text(p.get("paySystemName")) for p in payments if p.get("paySystemName"))),
        ),
        (
            "Метод оплаты ИД",
            ", ".join(dict.fromkeys(_id(p.get("paySystemId")) for p in payments if p.get("paySystemId"))),
        ),
        ("Заказ оплачен", _bool(paid)),
    ]
    if paid_dates:
        values.append(("Дата оплаты", _stamp(max(paid_dates))))
    vouchers = [_text(p.get("payVoucherNum")) for p in payments if p.get("payVoucherNum")]
    if vouchers:
        values.append(("Номер платежного документа", ", ".join(vouchers)))
    values += [
        (
            "Способ доставки",
            ", ".join(dict.fromkeys(_text(s.get("deliveryName")) for s in shipments if s.get("deliveryName"))),
        ),
        (
            "Метод доставки ИД",
            ", ".join(dict.fromkeys(_id(s.get("deliveryId")) for s in shipments if s.get("deliveryId"))),
        ),
        ("Доставка разрешена", _bool(bool(shipments) and all(_flag(s.get("allowDelivery")) for s in shipments))),
        ("Отменен", _bool(_flag(order.get("canceled")))),
    ]
    if _flag(order.get("canceled")) and order.get("reasonCanceled"):
        values.append(("Причина отмены", _text(order.get("reasonCanceled"))))
    values += [
        ("Финальный статус", _bool(status_id == FINAL_STATUS)),
        ("Статус заказа", f"[{status_id}] {status_name}"),
        ("Статуса заказа ИД", status_id),
    ]
    if order.get("dateStatus"):
        values.append(("Дата изменения статуса", _stamp(order.get("dateStatus"))))
    if order.get("userDescription"):
        values.append(("Комментарии покупателя", _text(order.get("userDescription"))))
    if order.get("lid"):
        values.append(("Сайт", f"[{_text(order.get('lid'))}]"))
    for code, value in mapped[mappings.document.fields["properties"]].items():
        if value not in (None, ""):
            values.append((code, _text(value)))
    return values


# --- payments and shipments (2.10 and later) ------------------------------------------------------------------


def _payment_document(order: dict[str, Any], payment: dict[str, Any]) -> etree._Element:
    doc = etree.Element("Документ")
    date, time = _date_time(payment.get("dateBill") or order.get("dateInsert"))
    cash = _flag(payment.get("paySystemIsCash")) or "налич" in _text(payment.get("paySystemName")).lower()
    _add(doc, "Ид", _id(payment.get("id")))
    _add(doc, "Номер", _text(payment.get("accountNumber")) or _id(payment.get("id")))
    _add(doc, "Дата", date)
    _add(doc, "ХозОперация", "Выплата наличных денег" if cash else "Выплата безналичных денег")
    _add(doc, "Роль", "Продавец")
    _add(doc, "Валюта", normalise_currency(payment.get("currency") or order.get("currency")))
    _add(doc, "Курс", "1")
    _add(doc, "Сумма", _money(payment.get("sum") or 0))
    _add(doc, "Время", time)
    _add(doc, "Основание", _text(order.get("accountNumber")) or _id(order.get("id")))
    values = [
        ("Метод оплаты ИД", _id(payment.get("paySystemId"))),
        ("Метод оплаты", _text(payment.get("paySystemName"))),
        ("Оплачен", _bool(_flag(payment.get("paid")))),
    ]
    if payment.get("datePaid"):
        values.append(("Дата оплаты", _stamp(payment.get("datePaid"))))
    if payment.get("payVoucherNum"):
        values.append(("Номер платежного документа", _text(payment.get("payVoucherNum"))))
    doc.append(_requisites(values))
    return doc


def _shipment_document(order: dict[str, Any], shipment: dict[str, Any]) -> etree._Element:
    doc = etree.Element("Документ")
    date, time = _date_time(shipment.get("dateInsert") or order.get("dateInsert"))
    _add(doc, "Ид", _id(shipment.get("id")))
    _add(doc, "Номер", _text(shipment.get("accountNumber")) or _id(shipment.get("id")))
    _add(doc, "Дата", date)
    _add(doc, "ХозОперация", "Отпуск товара")
    _add(doc, "Роль", "Продавец")
    _add(doc, "Валюта", normalise_currency(shipment.get("currency") or order.get("currency")))
    _add(doc, "Курс", "1")
    _add(doc, "Сумма", _money(shipment.get("priceDelivery") or 0))
    _add(doc, "Время", time)
    _add(doc, "Основание", _text(order.get("accountNumber")) or _id(order.get("id")))
    values = [
        ("Метод доставки ИД", _id(shipment.get("deliveryId"))),
        ("Способ доставки", _text(shipment.get("deliveryName"))),
        ("Доставка разрешена", _bool(_flag(shipment.get("allowDelivery")))),
        ("Отгружено", _bool(_flag(shipment.get("deducted")))),
        ("Статус отгрузки", _text(shipment.get("statusId"))),
    ]
    if shipment.get("trackingNumber"):
        values.append(("Идентификатор отправления", _text(shipment.get("trackingNumber"))))
    doc.append(_requisites(values))
    return doc


# --- small parts -------------------------------------------------------------------------------------------


def normalise_currency(value: Any) -> str:
    """ISO 4217, as 1C matches currencies: "руб" and "RUR" are the rouble (RUB)."""
    text = _text(value).strip()
    return CURRENCIES.get(text.upper(), text.upper() or "RUB")


def _requisites(values: Iterable[tuple[str, str]]) -> etree._Element:
    wrapper = etree.Element("ЗначенияРеквизитов")
    for name, value in values:
        requisite = etree.SubElement(wrapper, "ЗначениеРеквизита")
        _add(requisite, "Наименование", name)
        _add(requisite, "Значение", value)
    return wrapper


def _vat_rates(rate: Decimal) -> etree._Element:
    wrapper = etree.Element("СтавкиНалогов")
    entry = etree.SubElement(wrapper, "СтавкаНалога")
    _add(entry, "Наименование", "НДС")
    _add(entry, "Ставка", _quantity(rate))
    return wrapper


def _taxes(rate: Decimal, amount: Decimal, included: bool) -> etree._Element:
    wrapper = etree.Element("Налоги")
    tax = etree.SubElement(wrapper, "Налог")
    _add(tax, "Наименование", "НДС")
    _add(tax, "УчтеноВСумме", _bool(included))
    _add(tax, "Сумма", _money(amount))
    _add(tax, "Ставка", _quantity(rate))
    return wrapper


def _vat_percent(rate: Any) -> Decimal | None:
    if rate is None or _text(rate).strip() == "":
        return None
    try:
        value = Decimal(_text(rate).strip().replace(",", "."))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return value * 100 if value <= 1 else value


def _add(parent: etree._Element, tag: str, value: Any) -> etree._Element:
    child = etree.SubElement(parent, tag)
    child.text = _clean(_text(value))
    return child


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters at all, not even as references: they are dropped."""
    if text.isprintable():
        return text
    return "".join(
        c
        for c in text
        if c in "\t\n\r" or (ord(c) >= 0x20 and not 0xD800 <= ord(c) <= 0xDFFF and c not in "\ufffe\uffff")
    )


def _money(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal(0)
    return str(number.quantize(KOPECKS))


def _quantity(value: Any) -> str:
    number = Decimal(str(value))
    text = format(number.normalize(), "f") if number == number.to_integral_value() else format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date_time(value: Any) -> tuple[str, str]:
    """The shop's local date and time, as 1C stores them (no offset)."""
    text = _text(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text[:10], text[11:19]
    return moment.date().isoformat(), moment.time().replace(microsecond=0).isoformat()


def _stamp(value: Any) -> str:
    date, time = _date_time(value)
    return f"{date}T{time}" if time else date


def _real_shipments(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _list(order.get("shipments")) if isinstance(s, dict) and not _flag(s.get("system"))]


def _properties(values: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in _list(values):
        if isinstance(entry, dict) and entry.get("code") not in (None, "") and entry.get("value") not in (None, ""):
            value = entry["value"]
            text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            found.setdefault(str(entry["code"]).casefold(), text)
    return found


def _first(properties: Mapping[str, str], codes: Iterable[str]) -> str:
    for code in codes:
        if properties.get(code.casefold()):
            return properties[code.casefold()]
    return ""


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


def _flag(value: Any) -> bool:
    return value is True or _text(value).strip().upper() in _TRUE


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _id(value: Any) -> str:
    text = _text(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return str(int(number)) if number.is_finite() and number == number.to_integral_value() else text


def _text(value: Any) -> str:
    return "" if value is None else str(value)
