"""The sync log: every operation lands in the capped global stream and in its entity's own stream."""

from __future__ import annotations

import io
import json
import logging

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bridge import keys, logs
from bridge.onec.answers import Answer, Outcome
from bridge.ops import synclog
from bridge.ops.synclog import Entry
from bridge.ops.telemetry import Telemetry, about
from bridge.settings import load_settings
from bridge.shop.client import CallRecord


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def test_entries_are_found_by_entity_newest_first(redis: Redis) -> None:
    telemetry = Telemetry(redis)
    telemetry.record(Entry("shop", "sale.order.get", "ok", "order", "300", 0.012), log_line=False)
    telemetry.record(Entry("shop", "sale.order.get", "ok", "order", "301", 0.02), log_line=False)
    telemetry.record(Entry("1c", "orders", "permanent", "order", "300", 0.5, error="HTTP 422: нет"), log_line=False)
    mine = synclog.read(redis, entity="order", entity_id="300")
    assert [(e.peer, e.outcome) for e in mine] == [("1c", "permanent"), ("shop", "ok")]
    assert mine[0].error == "HTTP 422: нет" and mine[0].duration == pytest.approx(0.5)
    assert mine[0].process and mine[0].at is not None
    assert len(synclog.read(redis)) == 3
    assert [e.entity_id for e in synclog.read(redis, entity="order", limit=2)] == ["300", "301"]
    assert 0 < redis.ttl(synclog.entity_key("order", "300")) <= synclog.ENTITY_TTL


def test_streams_are_capped(redis: Redis) -> None:
    telemetry = Telemetry(redis, max_entries=100)
    pipe = redis.pipeline(transaction=False)
    for _ in range(synclog.ENTITY_MAX + 50):
        synclog.append(pipe, Entry("shop", "sale.order.get", "ok", "order", "1"), max_entries=100)
    pipe.execute()
    for _ in range(1000):
        synclog.append(pipe, Entry("shop", "sale.order.list", "ok"), max_entries=100)
    pipe.execute()
    telemetry.record(Entry("bridge", "poll", "polled"), log_line=False)
    assert redis.xlen(synclog.entity_key("order", "1")) == synclog.ENTITY_MAX
    assert redis.xlen(keys.SYNC_LOG) < 400  # trimmed approximately, whole nodes at a time


def test_long_and_multiline_peer_text_is_clipped_to_one_line(redis: Redis) -> None:
    Telemetry(redis).record(Entry("1c", "orders", "busy", error="line one\nline two " + "x" * 2000), log_line=False)
    [entry] = synclog.read(redis)
    assert entry.error is not None and "\n" not in entry.error
    assert entry.error.startswith("line one line two") and len(entry.error) == synclog.TEXT_LIMIT


def test_shop_calls_inside_about_are_filed_under_the_entity(redis: Redis) -> None:
    telemetry = Telemetry(redis)
    with about("order", "300"):
        telemetry.shop_call(CallRecord("sale.order.get", 200, "ok", None, 0.01))
    telemetry.shop_call(CallRecord("sale.order.list", 503, "transient", "QUERY_LIMIT_EXCEEDED", 0.2))
    [inside] = synclog.read(redis, entity="order", entity_id="300")
    assert (inside.operation, inside.detail) == ("sale.order.get", "HTTP 200")
    outside = synclog.read(redis)[0]
    assert outside.entity is None and outside.error == "shop error QUERY_LIMIT_EXCEEDED"


def test_a_1c_call_and_a_job_outcome_count_in_metrics(redis: Redis) -> None:
    telemetry = Telemetry(redis)
    answer = Answer(Outcome.UNAVAILABLE, 403, "HTTP 403: Начало сеанса с информационной базой запрещено", "")
    telemetry.onec_call(answer, 0.3, entity="order", entity_id="5")
    telemetry.job_outcome("order", "skipped: status 'X' is not sent to 1C", entity="order", entity_id="5")
    counters = redis.hgetall(keys.METRIC_COUNTER.format(name="bridge_peer_calls"))
    assert counters == {b"1c\x1forders\x1funavailable": b"1"}
    jobs = redis.hgetall(keys.METRIC_COUNTER.format(name="bridge_jobs"))
    assert jobs == {b"order\x1fskipped": b"1"}
    newest = synclog.read(redis, entity="order", entity_id="5")[0]
    assert (newest.outcome, newest.detail) == ("skipped", "skipped: status 'X' is not sent to 1C")


def test_recording_never_fails_the_operation_when_redis_is_gone() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    Telemetry(dead).record(Entry("shop", "sale.order.get", "ok"))  # logs a warning, raises nothing


def test_one_json_line_per_operation_with_ids_and_no_secret(redis: Redis) -> None:
    settings = load_settings(log_format="json", admin_token="adm1n-t0ken-value")
    stream = io.StringIO()
    logs.configure(settings, "worker")
    root = logging.getLogger()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        Telemetry(redis).record(
            Entry("1c", "orders", "failed", "order", "300", 0.25, error="refused adm1n-t0ken-value"), log_line=True
        )
    finally:
        root.handlers.clear()
    [line] = stream.getvalue().splitlines()
    data = json.loads(line)
    assert data["level"] == "error" and data["process"] == "worker"
    assert (data["entity"], data["entity_id"], data["outcome"], data["duration_ms"]) == (
        "order",
        "300",
        "failed",
        250.0,
    )
    assert "adm1n-t0ken-value" not in line


def test_format_line_reads_well(redis: Redis) -> None:
    entry = Entry("1c", "orders", "delivered", "order", "300", 0.1234, detail="HTTP 201", at=0.0)
    line = synclog.format_line(entry)
    assert line.startswith("1970-01-01T00:00:00.000Z  order 300")
    assert "1c" in line and "delivered" in line and "0.123s" in line and line.endswith("HTTP 201")
