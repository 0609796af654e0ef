"""The shortcuts taken for speed (BENCHMARKS.md) write exactly what the slow paths wrote.

- ``JobTemplate``: a job filled into RQ's recorded template is the job RQ itself would have written, and RQ
  runs it; without a template (RQ's format changed) every job is built by RQ, as before.
- ``GroupCommit`` (the enqueue's and the event tally's): concurrent enqueues share script calls, each caller
  learns its own result, a Redis that forgot the script or went away is handled.
- ``ConcurrencyLimit``'s doorbell: a released slot is taken by a waiter at once, not after its poll delay.
- ``EventNotes`` (``bridge.web.event_accounting``): the intake's script writes each event's sync-log entries
  and count as ``append`` and ``metrics.inc`` would.
- ``LeakyBucket(rate_headroom=…)``, ``synclog.append_many``, ``bridge.tls``, ``bridge.worker.preload``, the web
  app's garbage-collector settings.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import replace
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from rq.job import Job

from bridge import keys
from bridge.group_commit import GroupCommit
from bridge.locks import ConcurrencyLimit
from bridge.ops import metrics, synclog
from bridge.ops.synclog import Entry
from bridge.ops.telemetry import process_name
from bridge.queue.enqueue import Enqueuer
from bridge.queue.template import JobTemplate, recorded_enqueue
from bridge.queue.work import Work
from bridge.shop.ratelimit import LeakyBucket
from bridge.web.event_accounting import EventNotes
from bridge.worker import BridgeSimpleWorker

FUNC = "tests.jobs_for_tests.record"
VOLATILE = {b"created_at", b"enqueued_at"}


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def work(entity: str, action: str = "save") -> Work:
    return Work(
        queue="q", func=FUNC, args=(entity, action), marker=f"m:{entity}", action=action, job_kind="t", entity=entity
    )


def enqueue(enq: Enqueuer, entity: str, action: str = "save") -> bool:
    return enq.enqueue_once(work(entity, action))


async def enqueue_async(enq: Enqueuer, client: AsyncRedis, entity: str) -> bool:
    return await enq.enqueue_once_async(client, work(entity))


def job_hash(redis: Redis, job_id: str) -> dict[bytes, bytes]:
    raw = redis.hgetall(f"rq:job:{job_id}")
    raw[b"data"] = zlib.decompress(raw[b"data"])  # compressed differently, the same payload
    return {k: v for k, v in raw.items() if k not in VOLATILE}


def test_a_template_job_is_the_job_rq_writes(redis: Redis) -> None:
    enq = Enqueuer(redis)
    template = enq.template("q", FUNC)
    assert template is not None, "RQ's format changed: every job is now built by RQ (slower, still correct)"
    assert {kind for _, kind, _, _ in template.holes} == {"id", "now", "data", "description"}

    enqueue(enq, "300")
    (ours,) = Queue("q", connection=redis).job_ids
    ours_hash = job_hash(redis, ours)
    redis.flushall()
    queue = enq.queue("q")
    pipe = redis.pipeline(transaction=False)
    for command in recorded_enqueue(queue, FUNC, ("300", "save"), job_id=ours, timeout=enq.job_timeout):
        pipe.execute_command(*command)
    pipe.execute()
    assert ours_hash == job_hash(redis, ours)


def test_rq_runs_a_template_job_with_its_arguments(redis: Redis) -> None:
    enq = Enqueuer(redis)
    enqueue(enq, "301", "cancel")
    job = Job.fetch(Queue("q", connection=redis).job_ids[0], connection=redis)
    assert job.args == ["301", "cancel"] or job.args == ("301", "cancel")
    assert job.description == f"{FUNC}('301', 'cancel')"
    BridgeSimpleWorker([Queue("q", connection=redis)], connection=redis).work(burst=True)
    assert redis.lrange("test:ran", 0, -1) == [b"301:cancel"]


def test_without_a_template_rq_builds_every_job(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobTemplate, "derive", classmethod(lambda cls, *a, **k: None))
    enq = Enqueuer(redis)
    assert enqueue(enq, "302") is True
    assert enqueue(enq, "302") is False
    BridgeSimpleWorker([Queue("q", connection=redis)], connection=redis).work(burst=True)
    assert redis.lrange("test:ran", 0, -1) == [b"302:save"]


def test_concurrent_enqueues_share_script_calls_and_each_learns_its_own_result(redis_url: str) -> None:
    sync = Redis.from_url(redis_url)
    enq = Enqueuer(sync)
    sync.config_resetstat()

    async def main() -> list[bool]:
        client = AsyncRedis.from_url(redis_url)
        try:
            # 40 orders, and order 5 three times: its first event queues the job, the others collapse.
            ids = [str(n) for n in range(40)] + ["5", "5"]
            return await asyncio.gather(*(enqueue_async(enq, client, i) for i in ids))
        finally:
            await client.aclose()

    created = asyncio.run(main())
    assert created == [True] * 40 + [False, False]
    assert Queue("q", connection=sync).count == 40
    calls = sync.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    calls += sync.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)
    assert 1 <= calls < 42  # grouped: fewer script calls than events
    seqs = sorted(int(sync.get(f"m:{n}").split(b":")[1]) for n in range(40))
    assert len(set(seqs)) == 40  # every event its own sequence number


def test_a_group_commit_writes_what_piled_up_and_logs_a_failure_nobody_waits_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[list[str]] = []

    async def write(items: list[str]) -> list[str]:
        calls.append(items)
        await asyncio.sleep(0)
        if "boom" in items:
            raise RuntimeError("boom")
        return [item.upper() for item in items]

    async def main() -> tuple[list[str], Any]:
        commit: GroupCommit[str, str] = GroupCommit(write, max_items=3, name="test")
        results = await asyncio.gather(*(commit.submit(item) for item in "abcde"))
        commit.add("boom")
        await commit.settled(1)
        failed = await asyncio.gather(commit.submit("boom"), return_exceptions=True)
        return results, failed[0]

    results, failed = asyncio.run(main())
    assert results == list("ABCDE") and calls[:2] == [list("abc"), list("de")]  # two calls, at most 3 each
    assert isinstance(failed, RuntimeError)  # a waiter learns its call's error ...
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]  # ... and only the unwatched one is logged
    assert "test: a write failed" in logged.getMessage()


def test_the_sync_log_and_telemetry_do_not_import_the_queue() -> None:
    """The intake's accounting lives in the web intake; observability only shares Lua with it (bridge.scripts)."""
    code = "import sys, bridge.ops.telemetry, bridge.ops.synclog; print('bridge.queue.enqueue' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_redis_that_forgot_the_script_still_takes_the_event(redis_url: str) -> None:
    sync = Redis.from_url(redis_url)
    enq = Enqueuer(sync)

    async def one(entity: str) -> bool:
        client = AsyncRedis.from_url(redis_url)
        try:
            return await enqueue_async(enq, client, entity)
        finally:
            await client.aclose()

    assert asyncio.run(one("1")) is True
    sync.script_flush()
    assert asyncio.run(one("2")) is True
    assert Queue("q", connection=sync).count == 2


