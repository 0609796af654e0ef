"""The shop is down, answers 502, or is too slow, while the bridge needs it.

The guarantee: the work waits and lands later, with the latest state. On the order path the bridge reads
the order from the shop, so an outage there delays orders on their way to 1C; the webhook intake itself
never calls the shop and keeps accepting events throughout.

These tests fetch each order on its own (``BRIDGE_ORDER_BATCH=1``), so that every fault meets a request of
its own; the same faults met inside a ``batch`` are in ``tests/faults/test_order_batch_faults.py`` and
``tests/test_order_batch.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.server import LiveServer
from tests.peers.shop import ShopEmulator, create_shop_app
from tests.processes import wait_for

pytestmark = pytest.mark.slow


class Switchable:
    """The shop emulator on a fixed port that the test can take down and bring back (connection refused)."""

    def __init__(self, emulator: ShopEmulator) -> None:
        self.emulator = emulator
        self.server: LiveServer | None = LiveServer(create_shop_app(emulator))
        self.port = self.server.port
        emulator.url = f"{self.server.url}/rest/{emulator.user_id}/{emulator.webhook_code}/"

    def down(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def up(self) -> None:
        if self.server is None:
            self.server = LiveServer(create_shop_app(self.emulator), port=self.port)

    def close(self) -> None:
        self.down()


@pytest.fixture
def switchable_shop() -> Iterator[Switchable]:
    """A shop whose server the test controls (the ``shop`` fixture's server lives as long as the test)."""
    switch = Switchable(ShopEmulator())
    try:
        yield switch
    finally:
        switch.close()


def test_orders_wait_for_a_shop_that_is_down_then_slow_then_502(
    make_stack: MakeStack, switchable_shop: Switchable, onec: OnecEmulator
) -> None:
    switch = switchable_shop
    shop = switch.emulator
    stack = make_stack(BRIDGE_SHOP_URL=shop.url, BRIDGE_SHOP_TIMEOUT="1", BRIDGE_ORDER_BATCH="1")
    stack.shop = shop
    stack.start_web()
    stack.start("worker")
    orders = [shop.add_order() for _ in range(4)]
    numbers = [order["accountNumber"] for order in orders]

    switch.down()
    for order in orders:
        assert stack.fire(order["id"]) == [200]  # accepted: the intake does not need the shop
    wait_for(lambda: "ConnectError" in stack.output(), timeout=SETTLE, what="the worker to find the shop down")
    # While it is down, the orders change: what reaches 1C must be the latest state.
    shop.update_order(orders[0]["id"], statusId="P")
    assert stack.fire(orders[0]["id"]) == [200]

    shop.latency = 2.5  # back, but slower than BRIDGE_SHOP_TIMEOUT
    switch.up()
    wait_for(lambda: "no answer within" in stack.output(), timeout=SETTLE, what="a call to the slow shop to time out")
    shop.fail_next("sale.order.get", error="BAD_GATEWAY", status=502, times=3)
    shop.latency = 0.0
    shop.update_order(orders[1]["id"], statusId="D")
    assert stack.fire(orders[1]["id"]) == [200]

    wait_delivered(onec, numbers)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert onec.documents[numbers[0]]["Status"] == "In progress"
    assert onec.documents[numbers[1]]["Status"] == "Ready for shipment"
    assert created_once(onec, numbers) == {}
    assert sum(onec.updates.values()) == 0  # each order went to 1C once, already in its latest state
    assert shop.status_counts[502] == 3
    assert stack.failed() == 0
