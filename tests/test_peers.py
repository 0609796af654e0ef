"""Tests of the test peers themselves: the bridge's tests are only as good as the emulators' fidelity."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.shop import phpquery
from tests.peers.onec import LOCK_PREFIX, OnecEmulator
from tests.peers.redis_server import RedisServer
from tests.peers.server import run_app
from tests.peers.shop import ORDER_FIELDS, ORDER_NESTED, ShopEmulator


def call(shop: ShopEmulator, method: str, params: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(shop.url + method, json=params or {}, timeout=10)


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- shop: envelopes and errors ------------------------------------------------------------------------------


def test_order_get_envelope_and_shape(shop: ShopEmulator) -> None:
    order = shop.add_order(properties={"PROMO_CODE": "SPRING"}, comment="позвонить заранее")
    response = call(shop, "sale.order.get", {"id": order["id"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"result", "time"}
    assert {"start", "finish", "duration", "date_start", "date_finish"} <= set(body["time"])
    got = body["result"]["order"]
    assert got["id"] == 300 and got["accountNumber"] == "300" and got["version"] == 1
    assert got["price"] == 3300.0 and got["userDescription"] == "позвонить заранее"
    item = got["basketItems"][0]
    assert item["id"] == "255" and item["orderId"] == "300" and isinstance(item["productId"], int)
    assert item["price"] * item["quantity"] == 3000.0
    codes = [p["code"] for p in got["propertyValues"]]
    assert codes[:6] == ["FIO", "EMAIL", "PHONE", "INN", "COMPANY", "ADDRESS"] and "PROMO_CODE" in codes
    assert got["shipments"][0]["priceDelivery"] == 300.0 and got["payments"][0]["accountNumber"] == "300/1"
    assert got["requisiteLink"] == []
    assert set(got) == set(ORDER_FIELDS) | set(ORDER_NESTED)  # every field can be filtered and selected


def test_order_price_with_discount_and_no_delivery(shop: ShopEmulator) -> None:
    items = [
        {"product_id": 5, "name": "A", "price": 100.0, "quantity": 3, "vat_rate": None},
        {"product_id": 6, "name": "B", "price": 50.5, "quantity": 2, "base_price": 60.0},
    ]
    order = shop.add_order(items=items, delivery=None, discount=1.0)
    assert order["price"] == 300.0 + 101.0 - 1.0
    assert order["shipments"] == [] and order["basketItems"][1]["discountPrice"] == 9.5


def test_domain_and_system_errors(shop: ShopEmulator) -> None:
    response = call(shop, "sale.order.get", {"id": 999})
    assert response.status_code == 400
    assert response.json() == {"error": 200540400001, "error_description": "order does not exist"}
    assert call(shop, "sale.order.get").json()["error"] == 100
    response = call(shop, "no.such.method")
    assert (response.status_code, response.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    wrong = shop.url.replace(shop.webhook_code, "wrong-code")
    response = httpx.post(wrong + "sale.order.list", json={})
    assert (response.status_code, response.json()["error"]) == (401, "NO_AUTH_FOUND")
    shop.legacy_200_errors = True
    response = call(shop, "sale.order.get", {"id": 999})
    assert response.status_code == 200 and response.json()["error"] == 200540400001
    assert shop.status_counts[400] == 2 and shop.status_counts[200] == 1


def test_request_encodings_read_alike(shop: ShopEmulator) -> None:
    for _ in range(3):
        shop.add_order()
    shop.update_order(301, statusId="P")
    query = "sale.order.list.json?select[]=id&filter[statusId]=P"
    assert httpx.get(shop.url + query).json()["result"]["orders"] == [{"id": 301}]
    form = phpquery.build({"select": ["id"], "filter": {"@id": [300, 302]}, "order": {"id": "desc"}})
    response = httpx.post(
        shop.url + "sale.order.list/", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.json()["result"]["orders"] == [{"id": 302}, {"id": 300}]
    assert shop.requests[-1] == (
        "sale.order.list",
        {"select": ["id"], "filter": {"@id": ["300", "302"]}, "order": {"id": "desc"}},
    )


# -- shop: lists ----------------------------------------------------------------------------------------------


def test_paging_by_fifty(shop: ShopEmulator) -> None:
    for _ in range(120):
        shop.add_order()
    first = call(shop, "sale.order.list", {"select": ["id"], "order": {"id": "asc"}}).json()
    assert len(first["result"]["orders"]) == 50 and first["total"] == 120 and first["next"] == 50
    last = call(shop, "sale.order.list", {"select": ["id"], "start": 100}).json()
    assert [o["id"] for o in last["result"]["orders"]] == list(range(400, 420))
    assert last["total"] == 120 and "next" not in last
    fast = call(shop, "sale.order.list", {"select": ["id"], "filter": {">id": 409}, "start": -1}).json()
    assert [o["id"] for o in fast["result"]["orders"]] == list(range(410, 420))
    assert fast["total"] == 0 and "next" not in fast
    listed = call(shop, "sale.order.list", {"filter": {"id": 300}}).json()["result"]["orders"][0]
    assert "basketItems" not in listed and listed["statusId"] == "N"


def test_filter_compares_datetimes_across_offsets(shop: ShopEmulator) -> None:
    from datetime import UTC, datetime

    for hour in (8, 9, 10):
        shop.clock = lambda hour=hour: datetime(2024, 3, 15, hour, 0, tzinfo=UTC)
        shop.add_order()
    assert shop.orders[301]["dateUpdate"] == "2024-03-15T12:00:00+03:00"
    params = {"select": ["id"], "filter": {">=dateUpdate": "2024-03-15T09:00:00Z"}}
    assert [o["id"] for o in call(shop, "sale.order.list", params).json()["result"]["orders"]] == [301, 302]
    params = {"select": ["id"], "filter": {"<dateUpdate": "2024-03-15T12:00:00+03:00"}}
    assert [o["id"] for o in call(shop, "sale.order.list", params).json()["result"]["orders"]] == [300]
    response = call(shop, "sale.order.list", {"filter": {">=DATE_UPDATE": "2024-03-15T09:00:00Z"}})
    assert (response.status_code, response.json()["error"]) == (400, 0)


def test_order_update_bumps_version(shop: ShopEmulator) -> None:
    shop.add_order()
    body = call(shop, "sale.order.update", {"id": 300, "fields": {"statusId": "P"}}).json()
    assert body["result"]["order"]["statusId"] == "P" and body["result"]["order"]["version"] == 2
    assert call(shop, "sale.order.update", {"id": 300, "fields": {"statusId": "ZZ"}}).json()["error"] == 0
    assert call(shop, "sale.order.update", {"id": 300, "fields": {}}).json()["error"] == 100


# -- shop: batch, limits and faults ---------------------------------------------------------------------------


def test_batch_results_errors_and_php_artefacts(shop: ShopEmulator) -> None:
    shop.add_order()
    cmd = {
        "list": "sale.order.list?select[]=id&filter[>=id]=300",
        "get": "sale.order.get?id=$result[list][orders][0][id]",
        "missing": "sale.order.get?id=12345",
        "nested": "batch?cmd[a]=methods",
    }
    response = call(shop, "batch", {"halt": 0, "cmd": cmd})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["result"]["get"]["order"]["id"] == 300
    assert result["result_total"] == {"list": 1} and result["result_next"] == []
    assert result["result_error"]["missing"]["error"] == 200540400001
    assert result["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert [name for name, _ in shop.requests] == ["batch"]
    assert [name for name, _ in shop.commands] == ["sale.order.list", "sale.order.get", "sale.order.get"]

    halted = call(shop, "batch", {"halt": 1, "cmd": {"a": "sale.order.get?id=1", "b": "sale.order.get?id=300"}})
    assert set(halted.json()["result"]["result_error"]) == {"a"} and halted.json()["result"]["result"] == []

    many = {f"c{i}": "sale.status.list?filter[id]=N" for i in range(53)}
    result = call(shop, "batch", {"cmd": many}).json()["result"]
    assert len(result["result"]) == 50
    assert {e["error"] for e in result["result_error"].values()} == {"ERROR_BATCH_LENGTH_EXCEEDED"}
    assert set(result["result_error"]) == {"c50", "c51", "c52"}

    listed = call(shop, "batch", {"cmd": ["sale.status.list?filter[id]=N", "methods"]}).json()["result"]
    assert isinstance(listed["result"], list) and listed["result_error"] == []  # ids 0..n-1: a JSON list


def test_rate_limit_counts_http_requests_not_commands(shop: ShopEmulator) -> None:
    shop.set_rate_limit(0.001, burst=3)
    cmd = {f"c{i}": "methods" for i in range(50)}
    assert call(shop, "batch", {"cmd": cmd}).status_code == 200
    assert call(shop, "methods").status_code == 200
    assert call(shop, "methods").status_code == 200
    refused = call(shop, "methods")
    assert refused.status_code == 503
    assert refused.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    assert shop.count("methods") == 52  # the refused call did not run
    shop.set_rate_limit(None)
    assert call(shop, "methods").status_code == 200


def test_leaky_bucket_drains(shop: ShopEmulator) -> None:
    shop.set_rate_limit(2.0, burst=2)
    with httpx.Client(base_url=shop.url) as client:
        assert [client.post("methods").status_code for _ in range(3)] == [200, 200, 503]
        time.sleep(0.6)  # drains 1.2 requests
        assert client.post("methods").status_code == 200
        assert client.post("methods").status_code == 503


def test_pause_overload_and_fail_next(shop: ShopEmulator) -> None:
    shop.add_order()
    shop.pause_method("sale.order.get", 0.3)
    paused = call(shop, "sale.order.get", {"id": 300})
    assert paused.status_code == 429 and paused.json()["error"] == "OPERATION_TIME_LIMIT"
    assert paused.json()["time"]["operating_reset_at"] > time.time()
    assert call(shop, "sale.order.list").status_code == 200  # other methods keep working
    time.sleep(0.35)
    assert call(shop, "sale.order.get", {"id": 300}).status_code == 200

    shop.fail_next("sale.order.get", error="INTERNAL_SERVER_ERROR", status=500, times=2)
    assert [call(shop, "sale.order.get", {"id": 300}).status_code for _ in range(3)] == [500, 500, 200]
    shop.fail_next("sale.order.get", error=0, status=400, description="boom")
    result = call(shop, "batch", {"cmd": {"x": "sale.order.get?id=300"}}).json()["result"]
    assert result["result_error"] == {"x": {"error": 0, "error_description": "boom"}}

    shop.set_overload(True)
    overloaded = call(shop, "methods")
    assert (overloaded.status_code, overloaded.json()["error"]) == (503, "OVERLOAD_LIMIT")


# -- shop: catalog --------------------------------------------------------------------------------------------


def test_product_lookup_rules(shop: ShopEmulator) -> None:
    shop.add_product(product_id=11, xml_id="guid-11", article="ART-001")
    shop.add_product(product_id=12, xml_id="guid-12", article="ART-002")
    props = call(shop, "catalog.productProperty.list", {"filter": {"iblockId": 1}}).json()["result"]
    prop_id = next(p["id"] for p in props["productProperties"] if p["code"] == "CML2_ARTICLE")
    assert prop_id == 258
    assert call(shop, "catalog.product.list", {"select": ["id"], "filter": {"iblockId": 1}}).json()["error"] == 0
    assert call(shop, "catalog.product.list", {"select": ["id", "iblockId"]}).json()["error"] == 0
    base = {"select": ["id", "iblockId", "xmlId", f"property{prop_id}"]}
    found = call(shop, "catalog.product.list", base | {"filter": {"iblockId": 1, f"property{prop_id}": "ART-002"}})
    product = found.json()["result"]["products"][0]
    assert product["id"] == 12 and product[f"property{prop_id}"]["value"] == "ART-002"
    by_xml = call(shop, "catalog.product.list", base | {"filter": {"iblockId": 1, "@xmlId": ["guid-11", "x"]}})
    assert [p["id"] for p in by_xml.json()["result"]["products"]] == [11]
    updated = call(shop, "catalog.product.update", {"id": 11, "fields": {"quantity": 7}}).json()
    assert updated["result"]["element"]["quantity"] == 7


def test_prices_update_and_modify_trap(shop: ShopEmulator) -> None:
    shop.add_product(product_id=11)
    shop.add_price_type(name="BASE")
    shop.add_price_type(name="WHOLESALE")
    base = shop.set_price(11, 1, 1000)
    shop.set_price(11, 2, 800)
    missing = call(shop, "catalog.price.update", {"id": base["id"], "fields": {"price": 1100}})
    assert missing.json() == {"error": 0, "error_description": "Required fields: price, currency"}
    ok = call(shop, "catalog.price.update", {"id": base["id"], "fields": {"price": 1100, "currency": "RUB"}})
    assert ok.json()["result"]["price"]["price"] == 1100
    modify = {"fields": {"product": {"id": 11, "prices": [{"catalogGroupId": 1, "price": 1200, "currency": "RUB"}]}}}
    assert len(call(shop, "catalog.price.modify", modify).json()["result"]["prices"]) == 1
    assert shop.price_of(11, 2) is None  # the wholesale price is gone


def test_stock_writes_and_documents(shop: ShopEmulator) -> None:
    shop.add_product(product_id=11)
    shop.add_store(store_id=1, code="main")
    added = call(shop, "catalog.storeproduct.add", {"fields": {"productId": 11, "storeId": 1, "amount": 5}}).json()
    record_id = added["result"]["storeProduct"]["id"]
    call(shop, "catalog.storeproduct.update", {"id": record_id, "fields": {"amount": 8}})
    assert shop.amount(11, 1) == 8
    document = call(shop, "catalog.document.add", {"fields": {"docType": "D", "currency": "RUB", "responsibleId": 1}})
    doc_id = document.json()["result"]["document"]["id"]
    element = {"fields": {"docId": doc_id, "elementId": 11, "storeFrom": 1, "amount": 3}}
    assert "documentElement" in call(shop, "catalog.document.element.add", element).json()["result"]
    assert call(shop, "catalog.document.mode.status").json()["result"] == "Y"
    assert call(shop, "catalog.document.conduct", {"id": doc_id}).json()["result"] is True
    assert shop.amount(11, 1) == 5 and shop.products[11]["quantity"] == 5
    shop.storeproduct_writes = False
    refused = call(shop, "catalog.storeproduct.update", {"id": record_id, "fields": {"amount": 1}})
    assert (refused.status_code, refused.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    assert "catalog.storeproduct.add" not in call(shop, "methods").json()["result"]


# -- shop: outgoing events ------------------------------------------------------------------------------------


def test_fire_event_posts_php_form(shop: ShopEmulator) -> None:
    received: list[tuple[str, bytes]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append((request.headers["content-type"], await request.body()))
        return JSONResponse({"status": "accepted"})

    order = shop.add_order()
    with run_app(Starlette(routes=[Route("/shop/events", hook, methods=["POST"])])) as receiver:
        responses = shop.fire_event(receiver.url + "/shop/events", "OnSaleOrderSaved", order["id"], duplicates=2)
        shop.fire_event(receiver.url + "/shop/events", "ONSALEORDERSAVED", order["id"], as_json=True, token="bad")
    assert [r.status_code for r in responses] == [200, 200] and len(received) == 3
    content_type, body = received[0]
    assert content_type == "application/x-www-form-urlencoded"
    assert b"data%5BFIELDS%5D%5BID%5D=300" in body and b"[" not in body
    parsed = phpquery.parse(body)
    assert parsed["event"] == "ONSALEORDERSAVED" and parsed["data"]["FIELDS"]["ACTION"] == "save"
    assert parsed["auth"]["application_token"] == shop.application_token
    assert json.loads(received[2][1])["auth"]["application_token"] == "bad"


# -- 1C -------------------------------------------------------------------------------------------------------


def post_order(onec: OnecEmulator, document: Any, *, key: str = "300", **kwargs: Any) -> httpx.Response:
    headers = auth(onec.user, onec.password) | {"Idempotency-Key": key}
    return httpx.post(onec.url + "orders", json=document, headers=headers, timeout=10, **kwargs)


def test_onec_creates_then_updates_by_number(onec: OnecEmulator) -> None:
    first = post_order(onec, {"Number": "300", "Status": "New"})
    assert first.status_code == 201 and first.json()["status"] == "created"
    second = post_order(onec, {"Number": "300", "Status": "In progress"})
    assert second.status_code == 200 and second.json() == {
        "status": "updated",
        "ref": first.json()["ref"],
        "number": "300",
    }
    assert onec.creations["300"] == 1 and onec.updates["300"] == 1
    assert onec.documents["300"]["Status"] == "In progress"
    assert [c["idempotency_key"] for c in onec.calls] == ["300", "300"]


def test_onec_auth_and_bad_requests(onec: OnecEmulator) -> None:
    unauthorized = httpx.post(onec.url + "orders", json={"Number": "1"}, headers=auth(onec.user, "wrong"))
    assert unauthorized.status_code == 401 and unauthorized.headers["www-authenticate"].startswith("Basic")
    assert httpx.post(onec.url + "orders", json={"Number": "1"}).status_code == 401
    headers = auth(onec.user, onec.password)
    assert httpx.post(onec.url + "orders", content=b"{not json", headers=headers).status_code == 400
    assert httpx.post(onec.url + "orders", content="{}".encode("cp1251"), headers=headers).status_code == 400
    assert post_order(onec, {"Status": "New"}).status_code == 400
    assert onec.outcomes() == ["unauthorized", "unauthorized", "bad_request", "bad_request", "bad_request"]
    assert onec.documents == {}


def test_onec_locked_busy_and_rejected(onec: OnecEmulator) -> None:
    onec.lock("Обновление конфигурации")
    locked = post_order(onec, {"Number": "300"})
    assert locked.status_code == 403
    envelope = locked.json()
    assert envelope["#exception"] == "{http://v8.1c.ru/8.2/virtual-resource-system}Exception"
    inner = envelope["exception"]["inner"]["descr"]
    assert inner.startswith(LOCK_PREFIX) and inner.endswith("\nОбновление конфигурации")
    onec.unlock()
    onec.busy_every = 2
    answers = [post_order(onec, {"Number": str(n)}) for n in (1, 2)]
    assert [a.status_code for a in answers] == [500, 201]  # calls 2 and 3 overall
    assert "Конфликт блокировок" in answers[0].text
    onec.busy_every = 0
    onec.reject(422, "Не заполнено поле Контрагент")
    rejected = post_order(onec, {"Number": "3"})
    assert rejected.status_code == 422 and rejected.json()["message"] == "Не заполнено поле Контрагент"
    onec.accept()
    assert post_order(onec, {"Number": "3"}).status_code == 201
    assert onec.outcomes() == ["locked", "busy", "created", "rejected", "created"]
    assert onec.calls[0]["number"] == "300"


def test_onec_latency_and_in_flight(onec: OnecEmulator) -> None:
    onec.latency = 0.2

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            headers = auth(onec.user, onec.password)
            calls = [client.post(onec.url + "orders", json={"Number": str(n)}, headers=headers) for n in range(4)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert asyncio.run(burst()) == [201] * 4
    assert onec.max_in_flight == 4 and onec.in_flight == 0


# -- redis ----------------------------------------------------------------------------------------------------


def test_redis_url_is_flushed(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("k", "v")
    client.close()


def test_redis_restart_keeps_aof(tmp_path: Path) -> None:
    with RedisServer(tmp_path, appendonly=True) as server:
        with server.client() as client:
            client.set("durable", "yes")
        server.restart()
        with server.client() as client:
            assert client.get("durable") == b"yes"


def test_free_ports_are_outside_the_ephemeral_range_and_apart_per_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pytest-xdist processes never hand out the same port, and no port-0 server or outgoing
    connection (the kernel's ephemeral range, 32768 and up) can take one before its process binds it."""
    from tests.peers import server

    handed: dict[str, list[int]] = {}
    for worker, first in (("gw0", 20000), ("gw1", 23000), ("gw3", 29000)):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setattr(server, "_ports", None)
        handed[worker] = [server.free_port() for _ in range(50)]
        assert len(set(handed[worker])) == 50
        assert all(first <= port < first + 3000 < 32768 for port in handed[worker])


