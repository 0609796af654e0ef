"""Duplicate, late and out-of-order shop events: the end state in 1C is the newest one.

The shop's webhooks carry only the order id, fire several times per save, and may arrive late or after a
newer one. The bridge therefore never trusts an event's content: the job reads the order as it is now, and
sends it only if 1C does not already have exactly that.
"""

from __future__ import annotations

import time

import httpx
import pytest

from bridge.shop.phpquery import build
from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, Stack, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow


def post_stale(stack: Stack, shop: ShopEmulator, event: str, order_id: int, *, age: float = 3600) -> int:
    """An event as the shop sent it ``age`` seconds ago (its ``ts``), delivered only now."""
    payload = shop.event_payload(event, order_id)
    payload["ts"] = str(int(time.time() - age))
    answer = httpx.post(
        f"{stack.url}/shop/events",
        content=build(payload).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    return answer.status_code


def settle(stack: Stack) -> None:
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")


def test_late_duplicate_and_out_of_order_events_leave_the_newest_state(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator
) -> None:
    stack = make_stack()
    stack.start_web()
    stack.start("worker")
    stack.start("worker")

    # A: three copies of one save, then a newer save, then a copy of the first one arriving late.
    a = shop.add_order()
    assert stack.fire(a["id"], duplicates=3) == [200, 200, 200]
    wait_delivered(onec, [a["accountNumber"]])
    shop.update_order(a["id"], statusId="P")
    assert stack.fire(a["id"]) == [200]
    wait_for(lambda: onec.documents[a["accountNumber"]]["Status"] == "In progress", what="A's newer state")
    settle(stack)
    calls_before = len(onec.calls)
    assert post_stale(stack, shop, "ONSALEORDERSAVED", a["id"]) == 200
    settle(stack)
    assert len(onec.calls) == calls_before  # the late event changed nothing, and cost 1C nothing
    assert onec.documents[a["accountNumber"]]["Status"] == "In progress"
    assert (onec.creations[a["accountNumber"]], onec.updates[a["accountNumber"]]) == (1, 1)

    # B: delivered, deleted in the shop; then a save event from before the deletion arrives last.
    b = shop.add_order()
    assert stack.fire(b["id"]) == [200]
    wait_delivered(onec, [b["accountNumber"]])
    shop.delete_order(b["id"])
    assert stack.fire(b["id"], "ONSALEORDERDELETED") == [200]
    wait_for(lambda: onec.documents[b["accountNumber"]]["Cancelled"] is True, what="B's cancellation")
    assert post_stale(stack, shop, "ONSALEORDERSAVED", b["id"], age=5) == 200
    settle(stack)
    assert onec.documents[b["accountNumber"]]["Cancelled"] is True
    assert (onec.creations[b["accountNumber"]], onec.updates[b["accountNumber"]]) == (1, 1)

    # C: the order changes while its job is in the middle of the call to 1C: the job goes round again.
    c = shop.add_order()
    onec.latency = 1.5
    assert stack.fire(c["id"]) == [200]
    wait_for(lambda: onec.in_flight > 0, timeout=SETTLE, what="C's call to be in flight")
    shop.update_order(c["id"], statusId="D")
    assert stack.fire(c["id"]) == [200]
    onec.latency = 0.0
    settle(stack)
    assert onec.documents[c["accountNumber"]]["Status"] == "Ready for shipment"
    assert onec.creations[c["accountNumber"]] == 1

    # D: the deletion's event overtakes the save's: nothing ever reached 1C, so nothing is sent.
    d = shop.add_order()
    shop.delete_order(d["id"])
    assert stack.fire(d["id"], "ONSALEORDERDELETED") == [200]
    assert post_stale(stack, shop, "ONSALEORDERSAVED", d["id"], age=2) == 200
    settle(stack)
    assert d["accountNumber"] not in onec.documents
    assert stack.failed() == 0
