"""OnecClient: what goes on the wire, that nothing raises for 1C's answers, and the cross-process cap.

Unit checks use httpx.MockTransport; the rest talks to the 1C emulator over real HTTP with a real
redis-server holding the semaphore, because the cap is only meaningful across connections and processes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import httpx
import pytest
import redis

from bridge import keys
from bridge.errors import TransientError
from bridge.locks import ConcurrencyLimit
from bridge.onec.answers import Outcome
from bridge.onec.client import OnecClient
from tests.peers.onec import OnecEmulator

BASE = "https://1c.example/Base/hs/exchange/"
PASSWORD = "s3cr3t-Пароль"
DOCUMENT = {"Number": "300", "SiteId": "300", "Comment": "Позвоните до обеда", "Goods": []}


class Recorder:
    """A MockTransport handler that records requests and answers with a canned response."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda request: httpx.Response(201, json={"status": "created"}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.respond(request)


@pytest.fixture
def fake() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def make_client(fake: redis.Redis, handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> OnecClient:
    options: dict[str, Any] = {"user": "Обмен", "password": PASSWORD, "timeout": 5, "concurrency": 2}
    options.update(kwargs)
    return OnecClient(BASE, redis=fake, transport=httpx.MockTransport(handler), **options)


def test_posts_the_document_as_the_contract_says(fake: redis.Redis) -> None:
    recorder = Recorder()
    with make_client(fake, recorder) as client:
        answer = client.send_order(DOCUMENT, idempotency_key="300")
    assert answer.outcome is Outcome.DELIVERED
    assert answer.status == 201
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == BASE + "orders"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["idempotency-key"] == "300"
    # UTF-8 text, not \\u escapes: 1C reads it as written.
    assert request.content == json.dumps(DOCUMENT, ensure_ascii=False).encode("utf-8")
    assert "Позвоните до обеда".encode() in request.content
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode("utf-8") == f"Обмен:{PASSWORD}"


def test_no_user_means_no_authorization_header(fake: redis.Redis) -> None:
    recorder = Recorder()
    with make_client(fake, recorder, user="", password="") as client:
        client.send_order(DOCUMENT, idempotency_key="300")
    assert "authorization" not in recorder.requests[0].headers


def test_credentials_in_the_url_are_moved_to_the_header(fake: redis.Redis) -> None:
    recorder = Recorder()
    url = "https://exchange:pw%40x@1c.example/Base/hs/exchange"  # no trailing slash either
    client = OnecClient(url, redis=fake, timeout=5, concurrency=1, transport=httpx.MockTransport(recorder))
    client.send_order(DOCUMENT, idempotency_key="1")
    request = recorder.requests[0]
    assert str(request.url) == "https://1c.example/Base/hs/exchange/orders"
    assert base64.b64decode(request.headers["authorization"][6:]).decode() == "exchange:pw@x"
    assert "pw@x" not in repr(client) and "pw%40x" not in repr(client)


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(200, json={"status": "updated"}), Outcome.DELIVERED),
        (httpx.Response(409, json={"status": "exists"}), Outcome.DELIVERED),
        (httpx.Response(401, headers={"WWW-Authenticate": "Basic"}), Outcome.PERMANENT),
        (httpx.Response(422, json={"status": "error", "message": "Не заполнен контрагент"}), Outcome.PERMANENT),
        (httpx.Response(503, text="Service Unavailable"), Outcome.UNAVAILABLE),
        (httpx.Response(500, text="Конфликт блокировок при выполнении транзакции"), Outcome.BUSY),
    ],
    ids=lambda v: str(v.status_code) if isinstance(v, httpx.Response) else str(v),
)
def test_http_answers_never_raise(fake: redis.Redis, response: httpx.Response, outcome: Outcome) -> None:
    with make_client(fake, lambda request: response) as client:
        answer = client.send_order(DOCUMENT, idempotency_key="300")
    assert answer.outcome is outcome
    assert answer.status == response.status_code


