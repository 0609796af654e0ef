"""Metrics in Redis: what any process writes, the collector reads back as valid Prometheus text."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue
from starlette.testclient import TestClient

from bridge import keys
from bridge.ops import metrics
from bridge.queue import ORDERS_QUEUE
from bridge.settings import Settings
from bridge.web.app import create_app
from tests.peers.redis_server import RedisServer


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def samples(redis: Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition(redis).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_from_two_clients_add_up(redis: Redis, redis_url: str) -> None:
    other = Redis.from_url(redis_url)  # another process, as far as Redis can tell
    metrics.inc(redis, "bridge_shop_events", ("ONSALEORDERSAVED", "accepted"))
    metrics.inc(other, "bridge_shop_events", ("ONSALEORDERSAVED", "accepted"), 2)
    metrics.inc(other, "bridge_onec_items", ("stock",), 250)
    found = samples(redis)
    assert found[("bridge_shop_events_total", (("event", "ONSALEORDERSAVED"), ("outcome", "accepted")))] == 3
    assert found[("bridge_onec_items_total", (("kind", "stock"),))] == 250


def test_histogram_is_cumulative_with_sum_and_count(redis: Redis) -> None:
    pipe = redis.pipeline(transaction=False)
    for value in (0.01, 0.3, 0.3, 7.0, 500.0):
        metrics.observe(pipe, "bridge_peer_call_duration_seconds", ("1c", "orders"), value)
    pipe.execute()
    found = samples(redis)
    labels = (("le", "0.05"), ("operation", "orders"), ("peer", "1c"))
    assert found[("bridge_peer_call_duration_seconds_bucket", labels)] == 1

    def bucket(le: str) -> float:
        return found[
            ("bridge_peer_call_duration_seconds_bucket", (("le", le), ("operation", "orders"), ("peer", "1c")))
        ]

    assert [bucket("0.5"), bucket("10.0"), bucket("+Inf")] == [3, 4, 5]
    assert found[("bridge_peer_call_duration_seconds_count", (("operation", "orders"), ("peer", "1c")))] == 5
    assert found[("bridge_peer_call_duration_seconds_sum", (("operation", "orders"), ("peer", "1c")))] == pytest.approx(
        507.61
    )


def test_live_gauges_show_queues_circuit_and_rate_limit_waits(redis: Redis) -> None:
    queue = Queue(ORDERS_QUEUE, connection=redis)
    queue.enqueue("tests.jobs_for_tests.record", "1", "save")
    queue.enqueue("tests.jobs_for_tests.record", "2", "save")
    redis.hset(keys.ONEC_CIRCUIT, mapping={"state": "open", "since": "2020-01-01T00:00:00+00:00", "reason": "x"})
    redis.incr(keys.SHOP_WAITS, 4)
    redis.incrbyfloat(keys.SHOP_WAIT_SECONDS, 1.5)
    found = samples(redis)
    assert found[("bridge_queue_jobs", (("queue", ORDERS_QUEUE), ("state", "waiting")))] == 2
    assert found[("bridge_queue_jobs", (("queue", ORDERS_QUEUE), ("state", "failed")))] == 0
    assert found[("bridge_queue_oldest_job_age_seconds", (("queue", ORDERS_QUEUE),))] >= 0
    assert found[("bridge_queue_oldest_job_age_seconds", (("queue", "bridge-shop"),))] == 0
    assert found[("bridge_onec_circuit_open", ())] == 1
    assert found[("bridge_onec_circuit_open_seconds", ())] > 3600
    assert found[("bridge_shop_ratelimit_waits_total", ())] == 4
    assert found[("bridge_shop_ratelimit_wait_seconds_total", ())] == 1.5


def test_label_values_cannot_break_the_encoding(redis: Redis) -> None:
    metrics.inc(redis, "bridge_jobs", ("order", "odd\x1fvalue\x1e" + "x" * 200))
    found = samples(redis)
    [(_name, labels)] = [k for k in found if k[0] == "bridge_jobs_total"]
    assert dict(labels)["outcome"].startswith("odd value ")
    assert len(dict(labels)["outcome"]) == metrics.MAX_LABEL


def test_a_wrong_number_of_labels_is_a_programming_error(redis: Redis) -> None:
    with pytest.raises(ValueError, match="takes labels"):
        metrics.inc(redis, "bridge_jobs", ("order",))


def _scrape(client: TestClient) -> dict[str, float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if not sample.labels
    }


def test_metrics_keep_answering_while_redis_is_down_with_redis_up_zero(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    try:
        with TestClient(create_app(Settings(redis_url=server.url))) as client:
            metrics.inc(server.client(), "bridge_onec_items", ("stock",), 3)
            up = _scrape(client)
            assert up["bridge_redis_up"] == 1
            assert "bridge_onec_circuit_open" in up
            assert "bridge_onec_items_total" in client.get("/metrics").text

            server.stop()
            down = _scrape(client)
            assert down == {"bridge_redis_up": 0}  # nothing that lives in Redis, and nothing made up

            server.start()
            assert _scrape(client)["bridge_redis_up"] == 1  # back without a restart of the bridge
    finally:
        server.stop()
