"""``POST /1c/stock|prices|order-status``: what 1C gets back, and that a refused body queues nothing.

Web-level tests through Starlette's TestClient against a real redis-server; the flush that follows is in
``test_updates_flush.py``.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from bridge.queue import SHOP_QUEUE
from bridge.settings import Settings
from bridge.updates import inbox
from bridge.updates.kinds import KINDS
from bridge.web.app import create_app
from tests.peers.server import free_port

TOKEN = "inbound-t0ken-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PEER = ("10.0.0.5", 1234)

MakeClient = Callable[..., TestClient]


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def make_client(redis_url: str) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(peer: tuple[str, int] = PEER, **overrides: Any) -> TestClient:
        settings = Settings(**{"redis_url": redis_url, "inbound_token": TOKEN, **overrides})
        client = TestClient(create_app(settings), client=peer)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def nothing_queued(redis: Redis) -> bool:
    """No pending update, no flush marker, no job: the body changed nothing (the refusal itself is recorded in
    the sync log and the metrics, and only there)."""
    recorded = (b"bridge:seq", b"bridge:log", b"bridge:metrics:")
    bridge_keys = [k.decode() for k in redis.scan_iter("bridge:*") if not k.startswith(recorded)]
    return not bridge_keys and Queue(SHOP_QUEUE, connection=redis).count == 0


def pending_after_split(redis: Redis, kind: str = "stock") -> dict[str, str]:
    """What the flush will send: the stored bodies split into coalesced entries (the flush's first step)."""
    inbox.split(redis, kind)
    return {k.decode(): v.decode() for k, v in redis.hgetall(f"bridge:pending:{kind}").items()}


def stock(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items)}


GOOD_STOCK = {"xml_id": "a1b2", "store": "Main", "amount": 5}


# --- accepted ---------------------------------------------------------------------------------------------


def test_a_stock_body_is_accepted_and_queues_one_flush(client: TestClient, redis: Redis) -> None:
    body = stock(GOOD_STOCK, {"sku": "ART-1", "store_id": 2, "amount": 0.5, "ts": "2024-05-01T10:00:00+03:00"})
    first = client.post("/1c/stock", json=body, headers=AUTH)
    second = client.post("/1c/stock", json=stock({**GOOD_STOCK, "amount": 7}), headers=AUTH)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 2
    assert first.json()["batch"].startswith("stock-")
    assert second.json()["batch"] != first.json()["batch"]
    pending = pending_after_split(redis)
    assert set(pending) == {'["xml","a1b2","key","Main"]', '["sku","ART-1","id","2"]'}
    assert pending['["xml","a1b2","key","Main"]'].endswith("|[7.0]")  # the later push won
    assert Queue(SHOP_QUEUE, connection=redis).count == 1  # two pushes, one pending flush