def test_the_declared_charset_is_honoured(fake: redis.Redis) -> None:
    body = "Информационная база заблокирована для регламентных операций".encode("cp1251")
    response = httpx.Response(500, content=body, headers={"Content-Type": "text/plain; charset=windows-1251"})
    with make_client(fake, lambda request: response) as client:
        answer = client.send_order(DOCUMENT, idempotency_key="300")
    assert answer.outcome is Outcome.UNAVAILABLE
    assert "заблокирована" in answer.reason


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ReadTimeout("timed out")],
    ids=lambda e: type(e).__name__,
)
def test_network_errors_become_unavailable(fake: redis.Redis, error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with make_client(fake, fail) as client:
        answer = client.send_order(DOCUMENT, idempotency_key="300")
        assert answer.outcome is Outcome.UNAVAILABLE
        assert answer.status is None
        assert type(error).__name__ in answer.reason
        assert client.slots.in_use() == 0


def test_a_bug_in_the_transport_still_frees_the_slot(fake: redis.Redis) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug, not a network error")

    with make_client(fake, broken) as client:
        with pytest.raises(RuntimeError):
            client.send_order(DOCUMENT, idempotency_key="300")
        assert client.slots.in_use() == 0


def test_no_free_slot_raises_busy_without_calling_1c(fake: redis.Redis) -> None:
    recorder = Recorder()
    others = ConcurrencyLimit(fake, keys.ONEC_SLOTS, 1, lease_seconds=60)
    assert others.acquire(timeout=0) is not None  # another worker holds the only slot
    with (
        make_client(fake, recorder, concurrency=1, slot_timeout=0.1) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.send_order(DOCUMENT, idempotency_key="300")
    assert caught.value.cause == "busy"
    assert recorder.requests == []


def test_lease_outlasts_the_timeout(fake: redis.Redis) -> None:
    with make_client(fake, Recorder(), timeout=60) as client:
        assert client.slots.lease_seconds >= 60 + 30
        assert client.slots.key == keys.ONEC_SLOTS


def test_one_log_line_per_call_and_no_password_anywhere(fake: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    def locked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="Начало сеанса с информационной базой запрещено.")

    caplog.set_level(logging.DEBUG, logger="bridge.onec")
    with make_client(fake, locked) as client:
        answer = client.send_order(DOCUMENT, idempotency_key="300")
        shown = repr(client)
    records = [r for r in caplog.records if r.name == "bridge.onec"]
    assert len(records) == 1
    line = records[0].getMessage()
    for part in ("status=403", "outcome=unavailable", "duration=", "Начало сеанса", "key=300"):
        assert part in line
    for text in (line, answer.reason, answer.body, shown, caplog.text):
        assert PASSWORD not in text
        assert base64.b64encode(f"Обмен:{PASSWORD}".encode()).decode() not in text


def test_at_most_concurrency_calls_in_flight_with_a_mock(fake: redis.Redis) -> None:
    in_flight = 0
    peak = 0
    changed = threading.Condition()

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with changed:
            in_flight += 1
            peak = max(peak, in_flight)
            changed.notify_all()
            changed.wait_for(lambda: in_flight >= 2, timeout=0.3)  # hold until the cap is reached
        with changed:
            in_flight -= 1
        return httpx.Response(201, json={"status": "created"})

    clients = [make_client(fake, slow, concurrency=2) for _ in range(6)]  # six "processes"
    threads = [threading.Thread(target=c.send_order, args=({"Number": str(i)}, str(i))) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert peak == 2


# --- over real HTTP: the 1C emulator and a real redis-server ------------------------------------------


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def emulator_client(onec: OnecEmulator, real_redis: redis.Redis, **kwargs: Any) -> OnecClient:
    options: dict[str, Any] = {"user": onec.user, "password": onec.password, "timeout": 10, "concurrency": 2}
    options.update(kwargs)
    return OnecClient(onec.url, redis=real_redis, **options)


def test_concurrency_is_never_exceeded_over_http(onec: OnecEmulator, real_redis: redis.Redis) -> None:
    onec.latency = 0.15
    answers: list[Any] = []
    guard = threading.Lock()

    def send(number: int) -> None:
        with emulator_client(onec, real_redis) as client:  # one client per thread, like separate workers
            answer = client.send_order({"Number": f"C-{number}", "SiteId": str(number)}, idempotency_key=str(number))
        with guard:
            answers.append(answer)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.outcome for a in answers] == [Outcome.DELIVERED] * 6
    assert len(onec.documents) == 6
    assert onec.max_in_flight == 2
    assert sorted(call["idempotency_key"] for call in onec.calls) == sorted(str(n) for n in range(6))


def test_emulator_lock_reject_and_accept(onec: OnecEmulator, real_redis: redis.Redis) -> None:
    with emulator_client(onec, real_redis) as client:
        onec.lock("Обновление конфигурации до 03:00")
        locked = client.send_order({"Number": "L-1"}, idempotency_key="1")
        assert locked.outcome is Outcome.UNAVAILABLE
        assert locked.reason == (
            "HTTP 403: Начало сеанса с информационной базой запрещено. Обновление конфигурации до 03:00"
        )
        onec.unlock()
        onec.reject(422, "Не заполнено поле Контрагент")
        rejected = client.send_order({"Number": "L-1"}, idempotency_key="1")
        assert rejected.outcome is Outcome.PERMANENT
        assert rejected.reason == "HTTP 422: Не заполнено поле Контрагент"
        onec.accept()
        delivered = client.send_order({"Number": "L-1"}, idempotency_key="1")
        assert delivered.outcome is Outcome.DELIVERED
    assert onec.documents["L-1"] == {"Number": "L-1"}


def test_emulator_lock_conflict_is_busy(onec: OnecEmulator, real_redis: redis.Redis) -> None:
    onec.busy_every = 1
    with emulator_client(onec, real_redis) as client:
        answer = client.send_order({"Number": "B-1"}, idempotency_key="1")
    assert answer.outcome is Outcome.BUSY
    assert "Конфликт блокировок" in answer.reason


def test_wrong_password_is_permanent(onec: OnecEmulator, real_redis: redis.Redis) -> None:
    with emulator_client(onec, real_redis, password="wrong") as client:
        answer = client.send_order({"Number": "P-1"}, idempotency_key="1")
    assert answer.outcome is Outcome.PERMANENT
    assert answer.status == 401
    assert onec.documents == {}


def test_timeout_over_http_is_unavailable_and_frees_the_slot(onec: OnecEmulator, real_redis: redis.Redis) -> None:
    onec.latency = 2.0
    with emulator_client(onec, real_redis, timeout=0.3) as client:
        answer = client.send_order({"Number": "T-1"}, idempotency_key="1")
        assert answer.outcome is Outcome.UNAVAILABLE
        assert answer.status is None
        assert "Timeout" in answer.reason
        assert client.slots.in_use() == 0


def test_nothing_listening_is_unavailable(real_redis: redis.Redis) -> None:
    from tests.peers.server import free_port

    url = f"http://127.0.0.1:{free_port()}/Base/hs/exchange/"
    with OnecClient(url, user="u", password="p", timeout=2, redis=real_redis, concurrency=1) as client:
        answer = client.send_order({"Number": "X"}, idempotency_key="1")
    assert answer.outcome is Outcome.UNAVAILABLE
    assert "ConnectError" in answer.reason
