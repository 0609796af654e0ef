"""Two ``clock`` processes (one too many, by mistake) and several workers on the same orders.

The guarantee: no double work and no order written concurrently. Only one clock polls; each order is
created in 1C once; never more than ``BRIDGE_ONEC_CONCURRENCY`` calls are in flight; and two calls for the
same order never overlap, however many events and workers race for it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import threading
from collections.abc import Iterator

import pytest
from redis import Redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.queue import ORDERS_QUEUE
from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, wait_delivered
from tests.peers.onec import SERVICE_PATH, OnecEmulator, create_onec_app
from tests.peers.server import run_app
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow


class PerOrderInFlight:
    """ASGI middleware in front of the 1C emulator: calls in flight per ``Idempotency-Key`` (= order)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.now: collections.Counter[str] = collections.Counter()
        self.most: collections.Counter[str] = collections.Counter()
        self.held: set[str] = set()  # calls for these keys wait (in flight) until the key is released

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        with self.lock:
            self.now[key] += 1
            self.most[key] = max(self.most[key], self.now[key])
        try:
            while key in self.held:
                await asyncio.sleep(0.02)
            await self.app(scope, receive, send)
        finally:
            with self.lock:
                self.now[key] -= 1


@pytest.fixture
def tracked_onec() -> Iterator[tuple[OnecEmulator, PerOrderInFlight]]:
    emulator = OnecEmulator()
    tracker = PerOrderInFlight(create_onec_app(emulator))
    with run_app(tracker) as server:
        emulator.url = f"{server.url}{SERVICE_PATH}"
        yield emulator, tracker


def test_two_clocks_and_three_workers_do_no_double_work(
    make_stack: MakeStack, shop: ShopEmulator, tracked_onec: tuple[OnecEmulator, PerOrderInFlight]
) -> None:
    onec, tracker = tracked_onec
    onec.latency = 0.3  # calls overlap long enough for a missing lock to show
    stack = make_stack(
        BRIDGE_ONEC_URL=onec.url, BRIDGE_POLL_INTERVAL="1", BRIDGE_ONEC_CONCURRENCY="2", BRIDGE_RETRY_MAX_DELAY="0.5"
    )
    stack.onec = onec
    stack.start_web()
    clocks = [stack.start("clock"), stack.start("clock")]
    for _ in range(3):
        stack.start("worker")

    lost = [shop.add_order() for _ in range(4)]  # their webhooks never came: only the poll finds them
    busy = [shop.add_order() for _ in range(4)]
    for order in busy:  # the shop's event storms: every save fires twice, and orders change meanwhile
        assert stack.fire(order["id"], duplicates=2) == [200, 200]
    for order in busy[:2]:
        shop.update_order(order["id"], statusId="P")
        assert stack.fire(order["id"], duplicates=2) == [200, 200]

    numbers = [order["accountNumber"] for order in [*lost, *busy]]
    wait_delivered(onec, numbers)
    for order in busy[:2]:
        wait_for(
            lambda o=order: onec.documents[o["accountNumber"]]["Status"] == "In progress",
            timeout=SETTLE,
            what="the newest state of a changed order",
        )
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")

    assert created_once(onec, numbers) == {}
    assert onec.max_in_flight <= 2
    assert max(tracker.most.values()) == 1, tracker.most  # no order was ever written by two calls at once
    leaders = [clock for clock in clocks if "clock: leading" in clock.output()]
    assert len(leaders) == 1, [clock.output()[-2000:] for clock in clocks]
    assert stack.failed() == 0

    # A worker stalls (SIGSTOP: no heartbeats) in the middle of a call. Its job looks abandoned and another
    # worker runs it again while the first call is still open: the order lock must keep the two apart.
    late = shop.add_order()
    key = str(late["id"])
    tracker.held.add(key)
    assert stack.fire(late["id"]) == [200]
    wait_for(lambda: tracker.now[key] > 0, timeout=SETTLE, what="the call to be in flight")
    stalled = worker_pid_running(stack.redis)
    os.kill(stalled, signal.SIGSTOP)
    try:
        wait_for(
            lambda: "being synced by another worker" in stack.output() or tracker.now[key] > 1,
            timeout=SETTLE,
            what="another worker to take up the stalled job",
        )
    finally:
        os.kill(stalled, signal.SIGCONT)
        tracker.held.clear()
    wait_delivered(onec, [late["accountNumber"]])
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert tracker.most[key] == 1
    assert onec.creations[late["accountNumber"]] == 1
    assert stack.failed() == 0


def worker_pid_running(redis: Redis) -> int:
    """The pid of the worker (parent of the work-horse) running the one started order job."""
    registry = StartedJobRegistry(ORDERS_QUEUE, connection=redis)
    job_ids = registry.get_job_ids()
    assert len(job_ids) == 1, job_ids
    job = Job.fetch(job_ids[0], connection=redis)
    pid = redis.hget(f"rq:worker:{job.worker_name}", "pid")
    assert pid is not None
    return int(pid)
