"""``POST /shop/events``: what is accepted, what is refused, and that a refusal queues nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from bridge import keys
from bridge.ops import synclog
from bridge.queue import ORDERS_QUEUE
from bridge.settings import Settings
from bridge.shop.phpquery import build
from bridge.web.app import create_app

TOKEN = "app-token-0001"


def event_body(event: str = "ONSALEORDERSAVED", order_id: Any = 300, token: str | None = TOKEN) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event,
        "event_handler_id": "975",
        "data": {"FIELDS": {"ID": order_id, "XML_ID": "", "ACTION": "save"}},
        "ts": "1714649632",
        "auth": {"domain": "shop.example.ru", "member_id": "d897063e1ce7c5eb9f04b9751eef5915"},
    }
    if token is not None:
        body["auth"]["application_token"] = token
    return body


def form(body: dict[str, Any]) -> dict[str, Any]:
    return {"content": build(body), "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    settings = Settings(redis_url=redis_url, shop_app_tokens=f"old-token-9999,{TOKEN}", max_body_bytes=4096)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def queued(redis: Redis) -> int:
    return Queue(ORDERS_QUEUE, connection=redis).count


def test_three_duplicate_events_queue_one_sync(client: TestClient, redis: Redis) -> None:
    answers = [client.post("/shop/events", **form(event_body())) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["queued"] for a in answers] == [True, False, False]
    assert answers[0].json()["status"] == "accepted"
    assert queued(redis) == 1


def test_an_accepted_event_is_counted_and_logged_before_its_answer(
    client: TestClient, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """The enqueue script itself writes the count and the sync-log entries (``event_accounting``): both are in Redis
    when the 200 arrives, for collapsed events too, and the INFO line names the orders of its write."""
    caplog.set_level(logging.INFO, logger="bridge.ops")
    for number, event in enumerate(("ONSALEORDERSAVED", "ONSALEORDERSAVED", "ONSALEBEFOREORDERDELETE"), 1):
        assert client.post("/shop/events", **form(event_body(event=event))).status_code == 200
        assert redis.xlen(synclog.entity_key("order", "300")) == number  # already there at the answer
    mine = synclog.read(redis, entity="order", entity_id="300")
    assert [(e.peer, e.operation, e.outcome, e.detail) for e in mine] == [
        ("shop", "event", "accepted", "ONSALEBEFOREORDERDELETE"),
        ("shop", "event", "accepted", "ONSALEORDERSAVED"),
        ("shop", "event", "accepted", "ONSALEORDERSAVED"),
    ]
    assert all(e.process for e in mine) and len(synclog.read(redis)) == 3
    counts = redis.hgetall(keys.METRIC_COUNTER.format(name="bridge_shop_events"))
    assert counts == {b"ONSALEORDERSAVED\x1faccepted": b"2", b"ONSALEBEFOREORDERDELETE\x1faccepted": b"1"}
    lines = [r for r in caplog.records if r.name == "bridge.ops" and r.levelno == logging.INFO]
    assert len(lines) == 3 and all("order 300" in r.getMessage() for r in lines)
    assert lines[0].extra_fields["entity_ids"] == "300" and lines[0].extra_fields["jobs_created"] == 1  # type: ignore[attr-defined]


def test_json_body_and_lower_case_event_are_accepted(client: TestClient, redis: Redis) -> None:
    answer = client.post("/shop/events", json=event_body(event="onSaleOrderNew", order_id="301"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["order_id"] == "301"
    assert queued(redis) == 1


def test_delete_event_queues_a_cancellation(client: TestClient, redis: Redis) -> None:
    client.post("/shop/events", **form(event_body()))
    client.post("/shop/events", **form(event_body(event="ONSALEBEFOREORDERDELETE")))
    assert redis.get("bridge:order:pending:300").decode().startswith("cancel:")
    assert queued(redis) == 1


def test_other_events_are_ignored(client: TestClient, redis: Redis) -> None:
    answer = client.post("/shop/events", **form(event_body(event="ONCRMDEALADD")))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert queued(redis) == 0


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong", TOKEN[:-1] + "2", TOKEN + "x"],
    ids=["missing", "empty", "wrong", "differs-at-end", "longer"],
)
def test_wrong_token_is_401_and_queues_nothing(client: TestClient, redis: Redis, token: str | None) -> None:
    answer = client.post("/shop/events", **form(event_body(token=token)))
    assert answer.status_code == 401
    assert "application_token" in answer.json()["message"]
    assert queued(redis) == 0
    assert redis.keys("bridge:order:*") == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (event_body(event=""), "missing_event"),
        ({k: v for k, v in event_body().items() if k != "event"}, "missing_event"),
        (event_body(order_id=""), "missing_order_id"),
        (event_body(order_id="12abc"), "missing_order_id"),
        (event_body(order_id="-5"), "missing_order_id"),
        (event_body(order_id="9" * 40), "missing_order_id"),
    ],
)
def test_incomplete_events_are_400(client: TestClient, redis: Redis, body: dict[str, Any], error: str) -> None:
    answer = client.post("/shop/events", **form(body))
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert queued(redis) == 0


def test_bad_bodies_get_clear_4xx(client: TestClient, redis: Redis) -> None:
    cases = [
        ({"content": b"event=x", "headers": {"Content-Type": "text/plain"}}, 415),
        (
            {
                "content": b"event=\xff\xfe&auth[application_token]=x",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ({"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400),
        ({"content": b"a" * 5000, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 413),
        (
            {
                "content": "&".join(f"a{'[x]' * 20}=1" for _ in range(2)).encode(),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
    ]
    for kwargs, status in cases:
        answer = client.post("/shop/events", **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert answer.json()["message"]
    assert queued(redis) == 0


def test_unconfigured_tokens_answer_503(redis_url: str) -> None:
    with TestClient(create_app(Settings(redis_url=redis_url))) as test_client:
        answer = test_client.post("/shop/events", **form(event_body()))
    assert answer.status_code == 503
    assert "BRIDGE_SHOP_APP_TOKENS" in answer.json()["message"]


def test_redis_down_is_503_not_500() -> None:
    from tests.peers.server import free_port

    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", shop_app_tokens=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        answer = test_client.post("/shop/events", **form(event_body()))
        ready = test_client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["error"] == "redis_unavailable"
    assert ready.status_code == 503


COUNTER = keys.METRIC_COUNTER.format(name="bridge_shop_events")


def test_every_answer_is_counted_by_its_outcome_and_only_an_ignored_event_is_filed(
    client: TestClient, redis: Redis
) -> None:
    """The handler tells the accounting what it decided; a refusal counts under ``unknown`` and files nothing,
    so a stranger's noise cannot push history out of the capped sync log."""
    json_type = {"Content-Type": "application/json"}
    refusals = [
        form(event_body(token="wrong")),
        {"content": b"{not json", "headers": json_type},
        {"content": b"a" * 5000, "headers": json_type},
        {"content": b"event=x", "headers": {"Content-Type": "text/plain"}},
        form(event_body(event="")),
        form(event_body(order_id="12abc")),
    ]
    for kwargs in refusals:
        assert client.post("/shop/events", **kwargs).status_code in (400, 401, 413, 415)
    assert client.post("/shop/events", **form(event_body(event="ONCRMDEALADD"))).json()["status"] == "ignored"
    assert client.post("/shop/events", **form(event_body(event="ONCRM.DEAL"))).json()["status"] == "ignored"
    assert client.get("/metrics").status_code == 200  # writes this process's counts first
    assert redis.hgetall(COUNTER) == {
        b"unknown\x1funauthorized": b"1",
        b"unknown\x1frejected": b"5",
        b"ONCRMDEALADD\x1fignored": b"1",
        b"other\x1fignored": b"1",  # not an event name: no label of the sender's making
    }
    assert [(e.outcome, e.detail, e.entity) for e in synclog.read(redis)] == [
        ("ignored", "other", None),
        ("ignored", "ONCRMDEALADD", None),
    ]


def test_an_unconfigured_intake_counts_its_503s(redis_url: str, redis: Redis) -> None:
    with TestClient(create_app(Settings(redis_url=redis_url))) as test_client:
        assert test_client.post("/shop/events", **form(event_body())).status_code == 503
    assert redis.hgetall(COUNTER) == {b"unknown\x1funavailable": b"1"}  # written at shutdown at the latest
