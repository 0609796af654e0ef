"""The shop REST client: classification, retries, pauses, batch and paging, and keeping the key secret.

Unit tests drive the client through ``httpx.MockTransport`` with fakeredis; the integration tests at the
end talk to the shop emulator over real HTTP with a real redis-server.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import fakeredis
import httpx
import pytest
import redis

from bridge import keys
from bridge.errors import Cause, PermanentError, TransientError
from bridge.shop import (
    BatchResult,
    CallRecord,
    ShopClient,
    ShopError,
    ShopPermanentError,
    ShopTransientError,
    classify,
)
from tests.peers.shop import ShopEmulator

KEY = "s3cr3tw3bh00kk3y"
BASE = f"https://shop.example/rest/1/{KEY}/"

Handler = Callable[[httpx.Request], httpx.Response]


def ok(result: Any, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"result": result, "time": {"start": time.time()}, **extra})


def fail(status: int, error: Any, description: str = "", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "error_description": description, **extra})


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]

    def methods(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.requests]


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    conn = fakeredis.FakeRedis()
    yield conn
    conn.close()


@pytest.fixture
def make_client(fake_redis: fakeredis.FakeRedis) -> Iterator[Callable[..., ShopClient]]:
    clients: list[ShopClient] = []

    def make(handler: Handler, **kwargs: Any) -> ShopClient:
        options: dict[str, Any] = {"rate": 1000.0, "burst": 1000, "sleep": lambda s: None}
        options.update(kwargs)
        client = ShopClient(BASE, redis=fake_redis, transport=httpx.MockTransport(handler), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text, text


def everything_about(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error.__dict__)


# -- classification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "cause"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", "rate_limited"),
        (429, "OPERATION_TIME_LIMIT", "paused"),
        (503, "OVERLOAD_LIMIT", "overload"),
        (500, "INTERNAL_SERVER_ERROR", "unavailable"),
        (500, "ERROR_UNEXPECTED_ANSWER", "unavailable"),
        (502, "SOMETHING_NEW", "unavailable"),
        (500, 0, "unavailable"),
        # Legacy servers answer HTTP 200 with an error body: the body decides.
        (200, "QUERY_LIMIT_EXCEEDED", "rate_limited"),
        (200, "OVERLOAD_LIMIT", "overload"),
    ],
)
def test_transient_errors(status: int, error: Any, cause: str) -> None:
    found = classify("sale.order.get", status, {"error": error, "error_description": "x"})
    assert isinstance(found, ShopTransientError) and isinstance(found, TransientError)
    assert found.cause == cause
    assert found.code == str(error)
    assert found.status == status
    assert found.method == "sale.order.get"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, "NO_AUTH_FOUND"),
        (401, "INVALID_CREDENTIALS"),
        (403, "INVALID_CREDENTIALS"),
        (403, "insufficient_scope"),
        (403, "ACCESS_DENIED"),
        (403, "WRONG_AUTH_TYPE"),
        (401, "expired_token"),
        (404, "ERROR_METHOD_NOT_FOUND"),
        (400, "ERROR_CORE"),
        (400, 200540400001),
        (400, "200540400001"),
        (400, 100),
        (418, "SOMETHING_NEW"),
        (200, "NO_AUTH_FOUND"),
        (200, "insufficient_scope"),
        (200, 200040300010),
    ],
)
def test_permanent_errors(status: int, error: Any) -> None:
    found = classify("sale.order.get", status, {"error": error, "error_description": "nope"})
    assert isinstance(found, ShopPermanentError) and isinstance(found, PermanentError)
    assert not isinstance(found, TransientError)
    assert found.code == str(error)
    assert found.description == "nope"


def test_message_says_what_happened_in_plain_words() -> None:
    body = b'{"error":0,"error_description":"Required fields: price, currency"}'
    found = classify("catalog.price.update", 400, body)
    assert str(found) == "shop answered catalog.price.update: error 0 Required fields: price, currency (HTTP 400)"


@pytest.mark.parametrize(
    ("status", "transient"), [(502, True), (503, True), (500, True), (404, False), (403, False), (200, True)]
)
def test_html_pages_are_classified_by_status(status: int, transient: bool) -> None:
    found = classify("sale.order.list", status, b"<html><body><h1>Bad Gateway</h1></body></html>")
    assert isinstance(found, ShopTransientError if transient else ShopPermanentError)
    assert found is not None and found.code is None
    assert "not JSON" in str(found)


def test_success_is_not_an_error() -> None:
    assert classify("sale.order.get", 200, {"result": {"order": {"id": 1}}}) is None
    assert classify("sale.order.get", 200, b'{"result": true}') is None
    assert classify("sale.order.get", 200, {"result": [], "error": ""}) is None


def test_errors_survive_pickling() -> None:
    error = ShopTransientError("shop busy", method="batch", cause=Cause.PAUSED, retry_after=12.0, code="X", status=429)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.cause, copy.retry_after, copy.method, copy.code, copy.status) == (
        ShopTransientError,
        "shop busy",
        "paused",
        12.0,
        "batch",
        "X",
        429,
    )


# -- one call ------------------------------------------------------------------------------------------------


def test_call_posts_json_and_returns_the_envelope(make_client: Callable[..., ShopClient]) -> None:
    recorder = Recorder(ok({"order": {"id": 7}}, total=1))
    client = make_client(recorder)
    envelope = client.call("sale.order.get", {"id": 7, "price": Decimal("10.50")})
    assert envelope["result"] == {"order": {"id": 7}}
    assert envelope["total"] == 1
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == BASE + "sale.order.get"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("bridge/")
    assert json.loads(request.content) == {"id": 7, "price": 10.5}
    assert client.result("sale.order.get", {"id": 7}) == {"order": {"id": 7}}


def test_error_body_raises_a_classified_error(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(fail(400, 0, "Required fields: price, currency")))
    with pytest.raises(ShopPermanentError) as caught:
        client.call("catalog.price.update", {"id": 1, "fields": {}})
    assert str(caught.value) == (
        "shop answered catalog.price.update: error 0 Required fields: price, currency (HTTP 400)"
    )


def test_legacy_http_200_error_body(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(fail(200, "NO_AUTH_FOUND", "Wrong authorization data")))
    with pytest.raises(ShopPermanentError) as caught:
        client.call("sale.order.list")
    assert caught.value.code == "NO_AUTH_FOUND" and caught.value.status == 200


def test_html_502_is_transient(make_client: Callable[..., ShopClient]) -> None:
    page = httpx.Response(502, html=f"<html>nginx: upstream {BASE} failed</html>")
    client = make_client(Recorder(page))
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.get", {"id": 1})
    assert caught.value.cause == "unavailable" and caught.value.status == 502
    assert_no_secret(everything_about(caught.value))


def test_timeout_is_transient_and_hides_the_url(make_client: Callable[..., ShopClient]) -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out reading {request.url}", request=request)

    client = make_client(hang)
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.get", {"id": 1})
    assert caught.value.cause == "unavailable" and caught.value.status is None
    assert "no answer within 30s" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert_no_secret(everything_about(caught.value))


def test_connection_error_message_is_scrubbed(make_client: Callable[..., ShopClient]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"[Errno 111] Connection refused: {request.url}", request=request)

    client = make_client(refuse)
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.get")
    assert "ConnectError" in str(caught.value)
    assert caught.value.__context__ is None
    assert_no_secret(everything_about(caught.value))


def test_real_connection_refused(fake_redis: fakeredis.FakeRedis) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rest/1/{KEY}/"
    with ShopClient(url, redis=fake_redis, timeout=2) as client, pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.get")
    assert caught.value.cause == "unavailable"
    assert_no_secret(everything_about(caught.value), repr(client))


def test_nothing_secret_reaches_the_logs(
    make_client: Callable[..., ShopClient], caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.url}", request=request)

    caplog.set_level(logging.DEBUG)
    answers = Recorder(
        ok(True),
        fail(503, "QUERY_LIMIT_EXCEEDED", f"slow down, {KEY}"),
        ok(True),
        fail(400, 0, f"bad request to /rest/1/{KEY}/"),
        fail(429, "OPERATION_TIME_LIMIT"),
        refuse,
    )
    client = make_client(answers)
    errors: list[BaseException] = []
    for method in ("a.ok", "b.retried", "c.bad", "d.paused", "e.refused"):
        try:
            client.call(method, {"x": 1})
        except ShopError as exc:
            errors.append(exc)
    assert len(errors) == 3
    assert len(answers.requests) == 6
    assert any(r.name == "bridge.shop" for r in caplog.records)
    assert_no_secret(*(r.getMessage() for r in caplog.records), *(everything_about(e) for e in errors))
    assert_no_secret(*(str(e) for e in errors), *(e.description for e in errors if isinstance(e, ShopError)))


def test_on_call_records_every_request(make_client: Callable[..., ShopClient]) -> None:
    records: list[CallRecord] = []
    client = make_client(Recorder(fail(503, "QUERY_LIMIT_EXCEEDED"), ok(True)), on_call=records.append)
    client.call("sale.order.get")
    assert [(r.method, r.status, r.outcome, r.code) for r in records] == [
        ("sale.order.get", 503, "transient", "QUERY_LIMIT_EXCEEDED"),
        ("sale.order.get", 200, "ok", None),
    ]
    assert all(r.duration >= 0 for r in records)


def test_redirect_to_the_same_host_is_posted_again(make_client: Callable[..., ShopClient]) -> None:
    moved = httpx.Response(302, headers={"Location": f"/rest/1/{KEY}/sale.order.get.json"})
    recorder = Recorder(moved, ok({"order": {"id": 1}}))
    client = make_client(recorder)
    assert client.result("sale.order.get", {"id": 1}) == {"order": {"id": 1}}
    assert [r.method for r in recorder.requests] == ["POST", "POST"]
    assert recorder.requests[1].url.path.endswith("sale.order.get.json")
    assert json.loads(recorder.requests[1].content) == {"id": 1}


def test_redirect_to_another_host_is_permanent(make_client: Callable[..., ShopClient]) -> None:
    moved = httpx.Response(301, headers={"Location": f"https://elsewhere.example/rest/1/{KEY}/sale.order.get"})
    recorder = Recorder(moved)
    client = make_client(recorder)
    with pytest.raises(ShopPermanentError) as caught:
        client.call("sale.order.get")
    assert len(recorder.requests) == 1
    assert "redirected" in str(caught.value)
    assert_no_secret(everything_about(caught.value))


# -- rate limit and pauses -----------------------------------------------------------------------------------


def test_query_limit_is_retried_with_growing_back_off(make_client: Callable[..., ShopClient]) -> None:
    sleeps: list[float] = []
    recorder = Recorder(fail(503, "QUERY_LIMIT_EXCEEDED"), fail(503, "QUERY_LIMIT_EXCEEDED"), ok({"n": 1}))
    client = make_client(recorder, sleep=sleeps.append)
    assert client.result("sale.order.list") == {"n": 1}
    assert len(recorder.requests) == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] <= 0.5 and sleeps[0] < sleeps[1] <= 1.0


def test_query_limit_fills_the_shared_bucket(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(fail(503, "QUERY_LIMIT_EXCEEDED"), ok(True)), rate=20, burst=50)
    assert client.bucket.capacity == 45  # conservative: 10 % below the shop's burst
    client.call("sale.order.list")
    # penalize() filled the bucket, so the retry had to wait for a slot to drain before it could go out.
    assert int(client.bucket.redis.get(keys.SHOP_WAITS) or 0) == 1
    assert client.bucket.level() == pytest.approx(client.bucket.capacity, abs=0.5)


def test_query_limit_gives_up_after_max_retries(make_client: Callable[..., ShopClient]) -> None:
    recorder = Recorder(fail(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"))
    client = make_client(recorder, max_retries=3)
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.list")
    assert len(recorder.requests) == 4
    assert caught.value.cause == "rate_limited"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_operation_time_limit_pauses_the_method(make_client: Callable[..., ShopClient]) -> None:
    reset = time.time() + 100
    recorder = Recorder(fail(429, "OPERATION_TIME_LIMIT", time={"operating_reset_at": reset}), ok(True))
    client = make_client(recorder)
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.list")
    assert caught.value.cause == "paused"
    assert caught.value.retry_after == pytest.approx(100, abs=2)
    assert client.pauses.paused_until("sale.order.list") == pytest.approx(reset)
    with pytest.raises(ShopTransientError) as again:
        client.call("sale.order.list")
    assert again.value.cause == "paused" and again.value.retry_after == pytest.approx(100, abs=2)
    assert len(recorder.requests) == 1
    # Other methods keep working.
    assert client.result("sale.order.get") is True
    assert len(recorder.requests) == 2


def test_pause_falls_back_to_the_last_success_then_to_ten_minutes(make_client: Callable[..., ShopClient]) -> None:
    reset = time.time() + 200
    recorder = Recorder(
        ok(True, time={"operating_reset_at": reset}),
        fail(429, "OPERATION_TIME_LIMIT"),
        fail(429, "OPERATION_TIME_LIMIT"),
    )
    client = make_client(recorder)
    client.call("sale.order.list")
    with pytest.raises(ShopTransientError) as first:
        client.call("sale.order.list")
    assert first.value.retry_after == pytest.approx(200, abs=2)
    with pytest.raises(ShopTransientError) as second:
        client.call("catalog.price.list")
    assert second.value.retry_after == pytest.approx(600, abs=2)


def test_overload_pauses_everything(make_client: Callable[..., ShopClient]) -> None:
    recorder = Recorder(fail(503, "OVERLOAD_LIMIT", "REST API is blocked due to overload"), ok(True))
    client = make_client(recorder)
    with pytest.raises(ShopTransientError) as caught:
        client.call("sale.order.list")
    assert caught.value.cause == "overload" and caught.value.retry_after == pytest.approx(600)
    for method in ("sale.order.get", "catalog.price.update"):
        with pytest.raises(ShopTransientError) as blocked:
            client.call(method)
        assert blocked.value.cause == "overload"
    with pytest.raises(ShopTransientError):
        client.batch({"a": ("sale.order.get", {"id": 1})})
    assert len(recorder.requests) == 1


# -- batch ------------------------------------------------------------------------------------------------------


def test_batch_sends_commands_and_parses_the_answer(make_client: Callable[..., ShopClient]) -> None:
    answer = ok(
        {
            "result": {"list": {"orders": [{"id": 1}]}, "upd": {"price": {"id": 5}}},
            "result_error": {
                "bad": {"error": 0, "error_description": "Required fields: price, currency"},
                "busy": {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"},
            },
            "result_total": {"list": 51},
            "result_next": {"list": 50},
            "result_time": {"list": {"operating_reset_at": time.time() + 300}},
        }
    )
    recorder = Recorder(answer)
    client = make_client(recorder)
    result = client.batch(
        {
            "list": ("sale.order.list", {"select": ["id"], "filter": {">id": 0}}),
            "upd": ("catalog.price.update", {"id": 5, "fields": {"price": 10, "currency": "RUB"}}),
            "bad": ("catalog.price.update", {"id": 6, "fields": {}}),
            "busy": ("catalog.price.update", {"id": 7, "fields": {"price": 1}}),
        },
        halt=True,
    )
    body = recorder.bodies()[0]
    assert recorder.methods() == ["batch"]
    assert body["halt"] == 1
    assert body["cmd"]["list"] == "sale.order.list?select%5B0%5D=id&filter%5B%3Eid%5D=0"
    assert body["cmd"]["bad"] == "catalog.price.update?id=6"
    assert result.results == {"list": {"orders": [{"id": 1}]}, "upd": {"price": {"id": 5}}}
    assert result.totals == {"list": 51} and result.nexts == {"list": 50}
    assert isinstance(result.errors["bad"], ShopPermanentError)
    assert result.errors["bad"].method == "catalog.price.update"
    assert str(result.errors["bad"]) == "shop answered catalog.price.update: error 0 Required fields: price, currency"
    assert isinstance(result.errors["busy"], ShopTransientError) and result.errors["busy"].cause == "unavailable"


def test_batch_tolerates_php_empty_maps_and_lists(make_client: Callable[..., ShopClient]) -> None:
    answer = ok({"result": [True, {"id": 2}], "result_error": [], "result_total": [], "result_next": []})
    client = make_client(Recorder(answer))
    result = client.batch({"0": ("a.b", {}), "1": ("c.d", {"id": 2})})
    assert result == BatchResult(results={"0": True, "1": {"id": 2}})


def test_batch_refuses_more_than_fifty(make_client: Callable[..., ShopClient]) -> None:
    recorder = Recorder(ok(True))
    client = make_client(recorder)
    with pytest.raises(ValueError):
        client.batch({str(i): ("a.b", {}) for i in range(51)})
    assert client.batch({}) == BatchResult()
    assert recorder.requests == []


def test_batch_is_not_sent_when_a_method_inside_is_paused(make_client: Callable[..., ShopClient]) -> None:
    recorder = Recorder(ok({"result": {}}))
    client = make_client(recorder)
    client.pauses.pause("catalog.price.update", time.time() + 60)
    with pytest.raises(ShopTransientError) as caught:
        client.batch({"a": ("sale.order.get", {"id": 1}), "b": ("catalog.price.update", {"id": 1})})
    assert caught.value.cause == "paused" and caught.value.retry_after == pytest.approx(60, abs=2)
    assert "catalog.price.update" in str(caught.value)
    assert recorder.requests == []


def test_batch_command_hitting_the_operating_limit_pauses_its_method(make_client: Callable[..., ShopClient]) -> None:
    answer = ok({"result": {}, "result_error": {"a": {"error": "OPERATION_TIME_LIMIT", "error_description": ""}}})
    recorder = Recorder(answer)
    client = make_client(recorder)
    result = client.batch({"a": ("sale.order.list", {})})
    assert isinstance(result.errors["a"], ShopTransientError) and result.errors["a"].cause == "paused"
    assert client.pauses.paused_until("sale.order.list") is not None


def test_batch_many_chunks_by_fifty_and_merges(make_client: Callable[..., ShopClient]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        cmd = json.loads(request.content)["cmd"]
        return ok({"result": {k: {"ok": k} for k in cmd}, "result_error": [], "result_total": {}})

    recorder = Recorder(answer)
    client = make_client(recorder)
    commands = {f"c{i}": ("catalog.product.update", {"id": i}) for i in range(120)}
    result = client.batch_many(commands)
    assert [len(b["cmd"]) for b in recorder.bodies()] == [50, 50, 20]
    assert set(result.results) == set(commands) and result.errors == {}


def test_batch_many_keeps_done_work_when_a_later_chunk_fails(make_client: Callable[..., ShopClient]) -> None:
    def first(request: httpx.Request) -> httpx.Response:
        return ok({"result": {k: True for k in json.loads(request.content)["cmd"]}})

    recorder = Recorder(first, fail(500, "INTERNAL_SERVER_ERROR"))
    client = make_client(recorder)
    result = client.batch_many({f"c{i}": ("a.b", {"i": i}) for i in range(130)})
    assert len(recorder.requests) == 2
    assert len(result.results) == 50 and len(result.errors) == 80
    assert all(isinstance(e, ShopTransientError) for e in result.errors.values())


# -- paging -------------------------------------------------------------------------------------------------------


def test_list_all_follows_next_until_it_is_missing(make_client: Callable[..., ShopClient]) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        start = json.loads(request.content).get("start", 0)
        items = [{"id": i} for i in range(start, min(start + 50, 120))]
        extra = {"next": start + 50} if start + 50 < 120 else {}
        return ok({"orders": items}, total=120, **extra)

    recorder = Recorder(page)
    client = make_client(recorder)
    ids = [o["id"] for o in client.list_all("sale.order.list", {"select": ["id"]}, "orders")]
    assert ids == list(range(120))
    assert [b.get("start") for b in recorder.bodies()] == [None, 50, 100]
    assert all(b["select"] == ["id"] for b in recorder.bodies())


def test_list_all_tolerates_an_empty_result(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(ok([], total=0)))
    assert list(client.list_all("sale.order.list", None, "orders")) == []


def test_list_all_stops_when_next_does_not_advance(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(ok({"orders": [{"id": 1}]}, next=0)))
    with pytest.raises(ShopPermanentError):
        list(client.list_all("sale.order.list", {}, "orders"))


def test_list_all_refuses_a_wrong_key(make_client: Callable[..., ShopClient]) -> None:
    client = make_client(Recorder(ok({"orders": [{"id": 1}]})))
    with pytest.raises(ShopPermanentError):
        list(client.list_all("sale.order.list", {}, "items"))


# -- integration: the shop emulator over real HTTP, a real redis-server ------------------------------------------


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def shop_client(shop: ShopEmulator, real_redis: redis.Redis) -> Iterator[ShopClient]:
    with ShopClient(shop.url, redis=real_redis, timeout=10) as client:
        yield client


def test_list_all_pages_through_120_orders(shop: ShopEmulator, shop_client: ShopClient) -> None:
    created = {shop.add_order()["id"] for _ in range(120)}
    shop.clear_records()
    orders = list(shop_client.list_all("sale.order.list", {"select": ["id"], "order": {"id": "asc"}}, "orders"))
    assert [o["id"] for o in orders] == sorted(created)
    assert [name for name, _ in shop.requests] == ["sale.order.list"] * 3
    assert [params.get("start") for _, params in shop.requests] == [None, 50, 100]


def test_batch_of_50_storeproduct_updates(shop: ShopEmulator, shop_client: ShopClient) -> None:
    store = shop.add_store()["id"]
    records: dict[int, int] = {}  # product id → its stock record id
    for _ in range(50):
        product = shop.add_product()["id"]
        records[product] = shop.set_amount(product, store, 1)["id"]
    shop.clear_records()
    commands = {
        f"p{product}": ("catalog.storeproduct.update", {"id": record, "fields": {"amount": product % 7 + 0.5}})
        for product, record in records.items()
    }
    result = shop_client.batch(commands)
    assert result.errors == {}
    assert len(result.results) == 50
    assert [name for name, _ in shop.requests] == ["batch"]
    assert shop.count("catalog.storeproduct.update") == 50
    assert all(shop.amount(product, store) == product % 7 + 0.5 for product in records)


def test_batch_errors_come_back_per_command(shop: ShopEmulator, shop_client: ShopClient) -> None:
    store = shop.add_store()["id"]
    product = shop.add_product()["id"]
    record = shop.set_amount(product, store, 1)["id"]
    result = shop_client.batch(
        {
            "missing": ("catalog.storeproduct.update", {"id": 999_999, "fields": {"amount": 1}}),
            "good": ("catalog.storeproduct.update", {"id": record, "fields": {"amount": 3}}),
            "typo": ("catalog.storeproduct.updat", {"id": record}),
        }
    )
    assert set(result.results) == {"good"}
    assert isinstance(result.errors["missing"], ShopPermanentError)
    assert str(result.errors["missing"]) == (
        "shop answered catalog.storeproduct.update: error 0 Store product does not exist"
    )
    assert result.errors["typo"].code == "ERROR_METHOD_NOT_FOUND"
    assert shop.amount(product, store) == 3


@pytest.mark.slow  # about 10 s: 60 calls at the shop's real rate
def test_calls_stay_under_the_shop_rate_limit(shop: ShopEmulator, real_redis: redis.Redis) -> None:
    shop.set_rate_limit(5, burst=10)
    records: list[CallRecord] = []
    with ShopClient(shop.url, redis=real_redis, rate=5, burst=10, on_call=records.append) as client:
        for _ in range(60):
            client.result("sale.status.list")
    assert shop.status_counts[200] == 60
    assert shop.status_counts[503] <= 2
    assert sum(r.outcome == "ok" for r in records) == 60


def test_query_limit_exceeded_is_retried_until_it_passes(shop: ShopEmulator, real_redis: redis.Redis) -> None:
    shop.set_rate_limit(5, burst=10)
    # A client that believes the shop allows far more than it does: the shop's 503s must slow it down.
    with ShopClient(shop.url, redis=real_redis, rate=100, burst=50) as client:
        for _ in range(30):
            client.result("sale.status.list")
    assert shop.status_counts[200] == 30
    assert shop.status_counts[503] > 0
    assert shop.count("sale.status.list") == 30


def test_operation_time_limit_pauses_the_method_for_every_client(
    shop: ShopEmulator, shop_client: ShopClient, real_redis: redis.Redis
) -> None:
    shop.pause_method("sale.order.list", 120)
    with pytest.raises(ShopTransientError) as caught:
        shop_client.call("sale.order.list")
    assert caught.value.cause == "paused"
    assert caught.value.retry_after == pytest.approx(120, abs=3)
    sent = len(shop.requests)
    with ShopClient(shop.url, redis=real_redis) as other, pytest.raises(ShopTransientError) as again:
        other.call("sale.order.list", {"select": ["id"]})
    assert again.value.cause == "paused"
    assert len(shop.requests) == sent
    assert shop_client.result("sale.status.list")  # other methods are not paused


def test_overload_limit_pauses_all_calls(shop: ShopEmulator, shop_client: ShopClient) -> None:
    shop.set_overload(True)
    with pytest.raises(ShopTransientError) as caught:
        shop_client.call("sale.status.list")
    assert caught.value.cause == "overload"
    shop.set_overload(False)
    with pytest.raises(ShopTransientError) as again:
        shop_client.call("catalog.store.list")
    assert again.value.cause == "overload"
    assert len(shop.requests) == 1


@pytest.mark.slow  # about 6 s: two clients share one bucket at the real rate
def test_two_processes_share_the_rate_limit(shop: ShopEmulator, redis_url: str) -> None:
    shop.set_rate_limit(5, burst=10)
    outcomes: list[str] = []

    def work() -> None:
        with redis.Redis.from_url(redis_url) as conn, ShopClient(shop.url, redis=conn, rate=5, burst=10) as client:
            for _ in range(20):
                client.result("sale.status.list")
                outcomes.append("ok")

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["ok"] * 40
    assert shop.status_counts[200] == 40
    assert shop.status_counts[503] <= 1


def test_emulator_errors_and_legacy_200(shop: ShopEmulator, shop_client: ShopClient) -> None:
    shop.fail_next("sale.order.get", error=200540400001, status=400, description="order does not exist")
    with pytest.raises(ShopPermanentError) as caught:
        shop_client.call("sale.order.get", {"id": 1})
    assert caught.value.code == "200540400001" and caught.value.status == 400
    shop.legacy_200_errors = True
    shop.fail_next("sale.order.get", error="INTERNAL_SERVER_ERROR", status=500)
    with pytest.raises(ShopTransientError) as legacy:
        shop_client.call("sale.order.get", {"id": 1})
    assert legacy.value.status == 200 and legacy.value.cause == "unavailable"


def test_wrong_webhook_key_is_permanent_and_never_shown(
    shop: ShopEmulator, real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = shop.url.replace(shop.webhook_code, "wr0ng-k3y-value")
    with ShopClient(wrong, redis=real_redis) as client, pytest.raises(ShopPermanentError) as caught:
        client.call("sale.order.list")
    assert caught.value.code == "NO_AUTH_FOUND" and caught.value.status == 401
    with ShopClient(shop.url, redis=real_redis) as client:
        client.call("sale.status.list")
    texts = [everything_about(caught.value), *(r.getMessage() for r in caplog.records)]
    assert all("wr0ng-k3y-value" not in t and shop.webhook_code not in t for t in texts)
