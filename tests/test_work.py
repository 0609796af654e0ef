"""The job descriptor: one place says what a job is, and jobs stored under earlier paths still run.

RQ stores a job's function as a dotted path; dead letters are kept for a year and retries wait in the
scheduler. So every path a release ever stored must resolve to today's function, be described and replayed
as today's job, and count as serving its pending marker.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.results import Result
from rq.utils import import_attribute

from bridge import keys
from bridge.orders.job import queue_order, sync_order
from bridge.queue import CRASH_RETRY, FAILURE_TTL, ORDERS_QUEUE, SHOP_QUEUE, deadletters
from bridge.queue.orphans import OrphanSweep
from bridge.queue.work import (
    FLUSH,
    LEGACY_FUNCTIONS,
    RELEASE,
    SYNC_ORDER,
    JobId,
    flush_work,
    job_kind_of,
    order_work,
)
from bridge.runtime import Runtime
from bridge.updates.flush import flush, marker_key
from tests.ops_helpers import emulator_settings, run_jobs
from tests.processes import ROOT


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


# --- the descriptor -----------------------------------------------------------------------------------------


def test_a_job_id_reads_back_as_what_the_job_works_for() -> None:
    assert JobId.parse(order_work("300", "save").new_job_id()) == ("order", "300")
    assert JobId.parse(flush_work("order-status").new_job_id()) == ("flush", "order-status")
    assert JobId.parse(JobId.new("order", "a b/ä")) == ("order", JobId.safe("a b/ä"))
    assert JobId.safe("a b/ä") == "a_b_ä"


@pytest.mark.parametrize("foreign", ["t-9-a", "order-30", "order--aaaaaaaaaaaa", "order-30-AAAAAAAAAAAA", "x"])
def test_ids_the_bridge_did_not_make_read_as_nothing(foreign: str) -> None:
    assert JobId.parse(foreign) is None


def test_every_job_of_one_work_has_an_id_of_its_own() -> None:
    work = order_work("300", "save")
    assert len({work.new_job_id() for _ in range(100)}) == 100


def test_each_work_names_its_job_its_marker_and_its_arguments() -> None:
    order = order_work("300", "cancel")
    assert (order.queue, order.marker, order.args, order.action) == (
        ORDERS_QUEUE,
        keys.ORDER_PENDING.format(order_id="300"),
        ("300", "cancel"),
        "cancel",
    )
    assert import_attribute(order.func) is sync_order
    stock = flush_work("stock")
    assert (stock.queue, stock.marker, stock.args) == (SHOP_QUEUE, keys.UPDATES_FLUSH.format(kind="stock"), ("stock",))
    assert stock.marker == marker_key("stock")
    assert import_attribute(stock.func) is flush


def test_a_job_put_into_rq_gets_the_options_every_bridge_job_has(redis: Redis) -> None:
    queue = Queue(ORDERS_QUEUE, connection=redis)
    now = order_work("7", "save").put(queue, timeout=123, kwargs={"attempt": 2, "first_seen": 1.0})
    later = order_work("8", "save").put(queue, timeout=123, delay=600)
    for job in (Job.fetch(now.id, connection=redis), Job.fetch(later.id, connection=redis)):
        assert (job.result_ttl, job.failure_ttl, job.timeout) == (0, FAILURE_TTL, 123)
        assert (job.retries_left, job.retry_intervals) == (CRASH_RETRY.max, CRASH_RETRY.intervals)
    assert queue.job_ids == [now.id]
    assert Job.fetch(now.id, connection=redis).kwargs == {"attempt": 2, "first_seen": 1.0}
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [later.id]
    assert Job.fetch(later.id, connection=redis).get_status() == JobStatus.SCHEDULED


def _job_facts_outside_work_py() -> list[str]:
    paths = {SYNC_ORDER, FLUSH, RELEASE, *LEGACY_FUNCTIONS}
    found = []
    for source in sorted((ROOT / "bridge").rglob("*.py")):
        if source.relative_to(ROOT) == Path("bridge/queue/work.py"):
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in paths:
                found.append(f"{source.relative_to(ROOT)}:{node.lineno}: {node.value}")
            if isinstance(node, ast.keyword) and (
                node.arg in {"result_ttl", "failure_ttl"} or ast.unparse(node.value).endswith("CRASH_RETRY")
            ):
                found.append(f"{source.relative_to(ROOT)}:{node.lineno}: {node.arg}=")
    return found


def test_no_module_but_work_py_spells_out_a_job_path_or_rqs_options() -> None:
    assert _job_facts_outside_work_py() == []


# --- jobs stored by earlier releases --------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), sorted(LEGACY_FUNCTIONS.items()))
def test_each_earlier_path_resolves_to_todays_function(old: str, new: str) -> None:
    assert import_attribute(old) is import_attribute(new)
    assert job_kind_of(old) is job_kind_of(new) is not None


def test_a_queued_order_job_under_the_earlier_path_runs(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    order = shop.add_order()
    order_id = str(order["id"])
    Queue(ORDERS_QUEUE, connection=redis).enqueue(
        "bridge.sync.orders.sync_order", order_id, "save", job_id=JobId.new("order", order_id)
    )
    run_jobs(settings, redis)
    assert onec.creations[order["accountNumber"]] == 1


def test_a_queued_flush_job_under_the_earlier_path_runs(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    job = Queue(SHOP_QUEUE, connection=redis).enqueue("bridge.sync.updates.flush", "stock")
    run_jobs(settings, redis)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert str(job.return_value()).startswith("0 applied")


def _stored_dead_letter(redis: Redis, func: str, order_id: str) -> str:
    job = Job.create(
        func, args=(order_id, "save"), kwargs={"attempt": 3, "first_seen": 1.0}, id=JobId.new("order", order_id),
        connection=redis, origin=ORDERS_QUEUE, failure_ttl=FAILURE_TTL,
    )  # fmt: skip
    job.save()
    reason = "Traceback …\nbridge.errors.PermanentError: 1C said no"
    FailedJobRegistry(ORDERS_QUEUE, connection=redis).add(job, exc_string=reason)
    Result.create_failure(job, ttl=FAILURE_TTL, exc_string=reason)
    return job.id


def test_a_dead_letter_under_the_earlier_path_is_listed_and_replayed_as_todays_job(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    order = shop.add_order()
    order_id = str(order["id"])
    job_id = _stored_dead_letter(redis, "bridge.sync.orders.sync_order", order_id)
    [letter] = deadletters.list_failed(redis)
    assert (letter.id, letter.what, letter.why, letter.attempts) == (
        job_id,
        f"order {order_id} (save)",
        "1C said no",
        4,
    )
    assert (letter.entity, letter.entity_id) == ("order", order_id)
    report = deadletters.retry(redis, [job_id])
    assert [d.id for d in report.requeued] == [job_id]
    replayed = Job.fetch(job_id, connection=redis)
    assert replayed.func_name == SYNC_ORDER
    assert (list(replayed.args), replayed.kwargs) == ([order_id, "save"], {})
    run_jobs(settings, redis)
    assert onec.creations[order["accountNumber"]] == 1
    assert deadletters.count(redis) == 0


def test_a_job_under_the_earlier_path_serves_its_marker(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec), redis)
    queue_order(rt, "77")  # the marker, and a job under today's path
    queue = Queue(ORDERS_QUEUE, connection=redis)
    [today] = queue.job_ids
    queue.remove(today)
    queue.enqueue("bridge.sync.orders.sync_order", "77", "save", job_id=JobId.new("order", "77"))
    _stored_dead_letter(redis, "bridge.sync.orders.sync_order", "78")  # a dead letter waits for a person
    redis.set(keys.ORDER_PENDING.format(order_id="78"), f"save:{time.time()}")
    sweep = OrphanSweep(rt)
    assert (sweep(), sweep()) == (0, 0)
    assert queue.count == 1
