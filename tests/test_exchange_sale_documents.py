"""1C's order documents back into the shop, and ``mode=info``: generated files, the shop emulator, a real redis-server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from redis import Redis
from rq.registry import FailedJobRegistry

from bridge import runtime
from bridge.exchange.sale import changes, info
from bridge.exchange.sale.incoming import DocumentKind, DocumentsFileError, read_documents
from bridge.mappings import DEFAULTS_DIR
from bridge.queue import SHOP_QUEUE
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.worker import build_worker


@pytest.fixture
def rt(redis_url: str, shop: Any) -> Iterator[Runtime]:
    settings = Settings(redis_url=redis_url, shop_url=shop.url, mappings_dir=DEFAULTS_DIR)
    current = Runtime.from_settings(settings, Redis.from_url(redis_url))
    runtime.install(current)
    yield current
    runtime.install(None)


def run_queued(rt: Runtime) -> None:
    build_worker(rt.settings, rt.redis, simple=True).work(burst=True)


def documents_file(*documents: dict[str, Any], encoding: str = "windows-1251", namespace: str | None = None) -> bytes:
    """1C's documents___*.xml as its exchange writes it, built with lxml."""
    ns = f"{{{namespace}}}" if namespace else ""
    root = etree.Element(
        f"{ns}КоммерческаяИнформация", ВерсияСхемы="2.08", nsmap={None: namespace} if namespace else None
    )
    for spec in documents:
        doc = etree.SubElement(root, f"{ns}Документ")
        for tag in ("Ид", "Номер", "ХозОперация", "Основание", "ПометкаУдаления"):
            if tag in spec:
                etree.SubElement(doc, f"{ns}{tag}").text = spec[tag]
        values = etree.SubElement(doc, f"{ns}ЗначенияРеквизитов")
        for name, value in spec.get("requisites", {}).items():
            requisite = etree.SubElement(values, f"{ns}ЗначениеРеквизита")
            etree.SubElement(requisite, f"{ns}Наименование").text = name
            etree.SubElement(requisite, f"{ns}Значение").text = value
    return etree.tostring(root, encoding=encoding, xml_declaration=True)


ORDER = {"Ид": "9f1c-guid", "ХозОперация": "Заказ товара"}


@pytest.mark.parametrize("encoding", ["windows-1251", "utf-8"])
@pytest.mark.parametrize("namespace", [None, "urn:1C.ru:commerceml_2"])
def test_documents_are_read_whatever_the_encoding_and_namespace(encoding: str, namespace: str | None) -> None:
    body = documents_file(
        {**ORDER, "Номер": "A-1", "requisites": {"Статуса заказа ИД": "P", "Дата оплаты по 1С": "T"}},
        {"Ид": "p1", "Номер": "1", "ХозОперация": "Выплата безналичных денег", "Основание": "A-1"},
        {"Ид": "s1", "Номер": "2", "ХозОперация": "Отпуск товара", "Основание": "A-1"},
        {"Ид": "x", "ХозОперация": "Возврат товара"},
        encoding=encoding,
        namespace=namespace,
    )
    docs = list(read_documents(io.BytesIO(body)))
    assert [d.kind for d in docs] == [DocumentKind.ORDER, DocumentKind.PAYMENT, DocumentKind.SHIPMENT]
    assert docs[0].requisites["Статуса заказа ИД"] == "P" and docs[0].order_ref == "A-1"
    assert docs[1].order_ref == "A-1"


@pytest.mark.parametrize(
    "body, words",
    [
        ('<?xml version="1.0"?>\n<КоммерческаяИнформация><Документ><Ид>1</Ид>'.encode(), "строке"),  # cut off
        (b'<?xml version="1.0"?><catalog/>', "корневой"),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            "<КоммерческаяИнформация><Документ><Номер>&xxe;</Номер></Документ></КоммерческаяИнформация>".encode(),
            "DOCTYPE",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            "<КоммерческаяИнформация>&b;</КоммерческаяИнформация>".encode(),
            "DOCTYPE",
        ),
    ],
)
def test_a_hostile_or_broken_file_is_refused_with_a_reason(body: bytes, words: str) -> None:
    with pytest.raises(DocumentsFileError, match=words):
        list(read_documents(io.BytesIO(body)))


def test_a_status_set_in_1c_reaches_the_shop_by_number_else_by_id(rt: Runtime, shop: Any) -> None:
    by_number = shop.add_order(account_number="A-7")
    by_id = shop.add_order()
    body = documents_file(
        {**ORDER, "Номер": "A-7", "requisites": {"Статус заказа": "[F] Handed to courier", "Статуса заказа ИД": "F"}},
        {"Ид": str(by_id["id"]), "ХозОперация": "Заказ товара", "requisites": {"Статус заказа": "In progress"}},
    )
    counts = changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="b1")
    assert counts.statuses == 2 and counts.held == 0
    run_queued(rt)
    assert shop.orders[by_number["id"]]["statusId"] == "F"
    assert shop.orders[by_id["id"]]["statusId"] == "P"


