"""The pieces that make a dead worker's (or a lost Redis connection's) work come back soon, in-process.

``tests/faults/`` shows them working end to end with real processes; these pin each piece down: the RQ
tuning derived from ``BRIDGE_MAINTENANCE_INTERVAL``, the renewed lock lease, the stale-execution
workaround, the orphan sweep, the 1C probe given back, and an OPERATION_TIME_LIMIT reset read inside a batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bridge import keys, runtime
from bridge.errors import TransientError
from bridge.locks import renewed
from bridge.mappings import DEFAULTS_DIR
from bridge.onec.answers import Answer, Outcome
from bridge.orders.job import queue_order, send
from bridge.queue import ORDERS_QUEUE, SHOP_QUEUE
from bridge.queue.orphans import OrphanSweep
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.shop.batch import parse
from bridge.updates.flush import queue_flush
from bridge.worker import BridgeSimpleWorker, BridgeWorker, build_worker, forget_dead_executions, recovery_bound


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def rt(redis_url: str, redis: Redis, onec: Any, shop: Any) -> Iterator[Runtime]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=redis_url,
        shop_url=shop.url,
        onec_url=onec.url,
        onec_user=onec.user,
        onec_password=onec.password,
        onec_timeout=1,
        onec_concurrency=1,
        mappings_dir=DEFAULTS_DIR,
        maintenance_interval=30,
    )
    current = Runtime.from_settings(settings, redis)
    runtime.install(current)
    yield current
    runtime.install(None)


def test_the_worker_is_tuned_from_the_maintenance_interval(rt: Runtime) -> None:
    worker = build_worker(rt.settings, rt.redis)
    assert isinstance(worker, BridgeWorker)
    assert worker.maintenance_interval == 30
    assert worker.job_monitoring_interval == 10  # a heartbeat every third of it
    assert worker.dequeue_timeout == 10  # an idle worker looks for dead workers' jobs that often
    assert worker.get_heartbeat_ttl(Job.create(func=print, connection=rt.redis)) == 40  # lease + one heartbeat
    assert recovery_bound(rt.settings) == 80.0


@pytest.mark.parametrize("interval", [1, 2, 3, 30, 600])
def test_the_lease_always_spans_three_heartbeats(interval: int) -> None:
    settings = Settings(_env_file=None, maintenance_interval=interval)  # type: ignore[call-arg]
    assert settings.job_lease >= 3 * settings.job_heartbeat >= 3
    assert recovery_bound(settings) <= 3 * interval + 6


def test_a_renewed_lock_outlives_its_lease_and_expires_when_its_holder_stops(redis: Redis) -> None:
    lock = redis.lock("bridge:test:renewed", timeout=1, thread_local=False)
    assert lock.acquire(blocking=False)
    with renewed(lock, 0.2):
        time.sleep(1.6)  # well past the 1 s lease
        assert lock.owned()
    # The holder "dies" here: no release, no renewal. The lease runs out by itself.
    deadline = time.monotonic() + 10
    while redis.exists("bridge:test:renewed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not redis.exists("bridge:test:renewed")


def test_stale_execution_entries_are_forgotten_and_live_ones_kept(redis: Redis) -> None:
    job = Job.create(func=print, connection=redis, id="order-1-abc")
    job.save()
    key = job.execution_registry.key
    redis.zadd(key, {"dead": time.time() + 60, "alive": time.time() + 60})
    redis.hset("rq:execution:order-1-abc:alive", "job_id", "order-1-abc")
    assert forget_dead_executions(redis, job) == 1
    assert [m.decode() for m in redis.zrange(key, 0, -1)] == ["alive"]


def test_a_dead_execution_that_runs_out_during_the_rerun_does_not_fail_the_job(redis: Redis) -> None:
    """The job runs once: without forgetting again before RQ's clean-up (jobs keep no result, as the
    bridge's own), RQ raises ``Execution … not found`` after the job succeeded and schedules a retry."""
    queue = Queue("bridge-test-outlived", connection=redis)
    job = queue.enqueue("tests.jobs_for_tests.outlived", "a", retry=Retry(max=3, interval=60), result_ttl=0)
    BridgeSimpleWorker([queue], connection=redis).work(burst=True)
    assert redis.lrange("test:outlived", 0, -1) == [b"a"]
    assert job.id not in ScheduledJobRegistry(queue=queue)
    assert job.id not in FailedJobRegistry(queue=queue)
    assert not redis.exists(job.key)  # finished and cleaned up, as a job without a result is


def test_a_marker_without_a_job_gets_its_job_back_at_the_second_sweep(rt: Runtime, redis: Redis) -> None:
    queue_order(rt, "301")
    queue_order(rt, "302")
    queue_flush(rt, "stock")
    orders = Queue(ORDERS_QUEUE, connection=redis)
    lost = redis.lpop(orders.key)  # order 301's job, taken by a worker that then died
    assert lost is not None and lost.decode().startswith("order-301-")
    redis.lpop(f"rq:queue:{SHOP_QUEUE}")  # the stock flush's job, likewise
    sweep = OrphanSweep(rt)
    assert sweep() == 0  # the first sighting could be a job between pop and start: only suspected
    assert sweep() == 2
    assert sorted(Job.fetch(i, connection=redis).args for i in orders.get_job_ids()) == [
        ("301", "save"),
        ("302", "save"),
    ]
    assert [Job.fetch(i, connection=redis).args for i in Queue(SHOP_QUEUE, connection=redis).get_job_ids()] == [
        ("stock",)
    ]
    assert sweep() == 0  # served now


def test_scheduled_and_failed_jobs_serve_their_markers(rt: Runtime, redis: Redis) -> None:
    queue_order(rt, "401")
    queue_order(rt, "402")
    orders = Queue(ORDERS_QUEUE, connection=redis)
    first, second = (Job.fetch(i, connection=redis) for i in orders.get_job_ids())
    orders.remove(first)
    ScheduledJobRegistry(queue=orders).schedule(first, datetime.now(UTC) + timedelta(minutes=10))
    orders.remove(second)
    FailedJobRegistry(queue=orders).add(second, exc_string="a dead letter waits for a person")
    sweep = OrphanSweep(rt)
    assert sweep() == 0
    assert sweep() == 0
    assert orders.count == 0


def test_a_probe_that_got_no_slot_is_given_back(rt: Runtime, redis: Redis) -> None:
    circuit = rt.circuit
    circuit.record(Answer(Outcome.UNAVAILABLE, 403, "locked", ""))
    redis.hset(keys.ONEC_CIRCUIT, "retry_at", "0")  # a probe is due
    redis.zadd(keys.ONEC_SLOTS, {"a worker elsewhere": (time.time() + 60) * 1000})  # the only slot is taken
    with pytest.raises(TransientError):
        send(rt, "501", {"Number": "501"}, None)
    assert not redis.exists(keys.ONEC_PROBE)  # the next due caller may probe now, not in 2 × timeout + 10 s
    assert circuit.allow()


def test_an_operation_time_limit_inside_a_batch_names_its_reset() -> None:
    reset = time.time() + 42
    payload = {
        "result": {"a": {"id": 1}},
        "result_error": {"b": {"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": reset}}},
        "result_time": {"a": {"operating_reset_at": reset - 100}},
    }
    result, resets = parse(payload, {"a": "catalog.price.list", "b": "catalog.storeproduct.update"})
    assert set(result.errors) == {"b"}
    assert resets == {"catalog.price.list": reset - 100, "catalog.storeproduct.update": reset}
