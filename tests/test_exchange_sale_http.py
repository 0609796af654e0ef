"""``/1c/exchange`` with ``type=sale``, as 1C's exchange node drives it: checkauth → init → query → success, then
file + import of its documents; and what a hostile or confused caller gets. The web app runs in-process on a
real redis-server; the shop emulator answers over HTTP; the import job runs in a burst worker.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from redis import Redis
from starlette.testclient import TestClient

from bridge import runtime
from bridge.exchange.sale import offers
from bridge.mappings import DEFAULTS_DIR
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.app import create_app
from bridge.worker import build_worker
from tests.test_exchange_sale_documents import documents_file

USER, PASSWORD = "1c-node", "p4ss-w0rd"


@pytest.fixture
def settings(redis_url: str, shop: Any) -> Settings:
    return Settings(
        redis_url=redis_url,
        shop_url=shop.url,
        mappings_dir=DEFAULTS_DIR,
        exchange_user=USER,
        exchange_password=PASSWORD,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def rt(settings: Settings, redis_url: str) -> Iterator[Runtime]:
    current = Runtime.from_settings(settings, Redis.from_url(redis_url))
    runtime.install(current)
    yield current
    runtime.install(None)


class Node:
    """What 1C's exchange node does, one call at a time."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.sessid = ""

    def call(self, mode: str, *, body: bytes | None = None, **params: str) -> Any:
        query = {"type": "sale", "mode": mode, **params}
        if self.sessid:
            query["sessid"] = self.sessid
        if body is None:
            return self.client.get("/1c/exchange", params=query)
        return self.client.post("/1c/exchange", params=query, content=body)

    def login(self, version: str | None = "2.08") -> None:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        answer = self.client.get(
            "/1c/exchange", params={"type": "sale", "mode": "checkauth"}, headers={"Authorization": f"Basic {token}"}
        )
        lines = answer.text.split("\n")
        assert lines[0] == "success", answer.text
        self.client.cookies.set(lines[1], lines[2])
        self.sessid = lines[3].removeprefix("sessid=")
        init = self.call("init", **({"version": version} if version else {}))
        assert init.text.startswith("zip="), init.text

    def import_file(self, name: str, body: bytes, rt: Runtime) -> str:
        assert self.call("file", body=body, filename=name).text.startswith("success")
        for _ in range(20):
            answer = self.call("import", filename=name).text
            if not answer.startswith("progress"):
                return answer
            build_worker(rt.settings, rt.redis, simple=True).work(burst=True)
        raise AssertionError("the import never finished")


def note_orders(rt: Runtime, shop: Any, count: int) -> list[dict[str, Any]]:
    placed = [shop.add_order() for _ in range(count)]
    for order in placed:
        offers.note(rt.redis, str(order["id"]), offers.stamp_of(order))
    return placed


def ids_in(answer: Any) -> list[str]:
    assert answer.headers["content-type"] == "application/xml; charset=windows-1251"
    return [d.findtext("Ид") for d in etree.fromstring(answer.content).findall("Документ")]


def test_query_success_and_an_interrupted_session(client: TestClient, rt: Runtime, shop: Any) -> None:
    placed = note_orders(rt, shop, 3)
    node = Node(client)
    node.login()
    assert ids_in(node.call("query")) == [str(o["id"]) for o in placed]
    # The session breaks off before success: the next session gets the same orders.
    again = Node(client)
    again.login()
    assert ids_in(again.call("query")) == [str(o["id"]) for o in placed]
    shop.update_order(placed[0]["id"], statusId="P")
    offers.note(rt.redis, str(placed[0]["id"]), offers.stamp_of(shop.orders[placed[0]["id"]]))  # the order job's note
    confirmed = again.call("success")
    assert confirmed.text.startswith("success") and "Подтверждено заказов: 2" in confirmed.text
    assert ids_in(again.call("query")) == [str(placed[0]["id"])]  # changed after it was offered


