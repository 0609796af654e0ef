"""A price, stock record or variant for a product the same push or exchange file creates waits for it, never
dropped; one for a held product is held with it.

The kinds flush one after the other in slices, so a big first export's prices flush meets products the
products flush has not written yet, and a variant may come up before its product (or with it, held). Pushed to
``/1c/*``, flushed by a worker in this process against the shop emulator over real HTTP and a real
redis-server; the operator's ``bridge failed list`` and ``bridge failed retry`` run through the command line's
entry point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge import runtime
from bridge.errors import Cause
from bridge.updates import batches, flush, inbox, pending
from tests.peers.shop import ShopEmulator
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

UPDATES = {
    "prices": {"xml_id": "guid-1", "price_type_id": 1, "price": 990.0, "currency": "RUB"},
    "stock": {"xml_id": "guid-1", "store_id": 1, "amount": 7.0},
}


def make(redis_url: str, shop: ShopEmulator, tmp_path: Path, catalog: str = "") -> UpdatesEnv:
    shop.add_price_type(price_type_id=1, name="Розничная")
    shop.add_store(store_id=1, title="Main")
    return make_env(redis_url, shop, write_mappings(tmp_path / "mappings", catalog))


def written(shop: ShopEmulator, kind: str) -> float | None:
    product = shop.product_by_xml("guid-1")
    if product is None:
        return None
    if kind == "prices":
        price = shop.price_of(product["id"], 1)
        return None if price is None else float(price["price"])
    return shop.amount(product["id"], 1)


@pytest.mark.parametrize("kind", list(UPDATES))
@pytest.mark.parametrize("where", ["inbox", "pending"])
def test_an_update_for_a_product_not_written_yet_waits_and_is_applied_after_it(
    kind: str, where: str, redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    env = make(redis_url, shop, tmp_path)
    try:
        env.push("products", [{"xml_id": "guid-1", "name": "Drill"}])
        batch = env.push(kind, [UPDATES[kind]])["batch"]
        runtime.install(env.rt)
        if where == "pending":
            inbox.split(env.redis, "products")
        assert flush.flush(kind).startswith("retry")  # before the products flush: it waits
        shown = batches.read(env.redis, batch) or {}
        assert (shown["applied"], shown["dropped"]["count"]) == (0, 0)
        env.run_jobs()
        assert written(shop, kind) == UPDATES[kind].get("price", UPDATES[kind].get("amount"))
        shown = batches.read(env.redis, batch) or {}
        assert (shown["applied"], shown["dropped"]["count"]) == (1, 0)
    finally:
        close_env(env)


def test_an_update_for_a_held_product_is_held_with_it_and_both_go_on_retry(
    redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    env = make(redis_url, shop, tmp_path, '[products]\narticle_property = "ARTNO"\n')
    try:
        env.push("products", [{"xml_id": "guid-1", "name": "Drill", "article": "DR-1"}])
        env.run_jobs()  # the product is held: the shop lacks the article property
        batch = env.push("prices", [UPDATES["prices"]])["batch"]
        env.run_jobs()
        shown = batches.read(env.redis, batch) or {}
        assert (shown["held"]["count"], shown["dropped"]["count"]) == (1, 0)
        assert [r["class"] for r in shown["held"]["reasons"]] == ["product_held"]
        code, out = cli("failed", "list", "--json")
        assert code == 0
        whys = [letter["why"] for letter in json.loads(out)]
        assert any("product 'guid-1' is held itself" in why and "bridge failed retry" in why for why in whys), whys

        shop.add_string_property(1, "Артикул", "ARTNO")
        assert cli("failed", "retry", "--all")[0] == 0
        env.run_jobs()
        assert written(shop, "prices") == 990.0
        assert (batches.read(env.redis, batch) or {})["applied"] == 1
    finally:
        close_env(env)


def test_an_update_for_a_product_nowhere_is_still_dropped(redis_url: str, shop: ShopEmulator, tmp_path: Path) -> None:
    env = make(redis_url, shop, tmp_path)
    try:
        batch = env.push("prices", [UPDATES["prices"]])["batch"]
        env.run_jobs()
        shown = batches.read(env.redis, batch) or {}
        assert [r["class"] for r in shown["dropped"]["reasons"]] == ["unknown_product"]
    finally:
        close_env(env)


def test_an_update_still_waiting_when_the_retry_window_ends_is_kept_and_goes_on_retry(
    redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    # The shop fails to create products until the retry window is over (here at once): the products
    # flush and the price waiting for it both become dead letters, the price still pending, nothing dropped.
    shop.add_price_type(price_type_id=1, name="Розничная")
    shop.add_store(store_id=1, title="Main")
    env = make_env(redis_url, shop, write_mappings(tmp_path / "mappings", ""), retry_hours=1e-9)
    shop.fail_next("catalog.product.add", error="INTERNAL_SERVER_ERROR", status=500)
    try:
        env.push("products", [{"xml_id": "guid-1", "name": "Drill"}])
        batch = env.push("prices", [UPDATES["prices"]])["batch"]
        env.run_jobs()
        assert sorted(job.args[0] for job in env.failed()) == ["prices", "products"]
        assert env.pending("prices") == 1
        shown = batches.read(env.redis, batch) or {}
        assert (shown["applied"], shown["dropped"]["count"]) == (0, 0)
        assert written(shop, "prices") is None
        code, out = cli("failed", "list", "--json")
        assert code == 0
        whys = [letter["why"] for letter in json.loads(out)]
        assert any("product 'guid-1' is not written yet" in why for why in whys), whys

        env.rt.settings.retry_hours = 72.0  # a retried job waits again, as it would for real
        assert cli("failed", "retry", "--all")[0] == 0
        env.run_jobs()
        assert written(shop, "prices") == 990.0
        assert (batches.read(env.redis, batch) or {})["applied"] == 1
        assert env.failed() == []
    finally:
        close_env(env)


# --- variants (offers ``P#C``) and their product -------------------------------------------------------------

ARTICLE = '[products]\narticle_property = "ARTNO"\n'
PARENT = {"xml_id": "guid-1", "name": "Drill", "article": "DR-1"}
VARIANT = {"xml_id": "guid-1#blue", "name": "Drill, blue"}


def offer_of_parent(shop: ShopEmulator) -> bool:
    """The variant is in the shop, as an offer of its product."""
    parent, offer = shop.product_by_xml("guid-1"), shop.product_by_xml("guid-1#blue")
    return parent is not None and offer is not None and offer["parentId"]["value"] == str(parent["id"])


@pytest.mark.parametrize("together", [True, False], ids=["same round", "later push"])
def test_a_variant_of_a_held_product_is_held_with_it_and_both_go_on_retry(
    together: bool, redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    """Held in the round that holds its product, or after the product went to the held store."""
    env = make(redis_url, shop, tmp_path, ARTICLE)
    try:
        if together:
            batch = env.push("products", [PARENT, VARIANT])["batch"]
        else:
            env.push("products", [PARENT])
            env.run_jobs()  # the product is held: the shop lacks the article property
            batch = env.push("products", [VARIANT])["batch"]
        env.run_jobs()
        assert shop.product_by_xml("guid-1#blue") is None
        shown = batches.read(env.redis, batch) or {}
        assert (shown["dropped"]["count"], shown["waiting"]) == (0, 0)
        held = sorted(r["class"] for r in shown["held"]["reasons"])
        assert held == (["missing_property", "product_held"] if together else ["product_held"])
        code, out = cli("failed", "list", "--json")
        assert code == 0
        whys = [letter["why"] for letter in json.loads(out)]
        assert any("variant's product 'guid-1' is held itself" in w and "bridge failed retry" in w for w in whys), whys

        shop.add_string_property(1, "Артикул", "ARTNO")
        assert cli("failed", "retry", "--all")[0] == 0
        env.run_jobs()
        assert offer_of_parent(shop)
        assert (batches.read(env.redis, batch) or {})["applied"] == (2 if together else 1)
        assert json.loads(cli("failed", "list", "--json")[1]) == []
    finally:
        close_env(env)


@pytest.mark.parametrize("where", ["inbox", "pending"])
def test_a_variant_waits_for_its_product_still_on_its_way_and_is_written_after_it(
    where: str, redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    """The product is in a products body pushed while the flush ran (not split yet), or pending and waiting
    itself (for its section, still in the sections inbox)."""
    env = make(redis_url, shop, tmp_path)
    try:
        runtime.install(env.rt)
        if where == "inbox":
            batch = env.push("products", [VARIANT])["batch"]
            inbox.split(env.redis, "products")  # the flush has split the bodies; then the product's comes
            env.push("products", [{"xml_id": "guid-1", "name": "Drill"}])
            outcomes = flush.run_round(env.rt, "products", pending.scan(env.redis, "products"))
            assert [(e.field, error.cause) for e, error in outcomes.waiting] == [('["guid-1#blue"]', Cause.BUSY)]
            assert outcomes.dropped == []
        else:
            env.push("sections", [{"xml_id": "g-tools", "name": "Tools"}])
            batch = env.push(
                "products", [{"xml_id": "guid-1", "name": "Drill", "section_xml_ids": ["g-tools"]}, VARIANT]
            )["batch"]
            assert flush.flush("products").startswith("retry")  # before the sections flush: both wait
        assert shop.product_by_xml("guid-1#blue") is None
        shown = batches.read(env.redis, batch) or {}
        assert (shown["applied"], shown["dropped"]["count"], shown["held"]["count"]) == (0, 0, 0)
        env.run_jobs()
        assert offer_of_parent(shop)
        shown = batches.read(env.redis, batch) or {}
        assert (shown["dropped"]["count"], shown["held"]["count"]) == (0, 0)
        assert shown["applied"] == (1 if where == "inbox" else 2)
    finally:
        close_env(env)


def test_a_variant_whose_product_is_nowhere_is_still_dropped(
    redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    env = make(redis_url, shop, tmp_path)
    try:
        batch = env.push("products", [VARIANT])["batch"]
        env.run_jobs()
        assert shop.product_by_xml("guid-1#blue") is None
        shown = batches.read(env.redis, batch) or {}
        (reason,) = shown["dropped"]["reasons"]
        assert reason["class"] == "unknown_parent"
        assert (
            "'guid-1' is not in the shop's catalog (iblock 1), not waiting to be written and not held"
            in reason["example"]
        )
        assert (shown["held"]["count"], json.loads(cli("failed", "list", "--json")[1])) == (0, [])
    finally:
        close_env(env)
