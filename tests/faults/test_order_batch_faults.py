"""Orders fetched many to a ``batch`` call, through a 1C lock and a worker killed mid-batch.

The guarantees: while 1C is locked, a batch parks its orders as retries without asking the shop for them
one by one; once the lock lifts they drain in batches, each created once. A worker killed while it holds a
batch (its own order and the jobs it took along) loses nothing: the taken jobs' claims run out, the next
order job takes them over, and every order reaches 1C in its latest state.
"""

from __future__ import annotations

import time

import pytest

from bridge import keys
from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, kill_hard, sample_while, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow

MAINTENANCE = 3


def _pending(stack: object, order_ids: list[int]) -> int:
    redis = stack.redis  # type: ignore[attr-defined]
    return sum(1 for order_id in order_ids if redis.exists(keys.ORDER_PENDING.format(order_id=order_id)))


def test_a_batch_under_a_1c_lock_parks_its_orders_and_drains_in_batches_after(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack(BRIDGE_MAINTENANCE_INTERVAL=str(MAINTENANCE))
    stack.start_web()
    onec.lock("Ведутся технические работы")
    orders = [shop.add_order() for _ in range(60)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:  # all due before a worker starts, as after an outage
        assert stack.fire(order["id"]) == [200]
    shop.clear_records()
    stack.start("worker")
    stack.start("worker")
    wait_for(lambda: stack.circuit() == "open", timeout=SETTLE, what="the circuit to open")
    # Every order tried once and parked: each has a line in its own sync log.
    wait_for(
        lambda: all(stack.redis.exists(keys.SYNC_LOG_ENTITY.format(entity="order", entity_id=o["id"])) for o in orders),
        timeout=SETTLE,
        what="every order to be tried and parked",
    )
    parked_requests = len(shop.requests)
    assert "batch" in [method for method, _ in shop.requests]
    assert parked_requests < len(orders) // 4, shop.requests  # not one sale.order.get per order
    assert not onec.documents

    shop.clear_records()
    onec.unlock()
    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert created_once(onec, numbers) == {}
    drained = [method for method, _ in shop.requests]
    assert "batch" in drained
    assert len(drained) < len(orders) // 4, drained
    assert stack.failed() == 0
    assert stack.redis.zcard(keys.ORDER_CLAIMS) == 0


def test_a_worker_killed_while_it_holds_a_batch_loses_nothing(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack(BRIDGE_MAINTENANCE_INTERVAL=str(MAINTENANCE))
    stack.start_web()
    orders = [shop.add_order() for _ in range(12)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]
    onec.latency = 4.0  # long enough to kill the worker while it holds the batch
    doomed = stack.start("worker")
    wait_for(
        lambda: onec.in_flight > 0 and stack.redis.zcard(keys.ORDER_CLAIMS) > 0,
        timeout=SETTLE,
        what="the worker to hold a batch and be in a call to 1C",
    )
    kill_hard(doomed)
    held = stack.redis.zcard(keys.ORDER_CLAIMS)
    assert held >= 5  # the batch took most of the due orders along

    # While the batch is orphaned, the shop changes two of its orders; their events collapse into the markers.
    changed = [orders[-1], orders[-2]]
    for order in changed:
        shop.update_order(order["id"], statusId="P")
        assert stack.fire(order["id"]) == [200]

    onec.latency = 0.0
    stack.start("worker")
    stack.start("clock")  # the orphan sweep, the net below the takeover
    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    wait_for(lambda: onec.in_flight == 0, timeout=SETTLE, what="the killed worker's call to end in 1C")
    wait_for(
        lambda: all(onec.documents[o["accountNumber"]]["Status"] == "In progress" for o in changed),
        timeout=SETTLE,
        what="the changed orders' latest state in 1C",
    )
    assert created_once(onec, numbers) == {}
    for order in orders:
        expected = "In progress" if order in changed else "New"
        assert onec.documents[order["accountNumber"]]["Status"] == expected
    # Only the order in flight when the worker died may have been sent twice (1C updates, by Number).
    unchanged_numbers = [o["accountNumber"] for o in orders if o not in changed]
    assert sum(onec.updates[n] for n in unchanged_numbers) <= 1
    assert stack.failed() == 0
    assert stack.redis.zcard(keys.ORDER_CLAIMS) == 0
    assert _pending(stack, [o["id"] for o in orders]) == 0


def test_a_pause_of_sale_order_get_met_inside_a_batch_is_waited_out(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    """The shop answers the batch's commands with OPERATION_TIME_LIMIT and the reset time: the bridge learns
    the pause from inside the batch and does not ask for orders again before the reset."""
    stack = make_stack(BRIDGE_MAINTENANCE_INTERVAL=str(MAINTENANCE))
    stack.start_web()
    orders = [shop.add_order() for _ in range(8)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]
    shop.pause_method("sale.order.get", 8)  # long enough for the workers to start and meet it
    reset_at = time.time() + 8
    shop.clear_records()
    stack.start("worker")
    stack.start("worker")
    asked = sample_while(
        lambda: time.time() >= reset_at - 0.5,
        lambda: len(shop.requests),
        timeout=SETTLE,
        what="the pause to near its end",
    )
    # Each worker may learn of the pause by one request of its own; after that nobody asks until the reset.
    assert 1 <= asked[-1] <= 2, shop.requests
    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert min(call["at"] for call in onec.calls) >= reset_at - 0.5
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0
