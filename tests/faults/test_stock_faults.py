"""1C pushes stock while the shop is down, slow, rate-limited or pausing a method, or Redis restarts.

The guarantees: ``/1c/stock`` answers 202 at once whatever the shop does; the updates wait in Redis and
land later, one write per key with the latest value (an item older than what is known is dropped, a
repeat of what the shop has is not sent again); a paused method is not called again before its reset.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.mappings import DEFAULTS_DIR
from tests.faults.conftest import MakeStack
from tests.faults.harness import SETTLE, Stack
from tests.faults.test_redis_restart import aof_redis, written_to_aof  # noqa: F401 - a fixture, used below
from tests.faults.test_shop_outage import Switchable
from tests.peers.redis_server import RedisServer
from tests.peers.shop import ShopEmulator
from tests.processes import wait_for

pytestmark = pytest.mark.slow

CATALOG = """
stock_strategy = "storeproduct"
[stores]
Main = 1
[price_types]
Retail = 1
[products]
lookup = ["xml_id", "article"]
iblock_id = 1
article_property = "CML2_ARTICLE"
"""
PRODUCTS = range(101, 107)


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    """The shipped mappings with 1C's warehouse "Main" mapped to the shop's store 1."""
    directory = tmp_path / "mappings"
    directory.mkdir()
    for name in ("statuses.toml", "order.toml"):
        shutil.copy(DEFAULTS_DIR / name, directory / name)
    (directory / "catalog.toml").write_text(CATALOG, encoding="utf-8")
    return directory


def stock_shop(shop: ShopEmulator) -> ShopEmulator:
    """Six products known by xml id, one store; half of them already have a stock record."""
    shop.add_store(store_id=1, title="Main")
    for product_id in PRODUCTS:
        shop.add_product(product_id=product_id, xml_id=f"guid-{product_id}", article=f"ART-{product_id}")
        if product_id % 2:
            shop.set_amount(product_id, 1, 1)
    return shop


@pytest.fixture
def switchable_stock_shop() -> Iterator[Switchable]:
    switch = Switchable(ShopEmulator())
    stock_shop(switch.emulator)
    try:
        yield switch
    finally:
        switch.close()


def stamp(seconds: float = 0) -> str:
    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def push(stack: Stack, items: list[dict[str, Any]]) -> dict[str, Any]:
    answer = httpx.post(
        f"{stack.url}/1c/stock",
        json={"items": items},
        headers={"Authorization": f"Bearer {stack.env['BRIDGE_INBOUND_TOKEN']}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def item(product_id: int, amount: float, at: float) -> dict[str, Any]:
    return {"xml_id": f"guid-{product_id}", "store": "Main", "amount": amount, "ts": stamp(at)}


def writes(shop: ShopEmulator) -> dict[int, list[float]]:
    """Every amount the shop was told, per product, in order (updates and adds alike)."""
    found: dict[int, list[float]] = {}
    with shop.lock:
        commands = list(shop.commands)
    for method, params in commands:
        fields = params.get("fields") or {}
        if method == "catalog.storeproduct.add":
            found.setdefault(int(fields["productId"]), []).append(float(fields["amount"]))
        elif method == "catalog.storeproduct.update":
            record = shop.store_products.get(int(params["id"]))
            if record is not None:
                found.setdefault(int(record["productId"]), []).append(float(fields["amount"]))
    return found


def landed(shop: ShopEmulator, expected: dict[int, float]) -> bool:
    return all(shop.amount(product_id, 1) == amount for product_id, amount in expected.items())


def test_stock_pushed_while_the_shop_is_down_lands_later_with_the_latest_values(
    make_stack: MakeStack, switchable_stock_shop: Switchable, mappings: Path
) -> None:
    switch = switchable_stock_shop
    shop = switch.emulator
    stack = make_stack(BRIDGE_SHOP_URL=shop.url, BRIDGE_SHOP_TIMEOUT="1", BRIDGE_MAPPINGS_DIR=str(mappings))
    stack.start_web()
    stack.start("worker")

    switch.down()
    push(stack, [item(p, 10, 10) for p in PRODUCTS])
    wait_for(lambda: "ConnectError" in stack.output(), timeout=SETTLE, what="the flush to find the shop down")
    push(stack, [item(101, 20, 20), item(102, 21, 20)])  # newer values while it is down
    assert push(stack, [item(101, 5, 5)])["accepted"] == 1  # older than what is pending: dropped, still 202

    shop.latency = 2.5  # back, but slower than BRIDGE_SHOP_TIMEOUT
    switch.up()
    wait_for(lambda: "no answer within" in stack.output(), timeout=SETTLE, what="a call to time out")
    shop.fail_next("batch", error="BAD_GATEWAY", status=502, times=2)
    push(stack, [item(103, 30, 30)])
    shop.latency = 0.0

    expected = {p: 10.0 for p in PRODUCTS} | {101: 20.0, 102: 21.0, 103: 30.0}
    wait_for(lambda: landed(shop, expected), timeout=SETTLE, what="every latest value in the shop")
    wait_for(stack.idle, timeout=SETTLE, what="the flushes to finish")
    assert stack.redis.hlen("bridge:pending:stock") == 0
    # One write per product, with its latest value: nothing older was written first.
    assert writes(shop) == {p: [v] for p, v in expected.items()}
    assert shop.status_counts[502] == 2
    assert stack.failed() == 0

    # 1C repeats itself: the same values again are not written; an older ts is dropped.
    calls = len(shop.requests)
    push(stack, [item(p, expected[p], 40) for p in PRODUCTS])
    push(stack, [item(104, 99, 1)])
    wait_for(stack.idle, timeout=SETTLE, what="the repeat to be handled")
    assert landed(shop, expected)
    assert writes(shop) == {p: [v] for p, v in expected.items()}
    assert len(shop.requests) == calls  # the shop was not even asked


def test_stock_waits_out_query_limits_and_a_paused_method(
    make_stack: MakeStack, shop: ShopEmulator, mappings: Path
) -> None:
    stock_shop(shop)
    stack = make_stack(BRIDGE_SHOP_RATE="50", BRIDGE_SHOP_BURST="50", BRIDGE_MAPPINGS_DIR=str(mappings))
    stack.start_web()
    stack.start("worker")
    stack.start("worker")
    stack.wait_workers(2)  # the pause must still be on when they take the first flush
    shop.set_rate_limit(2, burst=2)
    shop.pause_method("catalog.storeproduct.update", 4)
    reset_at = time.time() + 4
    for n in range(3):  # three pushes, the later ones while the first flush is held up
        push(stack, [item(p, 10 * n + p % 10, n) for p in PRODUCTS])

    wait_for(lambda: time.time() > reset_at, timeout=SETTLE, what="the reset")
    with shop.lock:
        tried_while_paused = sum(
            1
            for method, params in shop.requests
            if method == "batch" and "catalog.storeproduct.update" in str(params.get("cmd"))
        )
    assert tried_while_paused <= 2  # each worker may learn of the pause once; then it waits for the reset

    expected = {p: float(20 + p % 10) for p in PRODUCTS}
    wait_for(lambda: landed(shop, expected), timeout=SETTLE, what="the latest values after the reset")
    wait_for(stack.idle, timeout=SETTLE, what="the flushes to finish")
    assert shop.status_counts[503] >= 1  # the shop's own limit was really hit
    assert all(values[-1] == expected[p] for p, values in writes(shop).items())
    assert stack.failed() == 0


def test_stock_pending_when_redis_restarts_is_still_delivered(
    make_stack: MakeStack,
    aof_redis: RedisServer,  # noqa: F811 - the fixture imported above
    switchable_stock_shop: Switchable,
    mappings: Path,
) -> None:
    switch = switchable_stock_shop
    shop = switch.emulator
    stack = make_stack(aof_redis.url, BRIDGE_SHOP_URL=shop.url, BRIDGE_MAPPINGS_DIR=str(mappings))
    try:
        stack.start_web()
        stack.start("worker")
        stack.start("clock")
        switch.down()
        push(stack, [item(p, 7, 1) for p in PRODUCTS])
        wait_for(lambda: "ConnectError" in stack.output(), timeout=SETTLE, what="the flush to find the shop down")
        wait_for(lambda: written_to_aof(aof_redis), timeout=SETTLE, what="the AOF to be written")
        aof_redis.kill()
        aof_redis.start()
        wait_for(lambda: httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200, what="/readyz again")
        switch.up()
        wait_for(lambda: landed(shop, dict.fromkeys(PRODUCTS, 7.0)), timeout=SETTLE, what="the stock after the restart")
        wait_for(stack.idle, timeout=SETTLE, what="the flushes to finish")
        assert stack.failed() == 0
    finally:
        stack.close()


def test_a_push_not_yet_split_when_redis_restarts_is_still_delivered(
    make_stack: MakeStack,
    aof_redis: RedisServer,  # noqa: F811 - the fixture imported above
    switchable_stock_shop: Switchable,
    mappings: Path,
) -> None:
    # No worker yet: the body is only stored (its own key, kept on the inbox), as the intake left it.
    shop = switchable_stock_shop.emulator
    stack = make_stack(aof_redis.url, BRIDGE_SHOP_URL=shop.url, BRIDGE_MAPPINGS_DIR=str(mappings))
    try:
        stack.start_web()
        push(stack, [item(p, 9, 1) for p in PRODUCTS])
        wait_for(lambda: written_to_aof(aof_redis), timeout=SETTLE, what="the AOF to be written")
        aof_redis.kill()
        aof_redis.start()
        with aof_redis.client() as client:
            (body_key,) = client.lrange("bridge:inbox:stock", 1, 1)
            assert client.ttl(body_key) == -1  # kept: replayed from the AOF without its staging expiry
        stack.start("worker")
        stack.start("clock")
        wait_for(lambda: landed(shop, dict.fromkeys(PRODUCTS, 9.0)), timeout=SETTLE, what="the stock after the restart")
        wait_for(stack.idle, timeout=SETTLE, what="the flushes to finish")
        assert stack.failed() == 0
    finally:
        stack.close()
