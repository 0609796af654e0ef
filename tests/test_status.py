"""One reader of what waits and why: ``/readyz`` and ``/metrics`` show the same facts from the same state."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from starlette.testclient import TestClient

from bridge import keys
from bridge.onec.circuit import Circuit
from bridge.ops import status
from bridge.queue import ORDERS_QUEUE, QUEUES, SHOP_QUEUE
from bridge.settings import Settings
from bridge.shop.ratelimit import MethodPauses
from bridge.texts import as_text
from bridge.web.app import create_app

SINCE = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def state(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """A job waiting in the orders queue, the 1C circuit open, every shop call paused, one open alert; the
    status clock stopped at the moment returned, so that two readings can be compared exactly."""
    queue = Queue(ORDERS_QUEUE, connection=redis)
    job = queue.enqueue("tests.jobs_for_tests.record", "1", "save")
    queue.enqueue("tests.jobs_for_tests.record", "2", "save")
    now = time.time() + 1234.5678
    redis.hset(keys.ONEC_CIRCUIT, mapping={"state": "open", "since": SINCE, "reason": "infobase locked"})
    MethodPauses(redis).pause_all(now + 60)
    redis.hset(keys.ALERT_INCIDENTS, "onec_down", json.dumps({"since": now - 100, "title": "1C unavailable"}))
    monkeypatch.setattr(status, "time", SimpleNamespace(time=lambda: now))
    assert job.enqueued_at is not None
    yield now


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_readyz_and_metrics_report_the_same_ages_and_circuit(redis_url: str, redis: Redis, state: float) -> None:
    with TestClient(create_app(Settings(redis_url=redis_url))) as client:
        ready = client.get("/readyz").json()
        found = metric_samples(client.get("/metrics").text)
    oldest = ready["queues"][ORDERS_QUEUE]["oldest_waiting_seconds"]
    job_id = redis.lindex(Queue(ORDERS_QUEUE, connection=redis).key, 0)
    assert job_id is not None
    enqueued = Queue(ORDERS_QUEUE, connection=redis).fetch_job(as_text(job_id))
    assert enqueued is not None and enqueued.enqueued_at is not None
    assert oldest == pytest.approx(state - enqueued.enqueued_at.timestamp(), abs=0.001)
    assert found[("bridge_queue_oldest_job_age_seconds", (("queue", ORDERS_QUEUE),))] == oldest
    assert ready["queues"][SHOP_QUEUE]["oldest_waiting_seconds"] is None
    assert found[("bridge_queue_oldest_job_age_seconds", (("queue", SHOP_QUEUE),))] == 0
    assert ready["queues"][ORDERS_QUEUE]["waiting"] == 2
    assert found[("bridge_queue_jobs", (("queue", ORDERS_QUEUE), ("state", "waiting")))] == 2

    assert ready["onec"] == {"circuit": "open", "since": SINCE, "reason": "infobase locked"}
    assert found[("bridge_onec_circuit_open", ())] == 1
    opened = datetime.fromisoformat(ready["onec"]["since"]).timestamp()
    assert found[("bridge_onec_circuit_open_seconds", ())] == pytest.approx(state - opened)

    assert ready["shop"]["paused_until"] is not None and found[("bridge_shop_paused", ())] == 1
    assert list(ready["alerts"]) == ["onec_down"] and found[("bridge_alert_open", (("alert", "onec_down"),))] == 1


def test_the_sync_and_async_readers_agree(redis_url: str, redis: Redis, state: float) -> None:
    async def read_async() -> status.Status:
        client = AsyncRedis.from_url(redis_url)
        try:
            return await status.read_async(client)
        finally:
            await client.aclose()

    snapshot = status.read(redis)
    assert asyncio.run(read_async()) == snapshot
    assert snapshot.at == state and snapshot.circuit == Circuit(redis).state()
    assert snapshot.shop.paused_until == MethodPauses(redis).paused_all_until()


def test_a_closed_circuit_and_empty_queues(redis: Redis) -> None:
    snapshot = status.read(redis)
    assert [q.oldest_waiting_seconds for q in snapshot.queues] == [None] * len(QUEUES)
    assert not snapshot.circuit.is_open and snapshot.circuit_open_seconds == 0
    assert snapshot.shop.paused_until is None and snapshot.alerts == {}


def test_the_queue_keys_are_rqs_own(redis: Redis) -> None:
    for name in QUEUES:
        where = status.QueueKeys.of(name)
        assert where.waiting == Queue(name, connection=redis).key
        assert where.scheduled == ScheduledJobRegistry(name, connection=redis).key
        assert where.started == StartedJobRegistry(name, connection=redis).key
        assert where.failed == FailedJobRegistry(name, connection=redis).key
