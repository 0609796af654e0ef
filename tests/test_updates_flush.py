"""1C → shop: stock by each strategy, prices, statuses, what is dropped and reported, and partial failures.

Pushes go through the real web app, flushes through an in-process RQ worker, writes over HTTP to the shop
emulator, state in a real redis-server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.queue import deadletters
from bridge.updates import flush as updates
from bridge.updates import holds, pending
from bridge.updates.flush import flush, sweep
from bridge.updates.kinds import KINDS
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

CATALOG = """
stock_strategy = "{strategy}"
[stores]
Main = 1
Far = 2
Ghost = 99
[price_types]
Retail = 1
Wholesale = 2
"""


@pytest.fixture
def catalog(shop: Any) -> dict[str, Any]:
    """Three products (by xml id, by article, by id), two stores, two price types."""
    products = {
        "chair": shop.add_product(product_id=101, xml_id="guid-chair", article="ART-CHAIR"),
        "desk": shop.add_product(product_id=102, xml_id="guid-desk", article="ART-DESK"),
        "lamp": shop.add_product(product_id=103, xml_id="guid-lamp", article="ART-LAMP"),
    }
    shop.add_store(store_id=1, title="Main")
    shop.add_store(store_id=2, title="Far")
    shop.add_price_type(price_type_id=1, name="Retail")
    shop.add_price_type(price_type_id=2, name="Wholesale")
    return products


def env_for(redis_url: str, shop: Any, tmp_path: Path, strategy: str = "storeproduct", **overrides: Any) -> UpdatesEnv:
    mappings = write_mappings(tmp_path / "mappings", CATALOG.format(strategy=strategy))
    return make_env(redis_url, shop, mappings, **overrides)


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path, catalog: dict[str, Any]) -> Iterator[UpdatesEnv]:
    current = env_for(redis_url, shop, tmp_path)
    yield current
    close_env(current)


def dropped(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        r.extra_fields  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "bridge.updates.flush" and getattr(r, "extra_fields", {}).get("event") == "update_dropped"
    ]


# --- stock: storeproduct ----------------------------------------------------------------------------------


def test_storeproduct_updates_existing_records_and_adds_missing_ones(env: UpdatesEnv, shop: Any) -> None:
    shop.set_amount(101, 1, 10)
    env.push(
        "stock",
        [
            {"xml_id": "guid-chair", "store": "Main", "amount": 4},
            {"sku": "ART-DESK", "store_id": 2, "amount": 2.5},
            {"product_id": 103, "store": "Far", "amount": 7},
        ],
    )
    env.run_jobs()
    assert (shop.amount(101, 1), shop.amount(102, 2), shop.amount(103, 2)) == (4, 2.5, 7)
    assert (shop.count("catalog.storeproduct.update"), shop.count("catalog.storeproduct.add")) == (1, 2)
    assert env.pending("stock") == 0
    assert all(method == "batch" for method, _ in shop.requests if method.startswith("catalog.storeproduct"))


def test_the_same_value_again_is_not_sent_and_record_ids_are_cached(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    env.run_jobs()
    shop.clear_records()
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    env.run_jobs()
    assert shop.requests == []  # equal to what was applied: nothing to do, not even a lookup
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 6}])
    env.run_jobs()
    assert shop.amount(101, 1) == 6
    methods = [name for name, _ in shop.commands]
    assert methods == ["catalog.storeproduct.update"]  # product and record id came from the cache


def test_an_older_item_than_the_one_applied_is_dropped(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 8, "ts": "2024-05-01T12:00:00+03:00"}])
    env.run_jobs()
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 1, "ts": "2024-05-01T11:59:00+03:00"}])
    assert env.pending("stock") == 0  # dropped when its body is split
    env.run_jobs()
    assert shop.amount(101, 1) == 8


def test_one_product_named_two_ways_is_written_once_with_the_newer_value(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 3, "ts": "2024-05-01T12:00:00Z"}])
    env.push("stock", [{"sku": "ART-CHAIR", "store_id": 1, "amount": 5, "ts": "2024-05-01T11:00:00Z"}])
    env.run_jobs()
    assert shop.amount(101, 1) == 3
    assert shop.count("catalog.storeproduct.add") + shop.count("catalog.storeproduct.update") == 1


# --- stock: document and quantity ---------------------------------------------------------------------------


def test_document_strategy_writes_the_differences_in_conducted_documents(
    redis_url: str, shop: Any, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    shop.set_amount(101, 1, 10)
    shop.set_amount(103, 2, 3)
    env = env_for(redis_url, shop, tmp_path, strategy="document")
    try:
        env.push(
            "stock",
            [
                {"xml_id": "guid-chair", "store": "Main", "amount": 4},  # 10 → 4: write off 6
                {"xml_id": "guid-desk", "store": "Main", "amount": 5},  # none → 5: receive 5
                {"xml_id": "guid-lamp", "store": "Far", "amount": 3},  # unchanged: no element
            ],
        )
        env.run_jobs()
    finally:
        close_env(env)
    assert (shop.amount(101, 1), shop.amount(102, 1), shop.amount(103, 2)) == (4, 5, 3)
    documents = {d["docType"]: d for d in shop.documents.values()}
    assert set(documents) == {"S", "D"}
    assert all(d["status"] == "Y" for d in documents.values())
    elements = {e["docId"]: e for e in shop.document_elements.values()}
    assert len(shop.document_elements) == 2
    receipt, write_off = elements[documents["S"]["id"]], elements[documents["D"]["id"]]
    assert (receipt["elementId"], receipt["storeTo"], receipt["amount"]) == (102, 1, 5)
    assert (write_off["elementId"], write_off["storeFrom"], write_off["amount"]) == (101, 1, 6)
    assert shop.count("catalog.storeproduct.update") == shop.count("catalog.storeproduct.add") == 0


def test_document_strategy_without_inventory_accounting_stops_with_the_reason(
    redis_url: str, shop: Any, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    shop.inventory_accounting = False
    env = env_for(redis_url, shop, tmp_path, strategy="document")
    try:
        env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
        env.run_jobs()
        (job,) = env.failed()
        assert "inventory accounting is off" in (job.latest_result().exc_string or "")
        assert env.pending("stock") == 1  # kept for the retry a person starts after fixing it
    finally:
        close_env(env)


def test_quantity_strategy_sets_the_sum_over_the_stores(
    redis_url: str, shop: Any, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    env = env_for(redis_url, shop, tmp_path, strategy="quantity")
    try:
        env.push(
            "stock",
            [
                {"xml_id": "guid-chair", "store": "Main", "amount": 4},
                {"xml_id": "guid-chair", "store": "Far", "amount": 6},
            ],
        )
        env.run_jobs()
        assert shop.products[101]["quantity"] == 10
        assert shop.count("catalog.product.update") == 1  # both stores of one product in one command
        env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 1}])
        env.run_jobs()
        assert shop.products[101]["quantity"] == 7
        assert shop.store_products == {}  # no per-store records are written
    finally:
        close_env(env)


# --- prices and statuses ------------------------------------------------------------------------------------


def test_prices_are_updated_one_type_at_a_time_and_the_other_type_survives(env: UpdatesEnv, shop: Any) -> None:
    shop.set_price(101, 1, 1000, "RUB")
    shop.set_price(101, 2, 800, "RUB")
    env.push(
        "prices",
        [
            {"xml_id": "guid-chair", "price_type": "Retail", "price": 1200, "currency": "RUB"},
            {"sku": "ART-DESK", "price_type_id": 2, "price": 99.9, "currency": "USD"},
        ],
    )
    env.run_jobs()
    assert (shop.price_of(101, 1)["price"], shop.price_of(101, 2)["price"]) == (1200, 800)
    assert (shop.price_of(102, 2)["price"], shop.price_of(102, 2)["currency"]) == (99.9, "USD")
    assert shop.count("catalog.price.modify") == 0
    assert (shop.count("catalog.price.update"), shop.count("catalog.price.add")) == (1, 1)


def test_statuses_are_mapped_and_orders_found_by_account_number_or_id(env: UpdatesEnv, shop: Any) -> None:
    by_number = shop.add_order(account_number="A-1001")
    by_id = shop.add_order(account_number="B-2002")
    already = shop.add_order(status="P")
    env.push(
        "order-status",
        [
            {"order": "A-1001", "status": "In progress"},
            {"order": by_id["id"], "status_id": "F"},
            {"order": str(already["id"]), "status": "in progress "},  # case and spaces forgiven
        ],
    )
    env.run_jobs()
    assert shop.orders[by_number["id"]]["statusId"] == "P"
    assert shop.orders[by_id["id"]]["statusId"] == "F"
    assert shop.count("sale.order.update") == 2  # the order already "P" is not written
    assert env.pending("order-status") == 0


# --- what cannot be applied is reported and does not block the rest ----------------------------------------


def test_unknown_names_are_reported_and_do_not_block_the_rest(
    env: UpdatesEnv, shop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    order, other = shop.add_order(), shop.add_order()
    caplog.set_level(logging.WARNING, logger="bridge.updates.flush")
    env.push(
        "stock",
        [
            {"xml_id": "guid-nobody", "store": "Main", "amount": 1},
            {"xml_id": "guid-chair", "store": "Attic", "amount": 1},
            {"xml_id": "guid-chair", "store": "Ghost", "amount": 1},
            {"xml_id": "guid-chair", "store": "Main", "amount": 9},
        ],
    )
    env.push(
        "prices",
        [
            {"xml_id": "guid-chair", "price_type": "VIP", "price": 1, "currency": "RUB"},
            {"sku": "ART-NONE", "price_type": "Retail", "price": 1, "currency": "RUB"},
            {"xml_id": "guid-chair", "price_type": "Retail", "price": 10, "currency": "RUB"},
        ],
    )
    env.push(
        "order-status",
        [
            {"order": "NO-SUCH-ORDER", "status_id": "P"},
            {"order": order["id"], "status": "Lost in space"},
            {"order": other["accountNumber"], "status_id": "ZZ"},
        ],
    )
    env.run_jobs()
    assert shop.amount(101, 1) == 9
    assert shop.price_of(101, 1)["price"] == 10
    reasons = {(d["kind"], d["reason"]) for d in dropped(caplog)}
    expected_words = [  # the item is wrong: dropped and reported
        ("stock", "no product with xmlId 'guid-nobody'"),
        ("prices", "no product with article 'ART-NONE'"),
        ("order-status", "no order with accountNumber or id 'NO-SUCH-ORDER'"),
        ("order-status", "Order status 'ZZ' does not exist"),
    ]
    for kind, words in expected_words:
        assert any(k == kind and words in reason for k, reason in reasons), (kind, words, reasons)
    assert len(reasons) == len(expected_words)
    # The bridge's own setup is wrong: held, one dead letter per reason, nothing pending blocks the rest.
    letters = sorted(deadletters.list_failed(env.redis), key=lambda d: d.why)
    held_words = [
        "1C price type 'VIP' is not mapped",
        "1C status 'Lost in space' is not mapped",
        "1C warehouse 'Attic' is not mapped",
        "1C warehouse 'Ghost' is mapped to store 99, which does not exist in the shop",
    ]
    assert len(letters) == len(held_words)
    for letter, words in zip(letters, held_words, strict=True):
        assert words in letter.why, (words, letter.why)
    assert env.pending("stock") == env.pending("prices") == env.pending("order-status") == 0
    assert holds.counts(env.redis, ["stock", "prices", "order-status"]) == {"stock": 2, "prices": 1, "order-status": 1}


def test_a_refused_command_fails_alone_and_the_rest_is_not_repeated(
    env: UpdatesEnv, shop: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for product_id in range(201, 261):  # 60 products: two batches of writes
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    caplog.set_level(logging.WARNING, logger="bridge.updates.flush")
    shop.fail_next("catalog.storeproduct.add", error=0, status=400, description="Invalid amount", times=1)
    env.push("stock", [{"product_id": p, "store": "Main", "amount": p % 7} for p in range(201, 261)])
    env.run_jobs()
    assert [d["reason"] for d in dropped(caplog)] == ["the shop refused catalog.storeproduct.add: Invalid amount"]
    assert sum(1 for p in range(201, 261) if shop.amount(p, 1) == p % 7) == 59
    assert shop.count("catalog.storeproduct.add") == 59  # the refused one did not run; none ran twice
    assert env.pending("stock") == 0


def test_a_transient_failure_of_one_command_retries_only_that_one(env: UpdatesEnv, shop: Any) -> None:
    for product_id in range(201, 231):
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    shop.fail_next("catalog.storeproduct.add", error="INTERNAL_SERVER_ERROR", status=500, times=1)
    env.push("stock", [{"product_id": p, "store": "Main", "amount": 1} for p in range(201, 231)])
    rounds = env.run_jobs()
    assert rounds >= 2  # the flush was rescheduled once
    assert all(shop.amount(p, 1) == 1 for p in range(201, 231))
    assert shop.count("catalog.storeproduct.add") == 30  # 29 in the first round, the failed one later
    assert env.pending("stock") == 0


def test_shop_down_leaves_everything_pending_and_the_flush_comes_back(env: UpdatesEnv, shop: Any) -> None:
    shop.fail_next("batch", error="INTERNAL_SERVER_ERROR", status=500, times=1)
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    assert flush("stock").startswith("retry")
    assert env.pending("stock") == 1
    env.run_jobs()
    assert shop.amount(101, 1) == 4
    assert env.pending("stock") == 0


def test_a_method_the_shop_lacks_goes_to_the_dead_letters_with_the_reason(env: UpdatesEnv, shop: Any) -> None:
    shop.storeproduct_writes = False
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    env.run_jobs()
    (job,) = env.failed()
    assert "catalog.storeproduct.add" in (job.latest_result().exc_string or "")
    assert env.pending("stock") == 1


# --- one flusher, nothing lost -------------------------------------------------------------------------------


def test_a_second_flusher_waits_for_the_first(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    lock = env.redis.lock("bridge:lock:flush:stock", timeout=30)
    assert lock.acquire(blocking=False)
    assert flush("stock") == "deferred"
    assert shop.requests == []
    lock.release()
    env.run_jobs()
    assert shop.amount(101, 1) == 4


def test_the_sweep_queues_a_flush_for_pending_updates_without_one(env: UpdatesEnv, shop: Any) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 4}])
    env.redis.delete(updates.marker_key("stock"))  # as if the web process died between its two writes
    env.redis.delete("rq:queue:bridge-shop")
    assert sweep(env.rt) == 1
    assert sweep(env.rt) == 0  # one is pending now
    env.run_jobs()
    assert shop.amount(101, 1) == 4


def test_a_big_backlog_is_worked_off_in_slices(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for product_id in range(201, 261):
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    monkeypatch.setattr(updates, "ROUND", 20)
    monkeypatch.setattr(updates, "MIN_BUDGET", 0.0)
    monkeypatch.setattr(updates, "BUDGET_SHARE", 0.0)  # out of time after every round
    caplog.set_level(logging.INFO, logger="bridge.updates.flush")
    env.push("stock", [{"product_id": p, "store": "Main", "amount": 2} for p in range(201, 261)])
    env.run_jobs()
    assert all(shop.amount(p, 1) == 2 for p in range(201, 261))
    assert pending.count(env.redis, "stock") == 0
    continued = [r for r in caplog.records if "continuing in a new job" in r.getMessage()]
    assert len(continued) >= 2  # 60 entries in rounds of 20: the work went on in new jobs


def test_a_value_pushed_during_a_flush_is_not_lost_and_wins(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 1}])
    calls: list[int] = []
    real = KINDS["stock"].apply

    def push_meanwhile(*args: Any) -> None:
        calls.append(len(calls))
        if len(calls) == 1:  # 1C pushes again while the first value is being written
            env.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 2}])
        real(*args)

    monkeypatch.setitem(KINDS, "stock", dataclasses.replace(KINDS["stock"], apply=push_meanwhile))
    flush("stock")
    assert shop.amount(101, 1) == 2
    assert len(calls) == 2  # the same job went round once more for the newer value
    assert env.pending("stock") == 0
    applied = env.redis.hget(pending.applied_key("stock"), '["xml","guid-chair","key","Main"]')
    assert applied is not None and applied.decode().endswith("|[2.0]")


def test_a_backlog_is_read_a_window_at_a_time_in_key_order_and_all_of_it_is_sent(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 600 entries in windows of 100 and rounds of 50: no slice holds the whole backlog, each job writes in key
    # order across its windows, and nothing is left behind.
    ids = list(range(1001, 1601))
    for product_id in ids:
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    monkeypatch.setattr(updates, "ROUND", 50)
    monkeypatch.setattr(updates, "WINDOW", 100)
    monkeypatch.setattr(updates, "MIN_BUDGET", 0.0)
    monkeypatch.setattr(updates, "BUDGET_SHARE", 0.05)  # a few rounds per job
    windows: list[int] = []
    real_scan = pending.scan_smallest

    def counted(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        pairs = real_scan(*args, **kwargs)
        windows.append(len(pairs))
        return pairs

    rounds: list[list[str]] = []
    real_apply = KINDS["stock"].apply

    def recorded(rt: Any, entries: Any, outcomes: Any) -> None:
        rounds.append([entry.field for entry in entries])
        real_apply(rt, entries, outcomes)

    monkeypatch.setattr(pending, "scan_smallest", counted)
    monkeypatch.setitem(KINDS, "stock", dataclasses.replace(KINDS["stock"], apply=recorded))
    env.push("stock", [{"product_id": p, "store": "Main", "amount": 3} for p in ids])
    env.run_jobs()
    assert [p for p in ids if shop.amount(p, 1) != 3] == []
    assert pending.count(env.redis, "stock") == 0
    assert max(windows) == 100 and len(windows) >= 6, windows
    fields = [field for one in rounds for field in one]
    assert fields == sorted(set(fields)) and len(fields) == 600  # in key order, each entry once


def test_a_value_pushed_for_an_earlier_window_during_a_flush_is_sent_by_the_same_flush(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush has gone past the first window when 1C pushes a new amount for a product in it: the windows
    # after it never see that key, so the flush must go round again rather than finish without it.
    ids = list(range(1001, 1301))
    for product_id in ids:
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    monkeypatch.setattr(updates, "ROUND", 50)
    monkeypatch.setattr(updates, "WINDOW", 100)
    rounds: list[list[int]] = []
    real_apply = KINDS["stock"].apply

    def push_in_the_third_round(rt: Any, entries: Any, outcomes: Any) -> None:
        rounds.append([int(entry.key[1]) for entry in entries])
        if len(rounds) == 3:  # the second window's first round
            env.push("stock", [{"product_id": rounds[0][0], "store": "Main", "amount": 9}])
        real_apply(rt, entries, outcomes)

    monkeypatch.setitem(KINDS, "stock", dataclasses.replace(KINDS["stock"], apply=push_in_the_third_round))
    env.push("stock", [{"product_id": p, "store": "Main", "amount": 3} for p in ids])
    env.run_jobs()
    assert len(rounds) > 6  # 300 entries in rounds of 50, and one more round for the new amount
    assert shop.amount(rounds[0][0], 1) == 9
    assert pending.count(env.redis, "stock") == 0