def test_every_waiter_learns_that_redis_is_down(redis_url: str) -> None:
    enq = Enqueuer(Redis.from_url(redis_url))
    enq.template("q", FUNC)  # derived while Redis answers

    async def main() -> list[Any]:
        client = AsyncRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        try:
            return await asyncio.gather(*(enqueue_async(enq, client, str(n)) for n in range(5)), return_exceptions=True)
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert all(isinstance(r, RedisConnectionError | OSError) for r in results), results


def test_a_released_slot_is_taken_at_once_by_a_waiter(redis: Redis) -> None:
    limit = ConcurrencyLimit(redis, keys.ONEC_SLOTS, 1, 30, poll=1.0)  # polling alone would wait up to 4 s
    holder = limit.try_acquire()
    assert holder is not None
    got: list[float] = []

    def wait() -> None:
        time.sleep(0.05)
        token = limit.acquire(10)
        got.append(time.monotonic())
        assert token is not None
        limit.release(token)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)  # the waiter is blocked on the doorbell by now
    released = time.monotonic()
    limit.release(holder)
    waiter.join(5)
    assert got and got[0] - released < 0.5


def test_the_rate_can_keep_less_headroom_than_the_burst() -> None:
    import fakeredis

    bucket = LeakyBucket(fakeredis.FakeRedis(), rate=10, burst=20, headroom=0.1, rate_headroom=0.01)
    assert bucket.capacity == 18
    assert bucket.rate == pytest.approx(9.9)