def test_prices_and_statuses_are_accepted(client: TestClient, redis: Redis) -> None:
    prices = {"items": [{"product_id": 11, "price_type": "Retail", "price": 1500.5, "currency": "RUB"}]}
    statuses = {"items": [{"order": "A-300", "status": "In progress"}, {"order": 301, "status_id": "F"}]}
    assert client.post("/1c/prices", json=prices, headers=AUTH).status_code == 202
    answer = client.post("/1c/order-status", json=statuses, headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2
    assert len(pending_after_split(redis, "prices")) == 1
    assert set(pending_after_split(redis, "order-status")) == {'["A-300"]', '["301"]'}
    assert Queue(SHOP_QUEUE, connection=redis).count == 2  # one flush per kind


def test_an_older_item_does_not_replace_a_newer_pending_one(client: TestClient, redis: Redis) -> None:
    newer = {**GOOD_STOCK, "amount": 9, "ts": "2024-05-01T12:00:00+03:00"}
    older = {**GOOD_STOCK, "amount": 1, "ts": "2024-05-01T11:00:00+03:00"}
    client.post("/1c/stock", json=stock(newer), headers=AUTH)
    assert client.post("/1c/stock", json=stock(older), headers=AUTH).status_code == 202
    (value,) = pending_after_split(redis).values()
    assert value.endswith("|[9.0]")
    redis.delete("bridge:pending:stock")
    client.post("/1c/stock", json=stock(older, newer, older), headers=AUTH)  # within one body too
    (value,) = pending_after_split(redis).values()
    assert value.endswith("|[9.0]")


def test_fifty_thousand_items_are_accepted(client: TestClient, redis: Redis) -> None:
    items = [{"xml_id": f"guid-{i:05d}", "store_id": 1 + i % 3, "amount": i % 100} for i in range(50_000)]
    answer = client.post("/1c/stock", json={"items": items}, headers=AUTH)
    assert answer.status_code == 202, answer.text[:500]
    assert answer.json()["accepted"] == 50_000
    assert redis.llen("bridge:inbox:stock") == 2  # its batch number, then the key of the body stored whole
    pending = pending_after_split(redis)
    assert len(pending) == 50_000
    assert pending['["xml","guid-49999","id","2"]'].endswith("|[99.0]")
    assert Queue(SHOP_QUEUE, connection=redis).count == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_empty_push_is_accepted_with_a_batch_of_zeros_and_changes_nothing(
    kind: str, client: TestClient, redis: Redis
) -> None:
    answer = client.post(f"/1c/{kind}", json={"items": []}, headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 0
    batch = answer.json()["batch"]
    assert batch.startswith(f"{kind}-")
    looked_up = client.get(f"/1c/batches/{batch}", headers=AUTH)
    assert looked_up.status_code == 200, looked_up.text
    shown = looked_up.json()
    assert {
        name: shown[name] for name in ("accepted", "applied", "unchanged", "superseded", "waiting")
    } == dict.fromkeys(("accepted", "applied", "unchanged", "superseded", "waiting"), 0)
    assert shown["held"]["count"] == shown["dropped"]["count"] == 0
    redis.delete(f"bridge:batch:{batch}")
    assert nothing_queued(redis)  # no body on the inbox, no staged copy left, no flush job
    again = client.post(f"/1c/{kind}", json={"items": []}, headers=AUTH)
    assert again.json()["batch"] != batch  # each push names its own batch


# --- bodies refused, and nothing of them queued ----------------------------------------------------------------

BAD_BODIES = {
    "typo in a field name": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amout": 5}]}',
        ["/items/0/amount", "/items/0/amout"],
    ),
    "NaN": ("/1c/stock", '{"items": [{"xml_id": "a", "store": "Main", "amount": NaN}]}', ["/items/0/amount"]),
    "Infinity": ("/1c/stock", '{"items": [{"xml_id": "a", "store": "Main", "amount": Infinity}]}', ["/items/0/amount"]),
    "a huge number": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": 1e16}]}',
        ["/items/0/amount"],
    ),
    "a number as text": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": "5"}]}',
        ["/items/0/amount"],
    ),
    "true as a number": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": true}]}',
        ["/items/0/amount"],
    ),
    "a negative amount": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": -1}]}',
        ["/items/0/amount"],
    ),
    "items not a list": ("/1c/stock", '{"items": {"xml_id": "a"}}', ["/items"]),
    "an item not an object": ("/1c/stock", '{"items": [5]}', ["/items/0"]),
    "a body that is a list": ("/1c/stock", "[]", [""]),
    "not JSON": ("/1c/stock", '{"items": [', [""]),
    "unknown top-level field": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": 1}], "item": []}',
        ["/item"],
    ),
    "two product identifiers": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "sku": "b", "store": "Main", "amount": 1}]}',
        ["/items/0"],
    ),
    "no product identifier": ("/1c/stock", '{"items": [{"store": "Main", "amount": 1}]}', ["/items/0"]),
    "store and store_id": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "store_id": 1, "amount": 1}]}',
        ["/items/0"],
    ),
    "a product id as text": (
        "/1c/stock",
        '{"items": [{"product_id": "7", "store_id": 1, "amount": 1}]}',
        ["/items/0/product_id"],
    ),
    "a ts that is no date-time": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": 1, "ts": "yesterday"}]}',
        ["/items/0/ts"],
    ),
    "a unix time as ts": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": 1, "ts": "1700000000"}]}',
        ["/items/0/ts"],
    ),
    "a date that does not exist": (
        "/1c/stock",
        '{"items": [{"xml_id": "a", "store": "Main", "amount": 1, "ts": "2024-02-30T10:00:00"}]}',
        ["/items/0/ts"],
    ),
    "a blank store key": ("/1c/stock", '{"items": [{"xml_id": "a", "store": "  ", "amount": 1}]}', ["/items/0/store"]),
    "a lower-case currency": (
        "/1c/prices",
        '{"items": [{"xml_id": "a", "price_type": "Retail", "price": 1, "currency": "rub"}]}',
        ["/items/0/currency"],
    ),
    "a price without currency": (
        "/1c/prices",
        '{"items": [{"xml_id": "a", "price_type_id": 1, "price": 1}]}',
        ["/items/0/currency"],
    ),
    "status and status_id": (
        "/1c/order-status",
        '{"items": [{"order": "A-1", "status": "New", "status_id": "N"}]}',
        ["/items/0"],
    ),
    "an order that is neither text nor a number": (
        "/1c/order-status",
        '{"items": [{"order": 1.5, "status_id": "N"}]}',
        ["/items/0/order"],
    ),
    "no order": ("/1c/order-status", '{"items": [{"status_id": "N"}]}', ["/items/0/order"]),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_bad_body_is_refused_with_its_paths_and_queues_nothing(case: str, client: TestClient, redis: Redis) -> None:
    path, body, expected = BAD_BODIES[case]
    answer = client.post(path, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert data["error"] == "invalid_payload"
    assert sorted({d["path"] for d in data["details"]}) == sorted(expected), data
    assert all(d["message"] for d in data["details"])
    assert nothing_queued(redis)


def test_every_offending_item_is_listed_and_the_good_ones_are_not_queued(client: TestClient, redis: Redis) -> None:
    items: list[dict[str, Any]] = [dict(GOOD_STOCK) for _ in range(6)]
    items[1]["amount"] = "many"
    items[3]["amout"] = items[3].pop("amount")
    items[4]["sku"] = "ART-4"
    items[5]["amount"] = float("nan")
    answer = client.post("/1c/stock", content=json.dumps({"items": items}), headers=AUTH)
    assert answer.status_code == 400
    details = answer.json()["details"]
    assert [d["path"] for d in details] == [
        "/items/1/amount",
        "/items/3/amount",
        "/items/3/amout",
        "/items/4",
        "/items/5/amount",
    ]
    assert "did you mean 'amount'" in details[2]["message"]
    assert "exactly one of product_id, xml_id, sku" in details[3]["message"]
    assert nothing_queued(redis)


# --- who may call ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN[:-1]}2"},  # differs only in the last character
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Api-Token": TOKEN[:-1]},
        {"Authorization": f"Basic {TOKEN}"},
    ],
    ids=["none", "wrong", "last-char", "longer", "api-token-prefix", "basic-scheme"],
)
def test_a_missing_or_wrong_token_gets_401(headers: dict[str, str], client: TestClient, redis: Redis) -> None:
    answer = client.post("/1c/stock", json=stock(GOOD_STOCK), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert nothing_queued(redis)


def test_the_token_may_come_as_x_api_token(client: TestClient) -> None:
    assert client.post("/1c/stock", json=stock(GOOD_STOCK), headers={"X-Api-Token": TOKEN}).status_code == 202


def test_without_an_inbound_token_the_endpoints_say_what_is_missing(make_client: MakeClient, redis: Redis) -> None:
    client = make_client(inbound_token=None)
    answer = client.post("/1c/stock", json=stock(GOOD_STOCK), headers=AUTH)
    assert answer.status_code == 503
    assert "BRIDGE_INBOUND_TOKEN" in answer.json()["message"]
    assert nothing_queued(redis)


def test_an_address_outside_the_allow_list_gets_403(make_client: MakeClient, redis: Redis) -> None:
    outside = make_client(inbound_allowed_ips="192.168.1.0/24")
    answer = outside.post("/1c/stock", json=stock(GOOD_STOCK), headers=AUTH)
    assert answer.status_code == 403
    forged = outside.post("/1c/stock", json=stock(GOOD_STOCK), headers={**AUTH, "X-Forwarded-For": "192.168.1.7"})
    assert forged.status_code == 403  # the peer is no trusted proxy: its X-Forwarded-For means nothing
    assert nothing_queued(redis)
    inside = make_client(peer=("192.168.1.7", 5555), inbound_allowed_ips="192.168.1.0/24")
    assert inside.post("/1c/stock", json=stock(GOOD_STOCK), headers=AUTH).status_code == 202


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(make_client: MakeClient) -> None:
    client = make_client(inbound_allowed_ips="192.168.1.0/24", trusted_proxies="10.0.0.0/8")
    send = lambda xff: client.post("/1c/stock", json=stock(GOOD_STOCK), headers={**AUTH, "X-Forwarded-For": xff})  # noqa: E731
    assert send("192.168.1.7").status_code == 202
    assert send("192.168.1.7, 10.0.0.9").status_code == 202  # a second trusted hop is skipped
    assert send("203.0.113.9").status_code == 403
    assert send("192.168.1.7, 203.0.113.9").status_code == 403  # the client forged the left part
    assert send("not-an-address").status_code == 403


# --- bytes on the wire -------------------------------------------------------------------------------------


def test_a_cp1251_body_with_its_charset_is_read(client: TestClient, redis: Redis) -> None:
    body = json.dumps(stock({"xml_id": "a1", "store": "Основной склад", "amount": 3}), ensure_ascii=False)
    headers = {**AUTH, "Content-Type": "application/json; charset=windows-1251"}
    answer = client.post("/1c/stock", content=body.encode("cp1251"), headers=headers)
    assert answer.status_code == 202, answer.text
    assert '["xml","a1","key","Основной склад"]' in pending_after_split(redis)


def test_cp1251_bytes_sent_as_utf8_are_refused(client: TestClient, redis: Redis) -> None:
    body = json.dumps(stock({"xml_id": "a1", "store": "Склад", "amount": 3}), ensure_ascii=False).encode("cp1251")
    answer = client.post("/1c/stock", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_encoding"
    assert nothing_queued(redis)


def test_a_utf8_bom_is_accepted(client: TestClient, redis: Redis) -> None:
    body = (
        codecs.BOM_UTF8
        + json.dumps(stock({"xml_id": "a1", "store": "Склад", "amount": 3}), ensure_ascii=False).encode()
    )
    answer = client.post("/1c/stock", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    assert '["xml","a1","key","Склад"]' in pending_after_split(redis)


def test_a_missing_content_type_is_taken_as_json(client: TestClient) -> None:
    answer = client.post("/1c/stock", content=json.dumps(stock(GOOD_STOCK)).encode(), headers=AUTH)
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_another_content_type_gets_415(content_type: str, client: TestClient, redis: Redis) -> None:
    body = json.dumps(stock(GOOD_STOCK)).encode()
    answer = client.post("/1c/stock", content=body, headers={**AUTH, "Content-Type": content_type})
    assert answer.status_code == 415
    assert nothing_queued(redis)


def test_an_unknown_charset_gets_415(client: TestClient, redis: Redis) -> None:
    headers = {**AUTH, "Content-Type": "application/json; charset=klingon"}
    answer = client.post("/1c/stock", content=json.dumps(stock(GOOD_STOCK)).encode(), headers=headers)
    assert answer.status_code == 415
    assert nothing_queued(redis)


def test_a_body_over_the_limit_gets_413(make_client: MakeClient, redis: Redis) -> None:
    client = make_client(max_body_bytes=4096)
    items = [dict(GOOD_STOCK, xml_id=f"guid-{i}") for i in range(200)]
    body = json.dumps({"items": items}).encode()
    assert len(body) > 4096
    answer = client.post("/1c/stock", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413
    chunked = client.post("/1c/stock", content=iter([body[:3000], body[3000:]]), headers=AUTH)  # no Content-Length
    assert chunked.status_code == 413
    assert nothing_queued(redis)


def test_redis_down_gets_503_not_500(make_client: MakeClient) -> None:
    client = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = client.post("/1c/stock", json=stock(GOOD_STOCK), headers=AUTH)
    assert answer.status_code == 503
    assert answer.json()["error"] == "redis_unavailable"


def test_a_bad_body_gets_its_400_even_while_redis_is_down(make_client: MakeClient) -> None:
    # The body goes to Redis before it is checked; a failed send must not hide what 1C has to fix.
    client = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = client.post("/1c/stock", json=stock({**GOOD_STOCK, "amount": -1}), headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["details"][0]["path"] == "/items/0/amount"


def test_the_decoded_items_are_freed_after_the_answer_in_slices_other_requests_run_between() -> None:
    from bridge.web.onec_pushes import _free

    items: list[object] = [object() for _ in range(20_000)]
    seen: list[int] = []

    async def other_request() -> None:
        while items:
            seen.append(len(items))
            await asyncio.sleep(0)

    async def both() -> None:
        await asyncio.gather(_free(items), other_request())

    asyncio.run(both())
    assert items == []
    assert any(0 < n < 20_000 for n in seen), seen  # it ran while some items were freed and some were not
