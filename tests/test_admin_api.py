"""``/admin/*`` behind the Bearer token, ``/metrics`` and ``/readyz`` of the real app (in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.testclient import TestClient

from bridge.ops.synclog import Entry
from bridge.ops.telemetry import Telemetry
from bridge.orders.job import queue_order
from bridge.queue import deadletters
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.ops_helpers import emulator_settings, run_jobs

TOKEN = "adm1n-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def settings(redis_url: str, shop: Any, onec: Any) -> Settings:
    return emulator_settings(redis_url, shop, onec, admin_token=TOKEN)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    yield from client_for(settings)


@pytest.mark.parametrize("path", ["/admin/failed", "/admin/log"])
def test_admin_needs_the_bearer_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    refused = client.get(path, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["error"] == "unauthorized" and TOKEN not in refused.text
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200
    assert client.post("/admin/failed/retry", json={"all": True}).status_code == 401


def test_admin_is_off_without_a_token(redis_url: str, shop: Any, onec: Any) -> None:
    for client in client_for(emulator_settings(redis_url, shop, onec)):
        answer = client.get("/admin/failed", headers={"Authorization": "Bearer "})
        assert answer.status_code == 503
        assert answer.json()["error"] == "not_configured" and "BRIDGE_ADMIN_TOKEN" in answer.json()["message"]


def test_failed_jobs_are_listed_and_retried_over_http(
    client: TestClient, settings: Settings, redis_url: str, shop: Any, onec: Any
) -> None:
    redis = Redis.from_url(redis_url)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue_order(Runtime.from_settings(settings, redis), str(order["id"]))
    run_jobs(settings, redis)
    listing = client.get("/admin/failed", headers=AUTH).json()
    assert listing["count"] == 1
    [item] = listing["failed"]
    assert item["what"] == f"order {order['id']} (save)" and "Не заполнено поле Контрагент" in item["why"]
    assert set(item) >= {"id", "what", "why", "when", "attempts", "queue"}

    assert client.post("/admin/failed/retry", headers=AUTH, content=b"not json").status_code == 400
    assert client.post("/admin/failed/retry", headers=AUTH, json={"ids": []}).status_code == 400
    assert client.post("/admin/failed/nope/retry", headers=AUTH).status_code == 404
    onec.accept()
    answer = client.post(f"/admin/failed/{item['id']}/retry", headers=AUTH)
    assert answer.status_code == 200 and [r["id"] for r in answer.json()["requeued"]] == [item["id"]]
    run_jobs(settings, redis)
    assert order["accountNumber"] in onec.documents
    assert deadletters.count(redis) == 0
    assert client.post("/admin/failed/retry", headers=AUTH, json={"all": True}).json() == {
        "requeued": [],
        "missing": [],
    }


def test_the_log_filters_by_entity_and_id(client: TestClient, redis_url: str) -> None:
    telemetry = Telemetry(Redis.from_url(redis_url))
    telemetry.record(Entry("1c", "orders", "delivered", "order", "300", 0.1), log_line=False)
    telemetry.record(Entry("1c", "orders", "busy", "order", "301", 0.1, error="Конфликт блокировок"), log_line=False)
    telemetry.record(Entry("bridge", "poll", "polled"), log_line=False)
    one = client.get("/admin/log", params={"entity": "order", "id": "301"}, headers=AUTH).json()
    assert one["count"] == 1 and one["entries"][0]["error"] == "Конфликт блокировок"
    assert one["entries"][0]["time"].endswith("Z")
    assert client.get("/admin/log", params={"entity": "order"}, headers=AUTH).json()["count"] == 2
    assert client.get("/admin/log", headers=AUTH).json()["count"] == 3
    assert client.get("/admin/log", params={"id": "300"}, headers=AUTH).status_code == 400
    assert client.get("/admin/log", params={"entity": "Order; DROP"}, headers=AUTH).status_code == 400
    assert client.get("/admin/log", params={"limit": "0"}, headers=AUTH).status_code == 400


def test_metrics_count_shop_events_by_type_and_outcome(client: TestClient, shop: Any) -> None:
    order = shop.add_order()
    for event in ("ONSALEORDERSAVED", "ONSALEORDERSAVED", "ONCRMDEALADD"):
        payload = shop.event_payload(event, order["id"])
        assert client.post("/shop/events", json=payload).status_code == 200
    client.post("/shop/events", json=shop.event_payload("ONSALEORDERSAVED", order["id"], token="forged"))
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    events = "bridge_shop_events_total"
    assert found[(events, (("event", "ONSALEORDERSAVED"), ("outcome", "accepted")))] == 2
    assert found[(events, (("event", "ONCRMDEALADD"), ("outcome", "ignored")))] == 1
    assert found[(events, (("event", "unknown"), ("outcome", "unauthorized")))] == 1
    assert found[("bridge_queue_jobs", (("queue", "bridge-orders"), ("state", "waiting")))] == 1


def test_readyz_shows_alerts_and_the_shop_pause(client: TestClient, redis_url: str) -> None:
    body = client.get("/readyz").json()
    assert body["alerts"] == {} and body["shop"]["paused_until"] is None
    assert body["onec"]["circuit"] == "closed"


def test_readyz_answers_503_and_metrics_say_redis_is_down_when_redis_is_unreachable(shop: Any, onec: Any) -> None:
    from tests.peers.server import free_port

    settings = emulator_settings(f"redis://127.0.0.1:{free_port()}/0", shop, onec, admin_token=TOKEN)
    for client in client_for(settings):
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unready"
        scraped = client.get("/metrics")
        assert scraped.status_code == 200 and "bridge_redis_up 0.0" in scraped.text
        assert client.get("/admin/failed", headers=AUTH).status_code == 503


def test_a_limit_in_superscript_digits_is_refused_not_a_crash(client: TestClient) -> None:
    """``"¹".isdigit()`` is true but ``int("¹")`` raises: the limit must be ASCII digits."""
    answer = client.get("/admin/log", params={"limit": "¹"}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"] == "bad_limit"
