"""1C goes away (maintenance lock) or fights over data locks, while orders keep coming.

The guarantee: every order arrives once the lock lifts, each created exactly once in 1C; while 1C is
locked, the circuit is open for all to see in ``/readyz`` and 1C is not hammered; a lock conflict is only
"busy" and is retried within seconds, without opening the circuit.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, sample_while, wait_delivered
from tests.peers.onec import LOCK_PREFIX, OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow

ORDERS = 20


def test_orders_wait_out_a_long_maintenance_lock_and_arrive_once(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack()
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    onec.lock("Ведутся технические работы: обновление конфигурации")
    orders = [shop.add_order() for _ in range(ORDERS)]
    numbers = [order["accountNumber"] for order in orders]

    # The first half arrives as the lock begins ...
    for order in orders[: ORDERS // 2]:
        assert stack.fire(order["id"]) == [200]
    ready = wait_for(
        lambda: (r := stack.readyz())["onec"]["circuit"] == "open" and r, timeout=SETTLE, what="the circuit to open"
    )
    assert LOCK_PREFIX.rstrip(".") in ready["onec"]["reason"]
    assert ready["onec"]["since"]
    # ... the rest (some twice, as the shop does) while it holds.
    for order in orders[ORDERS // 2 :]:
        assert stack.fire(order["id"], duplicates=2) == [200, 200]

    # A long stretch: 1C keeps refusing the probes, which come further and further apart.
    locked_before = onec.outcomes().count("locked")
    circuits = sample_while(
        lambda: onec.outcomes().count("locked") >= locked_before + 4,
        stack.circuit,
        timeout=SETTLE,
        what="several probes refused by the lock",
    )
    assert set(circuits) == {"open"}
    assert not onec.documents
    # The circuit keeps the waiting orders from knocking one by one: far fewer calls than orders.
    assert onec.outcomes().count("locked") < ORDERS, onec.outcomes()

    onec.unlock()
    wait_delivered(onec, numbers)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert created_once(onec, numbers) == {}
    assert sum(onec.updates.values()) == 0  # nothing was sent twice
    assert stack.circuit() == "closed"
    assert stack.failed() == 0


def test_lock_conflicts_on_every_second_call_are_retried_soon(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    # Long back-off for "unavailable": were a lock conflict mistaken for an outage, the orders would wait it
    # out and miss the deadline below, and the circuit would show open.
    stack = make_stack(BRIDGE_RETRY_MIN_DELAY="120", BRIDGE_RETRY_MAX_DELAY="600")
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    onec.busy_every = 2
    orders = [shop.add_order() for _ in range(8)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]

    circuits = sample_while(
        lambda: set(numbers) <= set(onec.documents),
        stack.circuit,
        timeout=60,
        what="every order to get through the lock conflicts",
    )
    assert set(circuits) == {"closed"}
    assert onec.outcomes().count("busy") >= len(numbers) // 2  # the fault really happened
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert created_once(onec, numbers) == {}
    assert onec.max_in_flight <= 2  # BRIDGE_ONEC_CONCURRENCY's default
    assert stack.failed() == 0