def test_the_shops_compiled_filter_answers_as_the_row_by_row_comparison() -> None:
    """The emulator's quick path for id and xmlId lookups (``compile_filter``) keeps the shop's comparison rules."""
    from bridge.sandbox.shop.filters import ShopError, _matches, compile_filter

    rows: list[dict[str, Any]] = [
        {"id": 1, "xmlId": "a", "active": "Y", "code": "", "dateUpdate": "2026-12-01T10:00:00+03:00"},
        {"id": 2, "xmlId": "b#1", "active": "N", "code": None, "dateUpdate": "2026-12-01T07:00:00Z"},
        {"id": 3.0, "xmlId": "5", "active": True, "code": {"value": "x", "valueId": 1}, "tags": ["a", "5"]},
        {"id": 4, "xmlId": 5, "active": False, "dateUpdate": "not a date"},
        {},
    ]
    filters: list[dict[str, Any]] = [
        {},
        {"@id": [1, "3", 9]},
        {"!@id": [1, 4]},
        {"=id": 2},
        {"!id": "2"},
        {"@xmlId": ["a", "5", 5]},
        {"@xmlId": ["b#1"], "id": 2},
        {"xmlId": 5.0},
        {"active": True},
        {"!=active": "Y"},
        {"code": ""},
        {"code": "x"},
        {"@tags": ["5"]},
        {"dateUpdate": "2026-12-01T07:00:00+00:00"},
        {"@dateUpdate": ["not a date"]},
        {"@id": {"0": 1, "1": 2}},
        {">=id": 2, "@xmlId": ["5", "b#1"]},
    ]
    for raw in filters:
        for row in rows:
            try:
                expected: object = all(_matches(row, k, v) for k, v in raw.items())
            except ShopError as error:
                expected = ("error", str(error))
            try:
                got: object = compile_filter(raw)(row)
            except ShopError as error:
                got = ("error", str(error))
            assert got == expected, (raw, row)
    with pytest.raises(ShopError):  # a number compared with a text that is not one stays the shop's error
        compile_filter({"@id": ["abc"]})({"id": 1})


def test_price_and_stock_lists_narrowed_by_product_answer_as_a_full_scan() -> None:
    from bridge.sandbox.shop.filters import list_answer, rows_of_products

    table = {i: {"id": i, "productId": 10 + i % 7, "storeId": i % 3, "amount": i} for i in range(1, 200)}
    ids_of: dict[int, set[int]] = {}
    for row in table.values():
        ids_of.setdefault(row["productId"], set()).add(row["id"])
    fields = ("id", "productId", "storeId", "amount")
    for raw in (
        {"@productId": [10, "12", 99]},
        {"productId": 11, "storeId": 2},
        {"=productId": "13"},
        {"@productId": ["x"]},
        {"@productId": [10.0]},
        {"storeId": 1},
        {},
    ):
        params = {"filter": raw, "order": {"amount": "desc"}, "start": 0}
        try:
            full: object = list_answer(table.values(), params, key="rows", fields=fields)
        except Exception as error:  # the shop's refusal of a bad value must stay the same
            full = repr(error)
        try:
            narrowed: object = list_answer(rows_of_products(table, ids_of, params), params, key="rows", fields=fields)
        except Exception as error:
            narrowed = repr(error)
        assert narrowed == full, raw
