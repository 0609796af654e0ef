"""A large stock upload against the rate-limited shop: the right values, in close to the fewest requests.

10,000 items over 2,000 products × 5 stores, keys repeated across four pushes (as 1C's periodic full
uploads do). The shop emulator enforces a leaky bucket; the bridge's own bucket is set to the same rate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

PRODUCTS = 2_000
STORES = 5
ITEMS = 10_000
PUSHES = 4
RATE = 50


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    for n in range(PRODUCTS):
        shop.add_product(product_id=10_000 + n, xml_id=f"g-{n:04d}")
    for store_id in range(1, STORES + 1):
        shop.add_store(store_id=store_id, title=f"S{store_id}")
    stores = "\n".join(f"S{s} = {s}" for s in range(1, STORES + 1))
    mappings = write_mappings(tmp_path / "mappings", f'stock_strategy = "storeproduct"\n[stores]\n{stores}\n')
    current = make_env(redis_url, shop, mappings, shop_rate=RATE, shop_burst=50)
    yield current
    close_env(current)


def is_write(request: tuple[str, dict[str, Any]]) -> bool:
    method, params = request
    commands = params.get("cmd") or {}
    values = commands.values() if isinstance(commands, dict) else commands
    return method == "batch" and any(
        str(c).startswith(("catalog.storeproduct.add", "catalog.storeproduct.update")) for c in values
    )


@pytest.mark.slow  # about 15-30 s: ten thousand items through the real flush
def test_ten_thousand_stock_items_end_as_the_last_value_per_key_in_few_requests(env: UpdatesEnv, shop: Any) -> None:
    rng = random.Random(20241122)
    for n in range(0, PRODUCTS, 10):  # some records exist already, a few with the value 1C will send
        shop.set_amount(10_000 + n, 1 + n % STORES, 3)
    expected: dict[tuple[int, int], int] = {}
    per_push = ITEMS // PUSHES
    for _ in range(PUSHES):
        items = []
        for _ in range(per_push):
            product, store, amount = rng.randrange(PRODUCTS), rng.randrange(1, STORES + 1), rng.randrange(0, 50)
            items.append({"xml_id": f"g-{product:04d}", "store": f"S{store}", "amount": amount})
            expected[(10_000 + product, store)] = amount
        assert env.push("stock", items)["accepted"] == per_push
    keys = len(expected)
    assert env.pending("stock") == keys  # coalesced: one pending value per key

    shop.clear_records()
    shop.set_rate_limit(RATE, burst=50)
    shop.fail_next("batch", error="QUERY_LIMIT_EXCEEDED", status=503, times=3)  # retried, never lost
    env.run_jobs()

    wrong = {pair: (shop.amount(*pair), amount) for pair, amount in expected.items() if shop.amount(*pair) != amount}
    assert not wrong, list(wrong.items())[:5]
    assert env.pending("stock") == 0

    writes = shop.count("catalog.storeproduct.add") + shop.count("catalog.storeproduct.update")
    assert writes <= keys  # never more than one write per key, whatever 1C repeated
    refused = shop.status_counts[503]
    answered = len(shop.requests) - refused
    rounds = math.ceil(keys / 1000)  # the flush works in rounds of 1,000 pending keys
    write_requests = sum(1 for request in shop.requests if is_write(request))
    lookup_requests = len(shop.requests) - write_requests
    # Each round's writes fill batches of 50 except its last; lookups: one batch for the products and one
    # for the stock records per round, and the store list once. A refused (503) request is sent again.
    write_bound, lookup_bound = math.ceil(writes / 50) + rounds, 2 * rounds + 1
    assert answered <= write_bound + lookup_bound, (write_requests, lookup_requests, refused)
    assert write_requests <= write_bound + refused, (write_requests, writes, refused)
    assert lookup_requests <= lookup_bound + refused, (lookup_requests, refused)
    assert 3 <= refused <= 3 + answered // 20, shop.status_counts  # the injected ones, and rare besides
