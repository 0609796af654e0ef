"""Hostile input on every endpoint that takes a body or a query: the bridge refuses it in words, and only so.

The guarantee (docs/reference.md): bad input gets a 4xx in words and changes nothing; no input makes the
bridge answer 500. Each test below holds the same three rules for whatever it sends (``check``): the status
is never 5xx (the bridge is fully configured and Redis is up, so not even 503); a refusal is JSON with an
``error`` code and a ``message`` a person can read; and a refused request leaves the queued work exactly as
it was. The web process never calls the shop or 1C; the emulators behind the settings prove it.

Property-based (hypothesis) for the shapes, explicit for the classics. The explicit cases that
``test_shop_events.py``, ``test_onec_inbound.py`` and ``test_admin_api.py`` already cover are not repeated.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from starlette.testclient import TestClient

from bridge.settings import Settings
from bridge.shop.phpquery import build
from bridge.updates.kinds import KINDS as REGISTERED_KINDS
from bridge.web.app import create_app
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator

SHOP_TOKEN = "shop-app-token-0001"
INBOUND_TOKEN = "inbound-token-0001"
ADMIN_TOKEN = "admin-token-0001"
INBOUND = {"Authorization": f"Bearer {INBOUND_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
LIMIT = 64 * 1024
# The kinds whose items the strategies below know how to imitate; every registered kind's endpoint gets the
# shape-agnostic attacks (``ENDPOINTS``), so a new kind cannot join the API without them.
KINDS = ("stock", "prices", "order-status")
ENDPOINTS = tuple(REGISTERED_KINDS)

# Function-scoped fixtures (the app, Redis) are shared by the examples on purpose: each example compares
# the state before and after itself.
HOSTILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def configured(redis_url: str, shop: ShopEmulator, onec: OnecEmulator, **overrides: Any) -> Settings:
    """Every feature configured, the allow-list holding the test client's address."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "shop_url": shop.url,
        "shop_app_tokens": SHOP_TOKEN,
        "onec_url": onec.url,
        "inbound_token": INBOUND_TOKEN,
        "admin_token": ADMIN_TOKEN,
        "inbound_allowed_ips": "10.0.0.0/8",
        "max_body_bytes": LIMIT,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def client(redis_url: str, shop: ShopEmulator, onec: OnecEmulator) -> Iterator[TestClient]:
    """The web app with a small body limit, so that deep and long bodies stay below it."""
    app = create_app(configured(redis_url, shop, onec))
    with TestClient(app, client=("10.1.2.3", 40000), raise_server_exceptions=False) as test_client:
        yield test_client
    assert shop.requests == [], "the web process called the shop"
    assert onec.calls == [], "the web process called 1C"


@pytest.fixture
def roomy_client(redis_url: str, shop: ShopEmulator, onec: OnecEmulator) -> Iterator[TestClient]:
    """The web app with the default body limit (16 MiB), for values of a megabyte."""
    app = create_app(configured(redis_url, shop, onec, max_body_bytes=16 * 1024 * 1024))
    with TestClient(app, client=("10.1.2.3", 40000), raise_server_exceptions=False) as test_client:
        yield test_client
    assert shop.requests == [] and onec.calls == []


def work(redis: Redis) -> dict[str, Any]:
    """Everything that means "work was accepted": queued jobs, pending events and updates, flush markers."""
    state: dict[str, Any] = {}
    for pattern in ("bridge:order:pending:*", "bridge:pending:*", "bridge:flush:*", "bridge:image:*", "rq:job:*"):
        for key in redis.scan_iter(pattern):
            state[key.decode()] = redis.type(key).decode()
    for key in redis.scan_iter("rq:queue:*"):
        state[key.decode()] = redis.llen(key) if redis.type(key) == b"list" else redis.type(key).decode()
    for kind in ENDPOINTS:
        state[f"pending {kind}"] = redis.hgetall(f"bridge:pending:{kind}")
    return state


def check(answer: Any, before: dict[str, Any], redis: Redis) -> None:
    """The three rules of this module for one answer."""
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])
    if answer.status_code >= 400:
        body = answer.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("message"), str) and len(body["message"]) > 10, body
        assert work(redis) == before, "a refused request changed the queued work"


