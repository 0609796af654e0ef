"""A worker dies with SIGKILL (OOM killer, a lost host) in the middle of a call to 1C.

The guarantee: another worker runs the order again within a bounded time, and since 1C gets the same
``Number`` and ``Idempotency-Key``, it sees at most an update, never a second order. The bound comes from
``BRIDGE_MAINTENANCE_INTERVAL`` (see ``bridge.worker.recovery_bound``); with the defaults it is under two
minutes, and this test shortens it through the environment to a few seconds.
"""

from __future__ import annotations

import pytest

from bridge.queue import ORDERS_QUEUE
from bridge.settings import Settings
from bridge.worker import recovery_bound
from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, kill_hard, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow

MAINTENANCE = 3
SLOW_1C = 8.0  # long enough to kill the worker mid-call, short enough for the stray call to end in the test


def test_default_recovery_bound_is_a_minute_or_two() -> None:
    """The promise the README makes for the defaults, from the same formula the test below relies on."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.job_timeout > defaults.onec_timeout + defaults.shop_timeout
    assert recovery_bound(defaults) <= 120


def test_order_of_a_worker_killed_mid_call_is_delivered_by_another(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack(BRIDGE_MAINTENANCE_INTERVAL=str(MAINTENANCE))
    stack.start_web()
    doomed = stack.start("worker")
    order = shop.add_order()
    number = order["accountNumber"]
    onec.latency = SLOW_1C
    assert stack.fire(order["id"]) == [200]
    wait_for(lambda: onec.in_flight > 0, timeout=SETTLE, what="the worker to be in a call to 1C")

    kill_hard(doomed)
    onec.latency = 0.0
    stack.start("worker")
    bound = recovery_bound(Settings(_env_file=None, maintenance_interval=MAINTENANCE))  # type: ignore[call-arg]
    # The bound plus the time the new worker takes to start and do one pass on a loaded machine.
    wait_for(
        lambda: any(c["outcome"] in ("created", "updated") and c["number"] == number for c in onec.calls[1:]),
        timeout=bound + 30,
        what="another worker to deliver the order",
    )
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    # The killed worker's call is still running inside 1C: let it finish before counting.
    wait_for(lambda: onec.in_flight == 0, timeout=SETTLE, what="the abandoned call to end in 1C")
    wait_delivered(onec, [number])
    assert onec.creations[number] == 1
    assert onec.updates[number] <= 1
    assert {c["idempotency_key"] for c in onec.calls} == {str(order["id"])}
    assert stack.failed() == 0
    # One fetch by the killed worker, one by its successor: the re-run did not fail after succeeding and
    # go round again (RQ 3.0.0's stale execution entry, see bridge.worker._ForgetsDeadExecutions).
    assert shop.count("sale.order.get") == 2
    assert "not found in Redis" not in stack.output()


def test_a_job_lost_between_a_workers_pop_and_its_start_is_queued_again(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    """A worker on two queues takes a job with a plain LPOP (RQ's reliable LMOVE serves one queue only);
    killed before the job is registered as started, it leaves the job in no list, and the order's pending
    marker would hold back every later event for it. The clock finds such markers and queues the job again."""
    stack = make_stack(BRIDGE_MAINTENANCE_INTERVAL=str(MAINTENANCE))
    stack.start_web()
    order = shop.add_order()
    assert stack.fire(order["id"]) == [200]
    taken = stack.redis.lpop(f"rq:queue:{ORDERS_QUEUE}")  # what the killed worker had taken
    assert taken is not None and taken.decode().startswith(f"order-{order['id']}-")
    stack.start("worker")
    stack.start("clock")
    # Found orphaned at two sweeps in a row, one maintenance interval apart, then queued and run.
    wait_delivered(onec, [order["accountNumber"]], timeout=4 * MAINTENANCE + 30, stack=stack)
    assert onec.creations[order["accountNumber"]] == 1
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert stack.failed() == 0
