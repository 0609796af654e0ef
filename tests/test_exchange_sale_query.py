"""The order side of the exchange: orders noted by the order job, offered by ``query``, confirmed by ``success``.

Against the shop emulator over HTTP and a real redis-server: the documents are read back with lxml as 1C's
loader would read them (encoding from the declaration), and the sums are checked the way 1C books them.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from redis import Redis

from bridge import keys, runtime
from bridge.exchange.sale import channels, offers, query
from bridge.exchange.sale.documents import normalise_currency, version_tuple
from bridge.mappings import DEFAULTS_DIR
from bridge.orders.job import sync_order
from bridge.runtime import Runtime
from bridge.settings import Settings


def make_rt(redis_url: str, shop: Any, **overrides: Any) -> Runtime:
    values: dict[str, Any] = {"redis_url": redis_url, "shop_url": shop.url, "mappings_dir": DEFAULTS_DIR}
    if overrides.pop("exchange", False):
        values.update(exchange_user="1c", exchange_password="secret")
    values.update(overrides)
    current = Runtime.from_settings(Settings(**values), Redis.from_url(redis_url))
    runtime.install(current)
    return current


@pytest.fixture
def rt(redis_url: str, shop: Any) -> Iterator[Runtime]:
    """The exchange as the only channel (no BRIDGE_ONEC_URL)."""
    current = make_rt(redis_url, shop, exchange=True)
    yield current
    runtime.install(None)


def body_of(rt: Runtime, session: str = "session-1", version: str | None = "2.08") -> bytes:
    return b"".join(query.reply(rt, session, version).chunks)


def documents_of(body: bytes) -> list[etree._Element]:
    root = etree.fromstring(body)
    assert root.tag == "КоммерческаяИнформация"
    return root.findall(".//Документ")


def requisites(element: etree._Element) -> dict[str, str]:
    return {
        r.findtext("Наименование"): r.findtext("Значение") or ""
        for r in element.findall("ЗначенияРеквизитов/ЗначениеРеквизита")
    }


def noted(rt: Runtime, shop: Any, **order: Any) -> dict[str, Any]:
    placed = shop.add_order(**order)
    assert sync_order(str(placed["id"])) == channels.WAITING_FOR_QUERY
    return placed


def test_an_order_is_offered_as_bitrix_shapes_it_and_adds_up(rt: Runtime, shop: Any) -> None:
    order = noted(
        rt,
        shop,
        account_number="A-300",
        items=[
            {"product_id": 11, "price": 1500.0, "quantity": 2},
            {"product_id": 12, "price": 333.33, "quantity": 3, "vat_rate": 0.1},
        ],
        delivery=("Courier", 300.0),
        discount=100.0,
        properties={"INN": "7712345678", "COMPANY": "ООО «Ромашка» & Co", "KPP": "771201001", "UTM_SOURCE": "ya"},
        comment="Позвонить <до> 18:00 😀",
    )
    body = body_of(rt)
    assert body.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    (doc,) = documents_of(body)
    assert doc.findtext("Ид") == str(order["id"])
    assert doc.findtext("Номер") == "A-300"
    assert doc.findtext("ХозОперация") == "Заказ товара"
    assert doc.findtext("Валюта") == "RUB"
    assert doc.findtext("Комментарий") == "Позвонить <до> 18:00 😀"  # a character reference in windows-1251
    party = doc.find("Контрагенты/Контрагент")
    assert party.findtext("ИНН") == "7712345678" and party.findtext("КПП") == "771201001"
    assert party.findtext("ОфициальноеНаименование") == "ООО «Ромашка» & Co"
    contacts = {c.findtext("Тип"): c.findtext("Значение") for c in party.findall("Контакты/Контакт")}
    assert contacts["Электронная почта"] == "ivanov@example.ru"
    lines = doc.findall("Товары/Товар")
    assert [line.findtext("Ид") for line in lines][-1] == "ORDER_DELIVERY"
    assert lines[0].findtext("Ид") == order["basketItems"][0]["productXmlId"]
    assert lines[0].findtext("ИдКаталога") == "catalog-1"
    assert lines[0].find("БазоваяЕдиница").get("Код") == "796"
    total = sum(Decimal(line.findtext("Сумма")) for line in lines)
    assert total == Decimal(doc.findtext("Сумма")) == Decimal("4199.99")
    assert requisites(lines[-1])["ВидНоменклатуры"] == "Услуга"
    values = requisites(doc)
    assert values["Статуса заказа ИД"] == "N" and values["Статус заказа"] == "[N] New"
    assert values["Заказ оплачен"] == "false" and values["Отменен"] == "false"
    assert values["Способ доставки"] == "Courier" and values["Метод оплаты"] == "Cash"
    assert values["UTM_SOURCE"] == "ya"


def test_from_2_10_payments_and_shipments_are_documents_and_from_3_in_a_container(rt: Runtime, shop: Any) -> None:
    order = noted(rt, shop)
    docs = documents_of(body_of(rt, version="2.10"))
    assert [d.findtext("ХозОперация") for d in docs] == ["Заказ товара", "Выплата безналичных денег", "Отпуск товара"]
    assert {d.findtext("Основание") for d in docs[1:]} == {order["accountNumber"]}
    root = etree.fromstring(body_of(rt, version="3.1"))
    (container,) = root.findall("Контейнер")
    assert len(container.findall("Документ")) == 3


def test_utf8_with_a_bom_when_set(redis_url: str, shop: Any) -> None:
    rt = make_rt(redis_url, shop, exchange_sale_encoding="utf-8", exchange=True)
    try:
        noted(rt, shop)
        answer = query.reply(rt, "s", "2.08")
        body = b"".join(answer.chunks)
        assert answer.content_type == "application/xml; charset=utf-8"
        assert body.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>')
        assert len(documents_of(body[3:])) == 1
    finally:
        runtime.install(None)


def test_success_confirms_exactly_what_the_query_offered(rt: Runtime, shop: Any) -> None:
    first, second = noted(rt, shop), noted(rt, shop)
    assert len(documents_of(body_of(rt, "s1"))) == 2
    shop.update_order(second["id"], statusId="P")  # changed in the shop after it was offered
    assert sync_order(str(second["id"])) == channels.WAITING_FOR_QUERY
    confirmation = offers.confirm(rt.redis, "s1")
    assert confirmation.confirmed == (str(first["id"]),) and confirmation.changed == 1
    (again,) = documents_of(body_of(rt, "s2"))
    assert again.findtext("Ид") == str(second["id"]) and requisites(again)["Статуса заказа ИД"] == "P"


def test_without_success_everything_is_offered_again(rt: Runtime, shop: Any) -> None:
    noted(rt, shop)
    noted(rt, shop)
    assert len(documents_of(body_of(rt, "s1"))) == 2
    assert len(documents_of(body_of(rt, "s1"))) == 2  # the session never confirmed: the same orders


def test_success_without_query_from_another_session_or_twice_confirms_nothing(rt: Runtime, shop: Any) -> None:
    noted(rt, shop)
    nothing = offers.confirm(rt.redis, "never-queried")
    assert nothing.offered is None and not nothing.repeated
    body_of(rt, "s1")
    assert offers.confirm(rt.redis, "s2").offered is None  # another session's success
    assert offers.waiting_count(rt.redis) == 1
    assert len(offers.confirm(rt.redis, "s1").confirmed) == 1
    twice = offers.confirm(rt.redis, "s1")
    assert twice.offered is None and twice.repeated
    assert offers.waiting_count(rt.redis) == 0


def test_pages_of_a_set_size_oldest_first_and_fetched_fifty_to_a_request(redis_url: str, shop: Any) -> None:
    rt = make_rt(redis_url, shop, exchange_sale_page=120)
    try:
        placed = [shop.add_order() for _ in range(130)]
        for order in placed:
            offers.note(rt.redis, str(order["id"]), offers.stamp_of(order))
        before = len(shop.requests)
        docs = documents_of(body_of(rt, "s1"))
        assert [d.findtext("Ид") for d in docs] == [str(o["id"]) for o in placed[:120]]
        assert len(shop.requests) - before == 3  # 50 + 50 + 20, one batch each
        offers.confirm(rt.redis, "s1")
        assert [d.findtext("Ид") for d in documents_of(body_of(rt, "s2"))] == [str(o["id"]) for o in placed[120:]]
    finally:
        runtime.install(None)


def test_an_order_gone_from_the_shop_leaves_and_an_unmapped_one_waits(rt: Runtime, shop: Any) -> None:
    gone, odd, fine = noted(rt, shop), noted(rt, shop), noted(rt, shop)
    shop.delete_order(gone["id"])
    shop.statuses["X"] = {"id": "X", "type": "O", "sort": 90, "notify": "N", "color": "", "xmlId": None}
    shop.update_order(odd["id"], statusId="X")
    offers.note(rt.redis, str(odd["id"]), "changed")
    assert [d.findtext("Ид") for d in documents_of(body_of(rt, "s1"))] == [str(fine["id"])]
    offers.confirm(rt.redis, "s1")
    assert [as_id for as_id, _ in offers.page(rt.redis, 10)] == [str(odd["id"])]


def test_a_query_reply_is_streamed_not_held_whole(redis_url: str, shop: Any) -> None:
    rt = make_rt(redis_url, shop, exchange_sale_page=200)
    try:
        for _ in range(200):
            order = shop.add_order(items=[{"product_id": 11, "price": 10.0, "quantity": 1}] * 20)
            offers.note(rt.redis, str(order["id"]), offers.stamp_of(order))
        chunks = query.reply(rt, "s1", "2.08").chunks
        sizes = []
        tracemalloc.start()
        for chunk in chunks:
            sizes.append(len(chunk))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(sizes) >= 4 and max(sizes) < sum(sizes) / 3  # four chunks of 50 orders, and the tail
        assert peak < sum(sizes) * 20  # ample for a chunk's parsed orders, far below the whole reply's
    finally:
        runtime.install(None)


def test_with_both_channels_the_order_goes_to_1c_and_waits_for_the_query(redis_url: str, shop: Any, onec: Any) -> None:
    rt = make_rt(redis_url, shop, onec_url=onec.url, onec_user=onec.user, onec_password=onec.password, exchange=True)
    try:
        order = shop.add_order()
        assert sync_order(str(order["id"])) == "delivered"
        assert offers.waiting_count(rt.redis) == 1
    finally:
        runtime.install(None)


def test_with_only_the_http_service_nothing_waits_for_a_query(redis_url: str, shop: Any, onec: Any) -> None:
    rt = make_rt(redis_url, shop, onec_url=onec.url, onec_user=onec.user, onec_password=onec.password)
    try:
        assert sync_order(str(shop.add_order()["id"])) == "delivered"
        assert offers.waiting_count(rt.redis) == 0
    finally:
        runtime.install(None)


def test_with_neither_channel_orders_wait_and_go_when_the_service_is_set(redis_url: str, shop: Any, onec: Any) -> None:
    rt = make_rt(redis_url, shop)
    try:
        order = shop.add_order()
        assert sync_order(str(order["id"])) == channels.WAITING_FOR_SETTING
        assert rt.redis.scard(keys.ORDERS_AWAITING_CHANNEL) == 1
        assert channels.release_held(rt) == 0  # still no channel
        assert offers.waiting_count(rt.redis) == 1  # the exchange, switched on, offers it at once
    finally:
        runtime.install(None)
    later = make_rt(redis_url, shop, onec_url=onec.url, onec_user=onec.user, onec_password=onec.password)
    try:
        assert channels.release_held(later) == 1
        assert later.redis.scard(keys.ORDERS_AWAITING_CHANNEL) == 0
        assert later.redis.keys("bridge:order:pending:*")  # queued for the order job
    finally:
        runtime.install(None)


def test_versions_and_currencies() -> None:
    assert version_tuple("2.10") > version_tuple("2.09") > version_tuple(None) == (2, 8)
    assert version_tuple("junk") == (2, 8)
    assert [normalise_currency(c) for c in ("руб", "RUR", "rub", "EUR", None)] == ["RUB", "RUB", "RUB", "EUR", "RUB"]
