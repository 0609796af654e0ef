"""The lock a job works under: one job per order or kind at a time, and a job that finds it taken comes back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from bridge import runtime
from bridge.queue import ORDERS_QUEUE
from bridge.queue.locked import locked_job
from bridge.queue.work import order_work
from bridge.runtime import Runtime
from tests.ops_helpers import emulator_settings

LOCK = "bridge:lock:order:300"


@pytest.fixture
def rt(redis_url: str, shop: Any, onec: Any) -> Iterator[Runtime]:
    current = Runtime.from_settings(emulator_settings(redis_url, shop, onec), Redis.from_url(redis_url))
    runtime.install(current)
    yield current
    runtime.install(None)


def test_the_body_holds_the_lock_and_it_is_free_afterwards(rt: Runtime) -> None:
    with locked_job(rt, LOCK, order_work("300", "save"), first_seen=1.0, busy="busy") as locked:
        assert locked is True
        assert rt.redis.exists(LOCK)
        assert rt.redis.pttl(LOCK) <= rt.settings.job_lease * 1000
    assert not rt.redis.exists(LOCK)
    assert Queue(ORDERS_QUEUE, connection=rt.redis).scheduled_job_registry.count == 0


def test_a_job_that_finds_the_lock_taken_schedules_itself_again(rt: Runtime) -> None:
    other = rt.redis.lock(LOCK, timeout=30)
    assert other.acquire(blocking=False)
    first_seen = 1e10  # far in the future: the retry window is open
    with locked_job(rt, LOCK, order_work("300", "cancel"), first_seen=first_seen, busy="order 300 is busy") as locked:
        assert locked is False
    assert rt.redis.exists(LOCK)  # still the other worker's
    [job_id] = Queue(ORDERS_QUEUE, connection=rt.redis).scheduled_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=rt.redis)
    assert (list(job.args), job.kwargs) == (["300", "cancel"], {"attempt": 1, "first_seen": first_seen})
    assert job_id.startswith("order-300-")


def test_a_lock_that_expired_under_the_job_is_logged_not_raised(rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    work = order_work("300", "save")
    with (
        caplog.at_level(logging.WARNING, logger="bridge.queue.locked"),
        locked_job(rt, LOCK, work, first_seen=1.0, busy="busy") as locked,
    ):
        assert locked
        rt.redis.delete(LOCK)  # the lease ran out while the job worked
    assert "order 300: the lock expired before the job finished" in caplog.text


def test_an_error_in_the_body_still_frees_the_lock(rt: Runtime) -> None:
    with pytest.raises(RuntimeError), locked_job(rt, LOCK, order_work("300", "save"), first_seen=1.0, busy="busy"):
        raise RuntimeError("the job failed")
    assert not rt.redis.exists(LOCK)