def test_an_unknown_status_is_held_as_a_dead_letter_never_guessed(rt: Runtime, shop: Any) -> None:
    order = shop.add_order(account_number="A-9")
    body = documents_file({**ORDER, "Номер": "A-9", "requisites": {"Статус заказа": "Собран на складе"}})
    counts = changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="b1")
    assert counts.held == 1 and "отложено (статус не сопоставлен): 1" in counts.summary()
    run_queued(rt)
    failed = FailedJobRegistry(SHOP_QUEUE, connection=rt.redis)
    assert len(failed.get_job_ids()) == 1
    assert shop.orders[order["id"]]["statusId"] == "N"  # nothing guessed


def test_info_lists_statuses_payment_systems_and_delivery_services(rt: Runtime, shop: Any) -> None:
    shop.add_order(delivery=("Courier", 300.0))
    body = info.info_xml(rt)
    assert body.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    assert b"<C\xf2\xe0\xf2\xf3\xf1\xfb>" in body  # "Cтатусы" with a Latin C, in windows-1251
    root = etree.fromstring(body)
    statuses = {e.findtext("Ид"): e.findtext("Название") for e in root.find("Cтатусы")}
    assert statuses["N"] == "New" and "DN" not in statuses  # order statuses only
    assert [e.findtext("Название") for e in root.find("ПлатежныеСистемы")] == ["Cash"]
    assert [e.findtext("Название") for e in root.find("СлужбыДоставки")] == ["Courier"]


def test_payment_shipment_and_cancellation_documents_change_the_shop(rt: Runtime, shop: Any) -> None:
    paid = shop.add_order(account_number="B-1")
    shipped = shop.add_order(account_number="B-2", delivery=("Courier", 450.0))
    cancelled = shop.add_order(account_number="B-3")
    payment, shipment = paid["payments"][0], shipped["shipments"][0]
    body = documents_file(
        {"Ид": "g1", "ХозОперация": "Выплата безналичных денег", "Номер": payment["accountNumber"], "Основание": "B-1",
         "requisites": {"Оплачен": "true", "Дата оплаты по 1С": "2026-12-01T10:00:00"}},
        {"Ид": "g2", "ХозОперация": "Отпуск товара", "Номер": str(shipment["id"]), "Основание": "B-2",
         "requisites": {"Отгружен": "true", "Дата отгрузки по 1С": "T"}},
        {**ORDER, "Номер": "B-3", "requisites": {"Отменен": "true", "Дата оплаты по 1С": "T", "Дата отгрузки по 1С": "T"}},
    )  # fmt: skip
    counts = changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="b1")
    assert (counts.staged["order-payment"], counts.staged["order-shipment"], counts.staged["order-cancel"]) == (1, 1, 1)
    run_queued(rt)
    assert shop.orders[paid["id"]]["payments"][0]["paid"] == "Y"
    assert shop.orders[paid["id"]]["payments"][0]["datePaid"] == "2026-12-01T10:00:00"
    after = shop.orders[shipped["id"]]["shipments"][0]
    assert (after["deducted"], after["allowDelivery"]) == ("Y", "Y")
    assert after["priceDelivery"] == 450.0  # sent along: the shop would have zeroed it
    assert shop.orders[cancelled["id"]]["canceled"] == "Y"
    assert shop.orders[cancelled["id"]]["payments"][0]["paid"] == "N"  # "T" is an empty date, not a payment


def test_the_order_documents_own_payment_and_shipment_dates(rt: Runtime, shop: Any) -> None:
    order = shop.add_order(account_number="C-1")
    body = documents_file(
        {**ORDER, "Номер": "C-1", "requisites": {
            "Дата оплаты по 1С": "2026-12-01T09:00:00", "Номер оплаты по 1С": "ПП-77",
            "Дата отгрузки по 1С": "2026-12-02T09:00:00", "Номер отгрузки по 1С": "РН-5", "Отменен": "false"}},
    )  # fmt: skip
    changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="b1")
    run_queued(rt)
    now = shop.orders[order["id"]]
    assert (now["payments"][0]["paid"], now["payments"][0]["payVoucherNum"]) == ("Y", "ПП-77")
    assert (now["shipments"][0]["allowDelivery"], now["shipments"][0]["deliveryDocNum"]) == ("Y", "РН-5")
    assert now["shipments"][0]["deducted"] == "N" and now["canceled"] == "N"
    requests = len(shop.requests)
    changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="b2")  # the same documents again
    run_queued(rt)
    writes = [m for m, p in shop.requests[requests:] if m == "batch" and "update" in str(p)]
    assert writes == []  # equal to what was applied: nothing written again
