"""Order jobs that find more orders due fetch them together: in-process, against the emulators over HTTP and a
real redis-server. The fault tests (tests/faults/test_order_batch_faults.py) do the same with real processes,
a locked 1C and a worker killed mid-batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from bridge import keys, runtime
from bridge.orders import claims
from bridge.orders.job import pending_key, queue_order, sync_order
from bridge.queue import ORDERS_QUEUE
from bridge.queue.orphans import OrphanSweep
from bridge.runtime import Runtime
from tests.test_order_job import run_queued, settings_for


@pytest.fixture
def rt(redis_url: str, shop: Any, onec: Any) -> Iterator[Runtime]:
    current = Runtime.from_settings(settings_for(redis_url, shop, onec), Redis.from_url(redis_url))
    runtime.install(current)
    yield current
    runtime.install(None)


def shop_requests(shop: Any) -> list[str]:
    return [method for method, _ in shop.requests]


def test_many_due_orders_are_fetched_fifty_to_a_batch(rt: Runtime, shop: Any, onec: Any) -> None:
    orders = [shop.add_order() for _ in range(120)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    shop.clear_records()
    run_queued(rt)
    numbers = {order["accountNumber"] for order in orders}
    assert set(onec.documents) == numbers
    assert all(onec.creations[n] == 1 for n in numbers)
    # 120 orders: three batches (50, 50, 20), one command per order, no single fetch.
    assert shop_requests(shop) == ["batch", "batch", "batch"]
    assert shop.count("sale.order.get") == 120
    assert not rt.redis.keys("bridge:order:pending:*")
    assert rt.redis.zcard(keys.ORDER_CLAIMS) == 0
    assert not rt.redis.keys("rq:job:*")  # every taken job was settled and deleted, like a run job
    assert Queue(ORDERS_QUEUE, connection=rt.redis).count == 0


def test_a_single_order_takes_the_plain_path(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    queue_order(rt, str(order["id"]))
    shop.clear_records()
    run_queued(rt)
    assert shop_requests(shop) == ["sale.order.get"]
    assert onec.creations[order["accountNumber"]] == 1


def test_a_batch_sends_each_orders_latest_state(rt: Runtime, shop: Any, onec: Any) -> None:
    orders = [shop.add_order() for _ in range(5)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    shop.update_order(orders[3]["id"], statusId="P")
    queue_order(rt, str(orders[3]["id"]), "save")  # collapses into its pending job
    run_queued(rt)
    assert onec.documents[orders[3]["accountNumber"]]["Status"] == "In progress"
    assert shop_requests(shop).count("batch") == 1


def test_part_of_a_batch_refused_by_the_shop(rt: Runtime, shop: Any, onec: Any) -> None:
    """One order gone from the shop, one command refused with QUERY_LIMIT_EXCEEDED: the rest go on, the
    refused one is fetched again on its own, the gone one is skipped (1C never had it)."""
    orders = [shop.add_order() for _ in range(6)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    gone = orders[2]
    shop.delete_order(gone["id"])
    shop.fail_next("sale.order.get", error="QUERY_LIMIT_EXCEEDED", status=503, description="Too many requests")
    shop.clear_records()
    run_queued(rt)
    delivered = {o["accountNumber"] for o in orders if o is not gone}
    assert set(onec.documents) == delivered
    assert all(onec.creations[n] == 1 for n in delivered)
    assert shop_requests(shop).count("batch") == 1
    assert shop_requests(shop).count("sale.order.get") == 1  # the refused command, fetched alone
    assert not rt.redis.keys("bridge:order:pending:*")
    assert FailedJobRegistry(ORDERS_QUEUE, connection=rt.redis).count == 0


def test_an_order_locked_by_another_job_is_left_to_it(rt: Runtime, shop: Any, onec: Any) -> None:
    first, second, third = (shop.add_order() for _ in range(3))
    for order in (first, second, third):
        queue_order(rt, str(order["id"]))
    queue = Queue(ORDERS_QUEUE, connection=rt.redis)
    own = queue.pop_job_id()
    assert own is not None and own.startswith(f"order-{first['id']}-")
    held = rt.redis.lock(keys.ORDER_LOCK.format(order_id=second["id"]), timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert sync_order(str(first["id"])) == "delivered"
    finally:
        held.release()
    assert third["accountNumber"] in onec.documents  # taken along
    assert second["accountNumber"] not in onec.documents
    assert [Job.fetch(i, connection=rt.redis).args[0] for i in queue.job_ids] == [str(second["id"])]  # given back
    run_queued(rt)
    assert onec.creations[second["accountNumber"]] == 1


def test_a_refused_order_in_a_batch_ends_as_its_own_dead_letter(rt: Runtime, shop: Any, onec: Any) -> None:
    orders = [shop.add_order() for _ in range(3)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    onec.reject(422, "Не заполнено поле Склад")
    run_queued(rt)
    letters = FailedJobRegistry(ORDERS_QUEUE, connection=rt.redis)
    assert sorted(Job.fetch(i, connection=rt.redis).args[0] for i in letters.get_job_ids()) == sorted(
        str(o["id"]) for o in orders
    )
    assert not rt.redis.keys("bridge:order:pending:*")


def test_the_claims_of_a_dead_batch_are_taken_over(rt: Runtime, shop: Any, onec: Any) -> None:
    """A taker killed mid-batch: its claims stop being renewed and the next order job takes them over."""
    orders = [shop.add_order() for _ in range(4)]
    for order in orders:
        queue_order(rt, str(order["id"]))
    queue = Queue(ORDERS_QUEUE, connection=rt.redis)
    taken = claims.claim(rt.redis, queue, 3, lease=0.2)  # the dead taker's, never renewed
    assert len(taken) == 3 and queue.count == 1
    sweep = OrphanSweep(rt)
    assert sweep() == 0  # live claims serve their markers

    def expired() -> bool:
        return not rt.redis.zrangebyscore(keys.ORDER_CLAIMS, time.time(), "+inf")

    deadline = time.monotonic() + 10
    while not expired():
        assert time.monotonic() < deadline, "the claims did not expire"
        time.sleep(0.05)
    run_queued(rt)
    assert set(onec.documents) == {o["accountNumber"] for o in orders}
    assert rt.redis.zcard(keys.ORDER_CLAIMS) == 0
    assert not rt.redis.keys("bridge:order:pending:*")


def test_a_marker_whose_job_is_only_a_dead_letter_is_cleared(rt: Runtime, shop: Any, onec: Any) -> None:
    """A job abandoned more often than its crash retries allow lands among the dead letters with its marker
    still set; later events for the order would collapse into it for ever. The sweep clears the marker (the
    dead letter stays for a person), and the next event queues a job that delivers."""
    order = shop.add_order()
    queue_order(rt, str(order["id"]))
    queue = Queue(ORDERS_QUEUE, connection=rt.redis)
    [job_id] = queue.job_ids
    job = Job.fetch(job_id, connection=rt.redis)
    queue.remove(job)
    FailedJobRegistry(queue=queue).add(job, exc_string="AbandonedJobError: killed with its worker")
    assert queue_order(rt, str(order["id"])) is False  # stuck: collapses into the dead job
    sweep = OrphanSweep(rt)
    assert sweep() == 0
    assert not rt.redis.exists(pending_key(str(order["id"])))
    assert FailedJobRegistry(queue=queue).count == 1
    assert queue_order(rt, str(order["id"])) is True
    run_queued(rt)
    assert onec.creations[order["accountNumber"]] == 1


def test_an_event_during_a_batch_makes_its_order_go_round_once_more(rt: Runtime, shop: Any, onec: Any) -> None:
    """The batch fetched order B, then B changed in the shop and its event came while the batch worked:
    B's pass sends what was fetched, finds its marker changed, and B's job runs again with the newest state."""
    first, second = shop.add_order(), shop.add_order()
    for order in (first, second):
        queue_order(rt, str(order["id"]))
    queue = Queue(ORDERS_QUEUE, connection=rt.redis)
    assert queue.pop_job_id() is not None  # the first order's job, run here
    onec.latency = 1.0
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(sync_order(str(first["id"]))))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (onec.in_flight > 0 and rt.redis.zcard(keys.ORDER_CLAIMS) == 1):
            assert time.monotonic() < deadline, "the batch did not start"
            time.sleep(0.02)
        shop.update_order(second["id"], statusId="P")
        assert queue_order(rt, str(second["id"])) is False  # collapses into the marker the batch read
    finally:
        runner.join(60)
    onec.latency = 0.0
    assert outcome == ["delivered"]
    assert [Job.fetch(i, connection=rt.redis).args[0] for i in queue.job_ids] == [str(second["id"])]  # given back
    run_queued(rt)
    number = second["accountNumber"]
    assert onec.documents[number]["Status"] == "In progress"
    assert (onec.creations[number], onec.updates[number]) == (1, 1)
    assert not rt.redis.keys("bridge:order:pending:*")


def test_a_batch_gives_back_what_would_not_fit_in_the_jobs_time(redis_url: str, shop: Any, onec: Any) -> None:
    """RQ kills a job that outruns BRIDGE_JOB_TIMEOUT. A batch leaves room for one more order's worst case
    (each 1C call waiting for a slot, then timing out); here not even one fits, so none is taken along."""
    settings = settings_for(redis_url, shop, onec).model_copy(update={"job_timeout": 10, "onec_timeout": 5.0})
    current = Runtime.from_settings(settings, Redis.from_url(redis_url))
    runtime.install(current)
    try:
        orders = [shop.add_order() for _ in range(3)]
        for order in orders:
            queue_order(current, str(order["id"]))
        queue = Queue(ORDERS_QUEUE, connection=current.redis)
        assert queue.pop_job_id() is not None
        shop.clear_records()
        assert sync_order(str(orders[0]["id"])) == "delivered"
        assert set(onec.documents) == {orders[0]["accountNumber"]}
        assert shop_requests(shop) == ["sale.order.get"]
        assert sorted(Job.fetch(i, connection=current.redis).args[0] for i in queue.job_ids) == sorted(
            str(o["id"]) for o in orders[1:]
        )
        assert current.redis.zcard(keys.ORDER_CLAIMS) == 0
        run_queued(current)
        assert set(onec.documents) == {o["accountNumber"] for o in orders}
    finally:
        runtime.install(None)


def test_a_batch_gives_back_the_orders_its_time_has_no_room_for(redis_url: str, shop: Any, onec: Any) -> None:
    """Room for one order's worst case is kept to the end: once the job is past its time less that, the
    orders not yet sent go back to the queue, unsent, and run as jobs of their own."""
    settings = settings_for(redis_url, shop, onec).model_copy(update={"job_timeout": 10, "onec_timeout": 4.0})
    current = Runtime.from_settings(settings, Redis.from_url(redis_url))  # 10 - 2 × 4: 2 s for the batch
    runtime.install(current)
    try:
        orders = [shop.add_order() for _ in range(5)]
        for order in orders:
            queue_order(current, str(order["id"]))
        queue = Queue(ORDERS_QUEUE, connection=current.redis)
        assert queue.pop_job_id() is not None
        onec.latency = 1.5
        assert sync_order(str(orders[0]["id"])) == "delivered"
        sent = len(onec.documents)
        assert 1 <= sent <= 3  # its own, and what fitted
        assert queue.count == len(orders) - sent  # the rest given back, not sent
        assert current.redis.zcard(keys.ORDER_CLAIMS) == 0
        onec.latency = 0.0
        run_queued(current)
        assert set(onec.documents) == {o["accountNumber"] for o in orders}
        assert all(onec.creations[o["accountNumber"]] == 1 for o in orders)
    finally:
        runtime.install(None)


def test_a_long_batch_keeps_its_claims_alive(redis_url: str, shop: Any, onec: Any) -> None:
    """A batch working longer than a claim's lease renews its claims: the orphan sweep, run meanwhile, sees
    every taken order served and queues nothing again."""
    settings = settings_for(redis_url, shop, onec).model_copy(update={"maintenance_interval": 1})
    current = Runtime.from_settings(settings, Redis.from_url(redis_url))  # lease 3 s, renewed every second
    runtime.install(current)
    try:
        orders = [shop.add_order() for _ in range(6)]
        for order in orders:
            queue_order(current, str(order["id"]))
        queue = Queue(ORDERS_QUEUE, connection=current.redis)
        assert queue.pop_job_id() is not None
        onec.latency = 1.0  # six orders one after another: twice the lease
        runner = threading.Thread(target=sync_order, args=(str(orders[0]["id"]),))
        runner.start()
        sweep = OrphanSweep(current)
        requeued = 0
        try:
            deadline = time.monotonic() + 60
            while len(onec.documents) < 5:  # well past the lease
                assert time.monotonic() < deadline, "the batch did not progress"
                requeued += sweep()
                time.sleep(0.3)
        finally:
            runner.join(60)
        onec.latency = 0.0
        # Only the job run here, outside RQ (so in no RQ list), may look orphaned; no taken order does.
        assert {Job.fetch(i, connection=current.redis).args[0] for i in queue.job_ids} <= {str(orders[0]["id"])}
        assert requeued <= 1
        assert set(onec.documents) == {o["accountNumber"] for o in orders}
        assert all(onec.creations[o["accountNumber"]] == 1 for o in orders)
    finally:
        runtime.install(None)