def test_success_without_query_twice_or_from_another_session(client: TestClient, rt: Runtime, shop: Any) -> None:
    note_orders(rt, shop, 1)
    node = Node(client)
    node.login()
    first = node.call("success")
    assert first.text.startswith("failure") and "mode=query" in first.text
    other = Node(client)
    other.login()
    other.call("query")
    assert node.call("success").text.startswith("failure")  # another session's query is not this one's
    assert offers.waiting_count(rt.redis) == 1
    assert other.call("success").text.startswith("success")
    assert other.call("success").text.startswith("success\nЗаказы этой выгрузки уже подтверждены")
    assert offers.waiting_count(rt.redis) == 0


def test_a_forged_cookie_gets_failure_and_no_orders(client: TestClient, rt: Runtime, shop: Any) -> None:
    note_orders(rt, shop, 1)
    client.cookies.set("bridge_exchange", "forged-cookie-value")
    for mode in ("query", "success", "info", "import"):
        answer = client.get("/1c/exchange", params={"type": "sale", "mode": mode, "filename": "d.xml"})
        assert answer.status_code == 200 and answer.text.startswith("failure"), (mode, answer.text)
    assert offers.waiting_count(rt.redis) == 1


def test_documents_back_change_the_shop_and_hostile_files_are_refused(
    client: TestClient, rt: Runtime, shop: Any
) -> None:
    order = shop.add_order(account_number="H-1")
    node = Node(client)
    node.login()
    body = documents_file(
        {"Ид": "g", "Номер": "H-1", "ХозОперация": "Заказ товара", "requisites": {"Статуса заказа ИД": "P"}}
    )
    answer = node.import_file("documents___1.xml", body, rt)
    assert answer.startswith("success") and "статусов 1" in answer
    build_worker(rt.settings, rt.redis, simple=True).work(burst=True)
    assert shop.orders[order["id"]]["statusId"] == "P"
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        "<КоммерческаяИнформация><Документ><Номер>&e;</Номер></Документ></КоммерческаяИнформация>"
    ).encode()
    assert node.import_file("documents___2.xml", xxe, rt).startswith(
        "failure\nФайл documents___2.xml: Файл содержит DOCTYPE"
    )
    broken = node.import_file("documents___3.xml", b"<?xml version='1.0'?>\n<\xca\xee", rt)
    assert broken.startswith("failure") and "строке" in broken
    never = node.call("import", filename="documents___never.xml").text
    assert never.startswith("failure") and "не был загружен" in never


def test_the_old_protocol_imports_at_file(client: TestClient, rt: Runtime, shop: Any) -> None:
    order = shop.add_order(account_number="O-1")
    node = Node(client)
    node.login(version=None)
    body = documents_file({"Ид": "g", "Номер": "O-1", "ХозОперация": "Заказ товара", "requisites": {"Отменен": "true"}})
    assert node.call("file", body=body, filename="documents.xml").text.startswith("success")
    build_worker(rt.settings, rt.redis, simple=True).work(burst=True)  # the import, then the flush it queued
    build_worker(rt.settings, rt.redis, simple=True).work(burst=True)
    assert shop.orders[order["id"]]["canceled"] == "Y"


def test_info_over_http(client: TestClient, rt: Runtime, shop: Any) -> None:
    node = Node(client)
    node.login()
    answer = node.call("info")
    assert answer.headers["content-type"] == "application/xml; charset=windows-1251"
    assert etree.fromstring(answer.content).find("Cтатусы") is not None


def test_the_sync_log_shows_each_session_and_each_order_offered_and_confirmed(
    client: TestClient, rt: Runtime, shop: Any
) -> None:
    from bridge.ops import synclog

    (order,) = note_orders(rt, shop, 1)
    node = Node(client)
    node.login()
    node.call("query")
    node.call("success")
    details = [e.detail or "" for e in synclog.read(rt.redis, entity="order", entity_id=str(order["id"]))]
    assert any(d.startswith("offered to 1C in query") for d in details)
    assert any(d.startswith("confirmed by 1C in session") for d in details)
    sessions = [e for e in synclog.read(rt.redis) if e.operation in ("exchange.sale.query", "exchange.sale.success")]
    assert {e.operation for e in sessions} == {"exchange.sale.query", "exchange.sale.success"}
    assert all(node.client.cookies.get("bridge_exchange") not in (e.detail or "") for e in sessions)  # never the key
