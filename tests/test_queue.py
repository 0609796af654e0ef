"""The collapsing enqueue: many events, one job, latest action wins; and RQ runs what we wrote."""

from __future__ import annotations

import itertools

import fakeredis
import pytest
from redis import Redis
from rq import Queue

from bridge.queue.enqueue import Enqueuer
from bridge.queue.markers import finish_pending, read_pending
from bridge.queue.retry import backoff, bring_forward
from bridge.queue.work import Work
from bridge.worker import BridgeSimpleWorker

FUNC = "tests.jobs_for_tests.record"


@pytest.fixture(params=["real", "fake"])
def conn(request: pytest.FixtureRequest) -> Redis:
    if request.param == "real":
        return Redis.from_url(request.getfixturevalue("redis_url"))
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def work(entity: str, action: str) -> Work:
    return Work(
        queue="q", func=FUNC, args=(entity, action), marker=f"m:{entity}", action=action, job_kind="t", entity=entity
    )


def enqueue(enq: Enqueuer, entity: str, action: str) -> bool:
    return enq.enqueue_once(work(entity, action))


def test_three_events_make_one_job_and_the_last_action_wins(conn: Redis) -> None:
    enq = Enqueuer(conn)
    assert enqueue(enq, "300", "save") is True
    assert enqueue(enq, "300", "save") is False
    assert enqueue(enq, "300", "cancel") is False
    assert enqueue(enq, "301", "save") is True
    queue = Queue("q", connection=conn)
    assert queue.count == 2
    action, token = read_pending(conn, "m:300")
    assert action == "cancel"
    assert token is not None and token.startswith("cancel:")


def test_rq_runs_the_job_the_script_wrote(conn: Redis) -> None:
    enq = Enqueuer(conn)
    enqueue(enq, "300", "save")
    worker = BridgeSimpleWorker([Queue("q", connection=conn)], connection=conn)
    worker.work(burst=True)
    assert conn.lrange("test:ran", 0, -1) == [b"300:save"]


def test_finish_pending_refuses_when_a_newer_event_arrived(conn: Redis) -> None:
    enq = Enqueuer(conn)
    enqueue(enq, "7", "save")
    _, token = read_pending(conn, "m:7")
    enqueue(enq, "7", "save")  # arrives while the job works
    assert finish_pending(conn, "m:7", token) is False
    _, newer = read_pending(conn, "m:7")
    assert finish_pending(conn, "m:7", newer) is True
    assert conn.get("m:7") is None
    # With nothing pending, the next event queues a fresh job.
    assert enqueue(enq, "7", "save") is True


def test_bring_forward_makes_scheduled_retries_due(conn: Redis) -> None:
    queue = Queue("q", connection=conn)
    nine = work("9", "save").put(queue, timeout=60, delay=3600).id
    ten = work("10", "save").put(queue, timeout=60, delay=7200).id
    registry = queue.scheduled_job_registry
    assert registry.get_jobs_to_schedule() == []
    assert bring_forward(queue) == 2
    assert sorted(registry.get_jobs_to_schedule()) == sorted([ten, nine])


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(a, min_delay=5, max_delay=600, jitter=0) for a in range(12)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 600
    assert all(a <= b for a, b in itertools.pairwise(delays))