def test_append_many_writes_what_append_writes(redis: Redis) -> None:
    entries = [
        Entry("shop", "event", "accepted", "order", "7", detail="ONSALEORDERSAVED", process="h:1"),
        Entry("shop", "event", "ignored", None, None, detail="ONCRMDEALADD", process="h:1"),
        Entry("1c", "orders", "delivered", "order", "7", duration=0.012, error="x" * 600, process="h:2"),
    ]
    pipe = redis.pipeline(transaction=False)
    for entry in entries:
        synclog.append(pipe, entry, max_entries=1000)
    pipe.execute()
    one_by_one = (
        [e.as_dict() for e in synclog.read(redis, limit=10)],
        synclog.read(redis, entity="order", entity_id="7"),
    )
    ttl = redis.ttl(synclog.entity_key("order", "7"))
    redis.flushall()
    pipe = redis.pipeline(transaction=False)
    synclog.append_many(pipe, entries, max_entries=1000)
    pipe.execute()
    together = [e.as_dict() for e in synclog.read(redis, limit=10)], synclog.read(redis, entity="order", entity_id="7")

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in ("at", "time", "entry_id")} for row in rows]

    assert strip(together[0]) == strip(one_by_one[0])
    assert [e.outcome for e in together[1]] == [e.outcome for e in one_by_one[1]] == ["delivered", "accepted"]
    assert redis.ttl(synclog.entity_key("order", "7")) == pytest.approx(ttl, abs=5)


def test_event_notes_write_what_append_and_inc_write(redis_url: str) -> None:
    """The intake's enqueue script writes each event's sync-log entries and count itself (``EventNotes``):
    the same entries ``synclog.append`` writes and the same count ``metrics.inc`` keeps, collapsed events
    included, and one log call per script call with every order in it."""
    sync = Redis.from_url(redis_url)
    events = [("7", "ONSALEORDERSAVED"), ("8", "ONSALEORDERNEW"), ("7", "ONSALEBEFOREORDERDELETE")]
    writes: list[tuple[list[str], int]] = []
    notes = EventNotes(max_entries=1000)
    notes.writer = replace(notes.writer, written=lambda ids, created: writes.append((ids, created)))

    async def main() -> list[bool]:
        client = AsyncRedis.from_url(redis_url)
        enq = Enqueuer(sync)

        async def one(order: str, event: str) -> bool:
            note = notes.note(event, order)
            return await enq.enqueue_once_async(client, work(order), notes=notes.writer, note=note)

        try:
            return await asyncio.gather(*(one(order, event) for order, event in events))
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [True, True, False]
    assert writes == [(["7", "8", "7"], 2)]  # one script call for the three
    scripted = [e.as_dict() for e in synclog.read(sync, limit=10)], synclog.read(sync, entity="order", entity_id="7")
    counts = sync.hgetall(keys.METRIC_COUNTER.format(name="bridge_shop_events"))
    ttl = sync.ttl(synclog.entity_key("order", "7"))
    sync.flushall()
    pipe = sync.pipeline(transaction=False)
    for order, event in events:
        entry = Entry("shop", "event", "accepted", "order", order, detail=event, process=process_name())
        synclog.append(pipe, entry, max_entries=1000)
        metrics.inc(pipe, "bridge_shop_events", (event, "accepted"))
    pipe.execute()
    appended = [e.as_dict() for e in synclog.read(sync, limit=10)], synclog.read(sync, entity="order", entity_id="7")

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in ("at", "time", "entry_id")} for row in rows]

    assert strip(scripted[0]) == strip(appended[0])
    assert [e.detail for e in scripted[1]] == [e.detail for e in appended[1]] == [e for _, e in events[::-2]]
    assert counts == sync.hgetall(keys.METRIC_COUNTER.format(name="bridge_shop_events"))
    assert ttl == pytest.approx(sync.ttl(synclog.entity_key("order", "7")), abs=5)


def test_the_web_app_tunes_the_garbage_collector_only_while_it_runs(redis_url: str) -> None:
    from starlette.testclient import TestClient

    from bridge.heap import YOUNG_THRESHOLD
    from bridge.settings import Settings
    from bridge.web.app import create_app

    before = gc.get_threshold()
    with TestClient(create_app(Settings(redis_url=redis_url))):
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_one_tls_context_serves_every_client() -> None:
    from bridge.tls import client_context

    assert client_context() is client_context()


def test_preload_imports_what_jobs_need() -> None:
    from bridge.worker import JOB_MODULES, preload

    preload()
    for name in (*JOB_MODULES, "bridge.orders.job", "bridge.updates.flush"):
        assert name in sys.modules
