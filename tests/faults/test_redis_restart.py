"""Redis goes down (killed with SIGKILL, then a clean restart) while work waits in it.

The guarantee (README, "Redis restarts"): with AOF on, every event the bridge acknowledged is still there
after Redis comes back, and is delivered; while Redis is down nothing is acknowledged (503, so the sender
knows), and the processes reconnect by themselves. Each test runs its own redis-server with
``appendonly yes`` and ``appendfsync everysec``, as the README tells operators to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.redis_server import RedisServer
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def aof_redis(tmp_path: Path, redis_server: RedisServer) -> Iterator[RedisServer]:
    """A redis-server of this test's own (``redis_server`` only makes sure one can be started)."""
    server = RedisServer(tmp_path / "aof-redis", appendonly=True)
    try:
        yield server
    finally:
        server.stop()


def written_to_aof(server: RedisServer) -> bool:
    """Redis has handed every write to the OS (what survives a crash of the Redis process alone)."""
    with server.client() as client:
        info = client.info("persistence")
    return bool(info["aof_enabled"]) and info["aof_buffer_length"] == 0


def test_events_accepted_before_redis_dies_are_delivered_after_it_is_back(
    make_stack: MakeStack, aof_redis: RedisServer, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    # A job that loses Redis between winning the 1C probe and reporting its answer holds the probe for
    # 2 × BRIDGE_ONEC_TIMEOUT + 10 s: short here, so the unlucky timing costs the test seconds, not minutes.
    stack = make_stack(aof_redis.url, BRIDGE_ONEC_TIMEOUT="5")
    try:
        stack.start_web()
        stack.start("worker")
        stack.start("clock")  # a whole deployment: the clock re-queues a job Redis lost as a worker took it
        onec.lock()  # the work has to wait in Redis: scheduled retries behind an open circuit
        orders = [shop.add_order() for _ in range(6)]
        for order in orders[:3]:
            assert stack.fire(order["id"]) == [200]
        wait_for(lambda: stack.circuit() == "open", timeout=SETTLE, what="the circuit to open")
        for order in orders[3:]:
            assert stack.fire(order["id"]) == [200]
        with Redis.from_url(aof_redis.url) as client:
            assert client.keys("bridge:order:pending:*"), "the work should be waiting in Redis"

        wait_for(lambda: written_to_aof(aof_redis), timeout=SETTLE, what="the AOF to be written")
        aof_redis.kill()
        late = shop.add_order()
        assert stack.fire(late["id"]) == [503]  # not acknowledged: the shop is told it did not get through
        assert httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 503

        aof_redis.start()
        wait_for(lambda: httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200, what="/readyz again")
        assert stack.fire(late["id"]) == [200]
        aof_redis.restart()  # and a clean restart on top, while the circuit is still open
        wait_for(lambda: httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200, what="/readyz again")
        assert stack.circuit() == "open"  # the circuit, too, survived

        onec.unlock()
        numbers = [order["accountNumber"] for order in [*orders, late]]
        wait_delivered(onec, numbers, stack=stack)
        wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
        assert created_once(onec, numbers) == {}
        assert stack.failed() == 0
    finally:
        stack.close()  # before the fixture stops this Redis, so the processes do not wait for it
