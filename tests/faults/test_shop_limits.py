"""The shop's limits bite while orders are synced: 503 QUERY_LIMIT_EXCEEDED bursts, 429 OPERATION_TIME_LIMIT
with ``operating_reset_at``, and OVERLOAD_LIMIT.

The guarantee: no order is lost; the bridge backs off instead of knocking, a paused method is not called
again before the reset the shop named, and work resumes by itself once it has passed.

These tests fetch each order on its own (``BRIDGE_ORDER_BATCH=1``), so that every fault meets a request of
its own; the same faults met inside a ``batch`` are in ``tests/faults/test_order_batch_faults.py`` and
``tests/test_order_batch.py``.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow


def first_delivery(onec: OnecEmulator) -> float:
    return min(call["at"] for call in onec.calls if call["outcome"] in ("created", "updated"))


def test_query_limit_bursts_are_waited_out(make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator) -> None:
    # The bridge is told the shop allows far more than it does, so the shop's own bucket overflows.
    stack = make_stack(BRIDGE_SHOP_RATE="50", BRIDGE_SHOP_BURST="50", BRIDGE_ORDER_BATCH="1")
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    shop.set_rate_limit(2, burst=3)
    shop.fail_next("sale.order.get", error="QUERY_LIMIT_EXCEEDED", status=503, description="Too many", times=3)
    orders = [shop.add_order() for _ in range(10)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]

    wait_delivered(onec, numbers)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert shop.status_counts[503] >= 4  # the limit was really hit, more than the injected three times
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0


def test_operation_time_limit_pauses_the_method_until_the_shops_reset(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack(BRIDGE_ORDER_BATCH="1")
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    stack.wait_workers(2)  # the pause must still be on when they take the first jobs
    shop.pause_method("sale.order.get", 4)
    reset_at = time.time() + 4
    orders = [shop.add_order() for _ in range(4)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]

    wait_delivered(onec, numbers)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    # Each worker may learn of the pause by one 429 of its own; after that nobody knocks until the reset.
    assert 1 <= shop.status_counts[429] <= 2, shop.status_counts
    assert first_delivery(onec) >= reset_at - 0.5  # the shop's clock and ours are the same here
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0


def test_overload_limit_pauses_every_call_then_resumes(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack(BRIDGE_SHOP_OVERLOAD_PAUSE="6")
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    shop.set_overload(True)
    orders = [shop.add_order() for _ in range(4)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]
    wait_for(lambda: stack.readyz()["shop"]["paused_until"], timeout=SETTLE, what="/readyz to show the shop paused")
    time.sleep(2)  # a window well inside the pause, in which a bridge that ignored it would knock again
    # Each worker may have had one call refused before the pause was recorded; then nobody knocked.
    assert 1 <= shop.status_counts[503] <= 2, shop.status_counts
    assert not onec.documents

    shop.set_overload(False)  # Bitrix support lifts the block; the bridge learns of it when the pause ends
    wait_delivered(onec, numbers)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert created_once(onec, numbers) == {}
    assert stack.readyz()["shop"]["paused_until"] is None
    assert stack.failed() == 0
