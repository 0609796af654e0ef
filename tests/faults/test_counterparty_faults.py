"""Counterparties through real worker processes: a new buyer's orders racing, and 1C locked during the lookup.

The guarantees: two workers taking orders of one new buyer at the same moment create it in 1C once, and both
orders carry its ref; a maintenance lock that begins as the lookup is made opens the circuit, and every
order arrives with its buyer's ref once the lock lifts, each buyer created once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, created_once, sample_while, wait_delivered
from tests.peers.onec import OnecEmulator
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for
from tests.test_counterparty import counterparty_mappings

pytestmark = pytest.mark.slow


def refs(onec: OnecEmulator, numbers: list[str]) -> list[str | None]:
    return [onec.documents[number]["Counterparty"].get("Id") for number in numbers]


def test_two_workers_with_orders_of_one_new_buyer_create_it_once(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator, tmp_path: Path
) -> None:
    mappings = counterparty_mappings(tmp_path / "mappings", "find_or_create")
    stack = make_stack(BRIDGE_MAPPINGS_DIR=str(mappings))
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    onec.slow_lookups(0.5)  # the first lookup is still running when the second order starts its own
    orders = [shop.add_order(properties={"INN": "7712345678", "COMPANY": "ООО Ромашка"}) for _ in range(4)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]

    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert onec.counterparty_creations() == 1, onec.counterparty_outcomes()
    assert [o for o in onec.counterparty_outcomes() if o.startswith("POST")] == ["POST created"]
    (ref,) = onec.counterparties
    assert refs(onec, numbers) == [ref] * len(numbers)
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0


def test_1c_locked_during_the_lookup_opens_the_circuit_and_the_orders_go_when_it_is_back(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator, tmp_path: Path
) -> None:
    mappings = counterparty_mappings(tmp_path / "mappings", "find_or_create")
    stack = make_stack(BRIDGE_MAPPINGS_DIR=str(mappings))
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    onec.lock("Ведутся технические работы: резервное копирование")
    # (TIN, e-mail): two orders of one company, another company, a private buyer known by e-mail only.
    buyers = [("7712345678", "a@romashka.ru"), ("7712345678", "b@romashka.ru"), ("7723456789", ""), ("", "p@mail.ru")]
    orders = [
        shop.add_order(properties={"INN": tin, "EMAIL": email, "COMPANY": f"Buyer {tin or email}"})
        for tin, email in buyers
    ]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]

    wait_for(lambda: stack.circuit() == "open", timeout=SETTLE, what="the circuit to open")
    locked_before = onec.counterparty_outcomes().count("GET locked")
    assert locked_before >= 1
    circuits = sample_while(
        lambda: onec.counterparty_outcomes().count("GET locked") >= locked_before + 2,
        stack.circuit,
        timeout=SETTLE,
        what="further probes refused by the lock",
    )
    assert set(circuits) == {"open"}
    assert onec.calls == []  # no order was sent without its buyer's ref
    assert onec.counterparties == {}

    onec.unlock()
    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert stack.circuit() == "closed"
    assert len(onec.counterparties) == 3  # two TINs and one e-mail, each created once
    assert onec.counterparty_creations() == 3
    by_tin = refs(onec, numbers)
    assert by_tin[0] == by_tin[1] and len(set(by_tin)) == 3 and None not in by_tin
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0


def test_lookups_that_time_out_inside_a_batch_wait_and_each_buyer_is_created_once(
    make_stack: MakeStack, shop: ShopEmulator, onec: OnecEmulator, tmp_path: Path
) -> None:
    """Orders of two new buyers, all due at once (fetched in one batch), while 1C's counterparty lookups
    take longer than BRIDGE_ONEC_TIMEOUT: a timeout is "1C unavailable", so the circuit opens, no order goes
    without its ref, and once lookups are fast again each buyer is created once and every order carries it."""
    mappings = counterparty_mappings(tmp_path / "mappings", "find_or_create")
    stack = make_stack(BRIDGE_MAPPINGS_DIR=str(mappings), BRIDGE_ONEC_TIMEOUT="1")
    stack.start_web()
    onec.slow_lookups(3.0)
    tins = ["7712345678", "7723456789"]
    orders = [shop.add_order(properties={"INN": tins[i % 2], "COMPANY": f"Buyer {i % 2}"}) for i in range(8)]
    numbers = [order["accountNumber"] for order in orders]
    for order in orders:
        assert stack.fire(order["id"]) == [200]
    shop.clear_records()
    stack.start("worker")
    stack.start("worker")
    wait_for(lambda: stack.circuit() == "open", timeout=SETTLE, what="the circuit to open on the timeout")
    assert "batch" in [method for method, _ in shop.requests]
    assert onec.calls == []

    onec.slow_lookups(0)
    wait_delivered(onec, numbers, stack=stack)
    wait_for(stack.idle, timeout=SETTLE, what="the queues to drain")
    assert onec.counterparty_creations() == 2, onec.counterparty_outcomes()
    found = refs(onec, numbers)
    assert None not in found and len(set(found)) == 2
    assert found[0::2] == [found[0]] * 4 and found[1::2] == [found[1]] * 4
    assert created_once(onec, numbers) == {}
    assert stack.failed() == 0