def post(client: TestClient, redis: Redis, path: str, content: bytes, headers: dict[str, str]) -> Any:
    before = work(redis)
    answer = client.post(path, content=content, headers=headers)
    check(answer, before, redis)
    return answer


# --- strategies -------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# Numbers as raw JSON text, including what json.dumps would never write.
raw_numbers = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "-0", "1e400", "-1e400", "1" + "0" * 5000, "-1", "1.5", "0.000000001", "9" * 20]
)
hostile_text = st.text(max_size=40) | st.sampled_from(["", " ", "\x00", "\u202e", "Ω" * 300, "a" * 300, "'; DROP"])


def event_like() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies shaped like the shop's events, with any value in any place."""
    return st.fixed_dictionaries(
        {
            "event": st.sampled_from(["ONSALEORDERSAVED", "onSaleOrderNew", "ONSALEORDERDELETED", "OTHER"])
            | json_values,
            "data": st.fixed_dictionaries({"FIELDS": st.fixed_dictionaries({"ID": json_values})}) | json_values,
            "auth": st.fixed_dictionaries({"application_token": st.just(SHOP_TOKEN) | json_values}) | json_values,
        },
        optional={"ts": json_values, "event_handler_id": json_values, "extra": json_values},
    )


def item_like(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Items of a 1C body: the real field names with any value, sometimes an unknown field."""
    names = {
        "stock": ["product_id", "xml_id", "sku", "store", "store_id", "amount", "ts"],
        "prices": ["product_id", "xml_id", "sku", "price_type", "price_type_id", "price", "currency", "ts"],
        "order-status": ["order", "status", "status_id", "ts"],
    }[kind]
    value = json_values | hostile_text | st.integers()
    return st.dictionaries(st.sampled_from([*names, "amout", "x"]), value, max_size=len(names) + 1)


# --- /shop/events -----------------------------------------------------------------------------------------


@HOSTILE
@given(body=json_values | event_like())
def test_shop_events_json_of_any_shape(client: TestClient, redis: Redis, body: Any) -> None:
    answer = post(client, redis, "/shop/events", json.dumps(body).encode(), JSON)
    if answer.status_code == 200 and answer.json()["status"] == "accepted":
        assert answer.json()["order_id"].isdigit()


@HOSTILE
@given(body=event_like())
def test_shop_events_forms_of_any_shape(client: TestClient, redis: Redis, body: dict[str, Any]) -> None:
    post(client, redis, "/shop/events", build(body).encode(), FORM)


@HOSTILE
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["", *FORM.values(), *JSON.values(), "text/xml"]))
def test_shop_events_raw_bytes(client: TestClient, redis: Redis, body: bytes, content_type: str) -> None:
    post(client, redis, "/shop/events", body, {"Content-Type": content_type} if content_type else {})


@HOSTILE
@given(number=raw_numbers)
def test_shop_events_numbers_json_cannot_hold(client: TestClient, redis: Redis, number: str) -> None:
    body = f'{{"event": "ONSALEORDERSAVED", "data": {{"FIELDS": {{"ID": {number}}}}}, '
    body += f'"auth": {{"application_token": "{SHOP_TOKEN}"}}}}'
    answer = post(client, redis, "/shop/events", body.encode(), JSON)
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        # A lone UTF-16 surrogate is valid JSON syntax but not Unicode: echoing or comparing it must not fail.
        '{"event": "\\ud800", "auth": {"application_token": "' + SHOP_TOKEN + '"}}',
        '{"event": "ONSALEORDERSAVED", "auth": {"application_token": "\\udfff"}}',
        "[" * 30_000 + "]" * 30_000,  # far deeper than Python's recursion limit, within the size limit
        '{"a":' * 10_000 + "1" + "}" * 10_000,
    ],
    ids=["surrogate-event", "surrogate-token", "deep-list", "deep-object"],
)
def test_shop_events_json_that_python_reads_but_cannot_use(client: TestClient, redis: Redis, body: str) -> None:
    answer = post(client, redis, "/shop/events", body.encode("utf-8", "surrogatepass"), JSON)
    assert answer.status_code in (400, 401)


def test_values_of_a_megabyte_are_refused_briefly(roomy_client: TestClient, redis: Redis) -> None:
    """Within the body limit, but no field of any endpoint needs a megabyte; the answer never echoes one."""
    huge = "x" * 1024 * 1024
    cases: list[tuple[str, bytes, dict[str, str], set[int]]] = [
        ("/shop/events", build({"event": huge, "auth": {"application_token": SHOP_TOKEN}}).encode(), FORM, {200}),
        (
            "/shop/events",
            build({"event": "ONSALEORDERSAVED", "auth": {"application_token": huge}}).encode(),
            FORM,
            {401},
        ),
        (
            "/shop/events",
            json.dumps(
                {
                    "event": "ONSALEORDERSAVED",
                    "data": {"FIELDS": {"ID": "9" * 2**20}},
                    "auth": {"application_token": SHOP_TOKEN},
                }
            ).encode(),
            JSON,
            {400},
        ),
        (
            "/1c/stock",
            json.dumps({"items": [{"xml_id": huge, "store": "Main", "amount": 1}]}).encode(),
            {**INBOUND, **JSON},
            {400},
        ),
        (
            "/1c/order-status",
            json.dumps({"items": [{"order": huge, "status_id": "N"}]}).encode(),
            {**INBOUND, **JSON},
            {400},
        ),
        ("/admin/failed/retry", json.dumps({"ids": [huge[:-100]]}).encode(), {**ADMIN, **JSON}, {400}),
    ]
    for path, body, headers, statuses in cases:
        answer = post(roomy_client, redis, path, body, headers)
        assert answer.status_code in statuses, (path, answer.status_code, answer.text[:300])
        assert len(answer.content) < 5000, path  # nothing echoed back at length


def test_shop_events_encodings(client: TestClient, redis: Redis) -> None:
    """The shop writes UTF-8; a cp1251 body is read when its charset is named and refused in words when not."""
    text = build(
        {"event": "ONSALEORDERSAVED", "data": {"FIELDS": {"ID": "301"}}, "auth": {"application_token": SHOP_TOKEN}}
    )
    text += "&data[FIELDS][COMMENT]=Заказ"
    named = post(
        client,
        redis,
        "/shop/events",
        text.encode("cp1251"),
        {"Content-Type": f"{FORM['Content-Type']}; charset=windows-1251"},
    )
    assert named.status_code == 200, named.text
    unnamed = post(client, redis, "/shop/events", "Заказ=1&".encode("cp1251") + text.encode("cp1251"), FORM)
    assert unnamed.status_code == 400 and "charset" in unnamed.json()["message"]
    bom = post(client, redis, "/shop/events", codecs.BOM_UTF8 + json.dumps({"event": "x"}).encode(), JSON)
    assert bom.status_code == 401  # read (the BOM is skipped), then refused for its missing token


# --- /1c/* ------------------------------------------------------------------------------------------------


@HOSTILE
@given(kind=st.sampled_from(ENDPOINTS), body=json_values)
def test_onec_json_of_any_shape(client: TestClient, redis: Redis, kind: str, body: Any) -> None:
    post(client, redis, f"/1c/{kind}", json.dumps(body).encode(), {**INBOUND, **JSON})


@HOSTILE
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_onec_items_with_any_values(client: TestClient, redis: Redis, data: st.DataObject, kind: str) -> None:
    items = data.draw(st.lists(item_like(kind), min_size=1, max_size=5))
    answer = post(client, redis, f"/1c/{kind}", json.dumps({"items": items}).encode(), {**INBOUND, **JSON})
    if answer.status_code == 202:
        assert answer.json()["accepted"] == len(items)
    else:
        assert answer.status_code == 400
        assert answer.json()["details"]


@HOSTILE
@given(kind=st.sampled_from(KINDS), number=raw_numbers)
def test_onec_numbers_json_cannot_hold(client: TestClient, redis: Redis, kind: str, number: str) -> None:
    item = {
        "stock": '{"xml_id": "a", "store": "Main", "amount": %s}',
        "prices": '{"xml_id": "a", "price_type": "Retail", "price": %s, "currency": "RUB"}',
        "order-status": '{"order": %s, "status_id": "N"}',
    }[kind] % number
    answer = post(client, redis, f"/1c/{kind}", f'{{"items": [{item}]}}'.encode(), {**INBOUND, **JSON})
    assert answer.status_code in (202, 400)
    if number in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-1") or len(number) > 100:
        assert answer.status_code == 400


@pytest.mark.parametrize("kind", ENDPOINTS)
def test_onec_deep_huge_and_unicode_edge_bodies(client: TestClient, redis: Redis, kind: str) -> None:
    headers = {**INBOUND, **JSON}
    for body in (
        "[" * 30_000 + "]" * 30_000,
        '{"items": ' + "[" * 30_000 + "]" * 30_000 + "}",
        '{"items": [' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "]}",
        '{"items": [{"xml_id": "\\ud800", "order": "\\ud800", "store": "Main", "amount": 1}]}',
        '{"items": [{"xml_id": "' + "x" * (LIMIT - 200) + '", "order": "1", "store": "Main", "amount": 1}]}',
    ):
        answer = post(client, redis, f"/1c/{kind}", body.encode("utf-8", "surrogatepass"), headers)
        assert answer.status_code == 400, (body[:60], answer.text[:300])
        assert len(answer.content) < 20_000  # a refusal names the place; it does not echo a huge value


@HOSTILE
@given(body=st.binary(max_size=300), kind=st.sampled_from(ENDPOINTS))
def test_onec_raw_bytes(client: TestClient, redis: Redis, body: bytes, kind: str) -> None:
    post(client, redis, f"/1c/{kind}", body, INBOUND)


# --- /admin/* ---------------------------------------------------------------------------------------------


@HOSTILE
@given(body=json_values | st.fixed_dictionaries({"ids": json_values}) | st.fixed_dictionaries({"all": json_values}))
def test_admin_retry_bodies_of_any_shape(client: TestClient, redis: Redis, body: Any) -> None:
    post(client, redis, "/admin/failed/retry", json.dumps(body).encode(), {**ADMIN, **JSON})


@pytest.mark.parametrize("body", ['{"ids": ["\\ud800"]}', "[" * 30_000, '{"ids": [' + "1" * 5000 + "]}"])
def test_admin_retry_json_that_python_reads_but_cannot_use(client: TestClient, redis: Redis, body: str) -> None:
    answer = post(client, redis, "/admin/failed/retry", body.encode("utf-8", "surrogatepass"), {**ADMIN, **JSON})
    assert answer.status_code == 400


@HOSTILE
@given(
    params=st.dictionaries(st.sampled_from(["entity", "id", "limit", "x"]), hostile_text | st.integers().map(str)),
    path=st.sampled_from(["/admin/log", "/admin/failed"]),
)
def test_admin_queries_of_any_shape(client: TestClient, redis: Redis, params: dict[str, str], path: str) -> None:
    before = work(redis)
    check(client.get(path, params=params, headers=ADMIN), before, redis)


@HOSTILE
@given(job_id=st.text(min_size=1, max_size=300).filter(lambda t: "/" not in t and t not in (".", "..")))
def test_admin_retry_of_any_job_id(client: TestClient, redis: Redis, job_id: str) -> None:
    before = work(redis)
    answer = client.post(f"/admin/failed/{quote(job_id, safe='')}/retry", headers=ADMIN)
    check(answer, before, redis)
    assert answer.status_code in (400, 404, 405)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}2"},  # as long as the token, differs only at the end
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": "Bearer " + "ÿ" * len(ADMIN_TOKEN)},  # latin-1 in a header, as some clients send
        {"Authorization": f"bearer  {ADMIN_TOKEN} extra"},
        {"X-Api-Token": ADMIN_TOKEN},  # the 1C header is not the admin one
    ],
    ids=["last-char", "shorter", "latin-1", "trailing-words", "wrong-header"],
)
def test_admin_near_miss_tokens_are_401(client: TestClient, redis: Redis, headers: dict[str, str]) -> None:
    for path in ("/admin/failed", "/admin/log"):
        answer = client.get(path, headers={k: v.encode("latin-1") for k, v in headers.items()})
        assert answer.status_code == 401
    answer = client.get("/admin/failed", params={"token": ADMIN_TOKEN})  # never from the query string
    assert answer.status_code == 401
    before = work(redis)
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    check(client.post("/admin/failed/retry", json={"all": True}, headers=raw), before, redis)
