"""A product that names what the shop lacks: held when writing it would lose a value, counted when it only goes
without a part the shop's admins may not want.

Pushed to ``/1c/products`` and ``/1c/sections``, flushed by a worker in this process against the shop emulator
over real HTTP and a real redis-server; the operator's ``bridge failed list`` and ``bridge failed retry`` run
through the command line's entry point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge import runtime
from bridge.ops import synclog
from bridge.updates import batches, flush, inbox
from tests.peers.shop import ShopEmulator
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings


def make(redis_url: str, shop: ShopEmulator, tmp_path: Path, catalog: str) -> UpdatesEnv:
    return make_env(redis_url, shop, write_mappings(tmp_path / "mappings", catalog))


def failed_list(cli: Any) -> list[dict[str, Any]]:
    code, out = cli("failed", "list", "--json")
    assert code == 0
    return list(json.loads(out))


CASES = {
    # mappings, what the product fills, the property named, the setting that names it, the values written
    "article": ('[products]\narticle_property = "ARTNO"\n', {"article": "DR-1"}, "ARTNO", "article_property", ["DR-1"]),
    "barcode": (
        '[products]\nbarcode_property = "EAN13"\n',
        {"barcodes": ["4600000000017"]},
        "EAN13",
        "barcode_property",
        ["4600000000017"],
    ),
    "mapped property": (
        '[products]\nproperties = ["brand-guid"]\n',
        {"properties": {"brand-guid": "Acme"}},
        "brand-guid",
        "properties",
        ["Acme"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_product_whose_property_the_shop_lacks_is_held_and_written_once_the_property_exists(
    case: str, redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    catalog, extra, name, setting, expected = CASES[case]
    env = make(redis_url, shop, tmp_path, catalog)
    try:
        batch = env.push("products", [{"xml_id": "guid-1", "name": "Drill", **extra}])["batch"]
        env.run_jobs()
        assert shop.product_by_xml("guid-1") is None  # not written without its value
        shown = batches.read(env.redis, batch) or {}
        assert (shown["held"]["count"], shown["applied"], shown["waiting"]) == (1, 0, 0)
        assert [r["class"] for r in shown["held"]["reasons"]] == ["missing_property"]

        letters = failed_list(cli)
        assert len(letters) == 1
        why = letters[0]["why"]
        for words in (f"iblock 1 has no property with xmlId or code {name!r}", setting, "catalog.toml"):
            assert words in why
        assert "bridge failed retry" in why
        assert env.client.get("/readyz").json()["held"]["products"]["count"] == 1

        prop = shop.add_string_property(1, "Из 1С", name)
        assert cli("failed", "retry", "--all")[0] == 0
        env.run_jobs()
        product = shop.product_by_xml("guid-1")
        assert product is not None
        value = product[f"property{prop['id']}"]
        assert ([v["value"] for v in value] if isinstance(value, list) else [value["value"]]) == expected
        assert failed_list(cli) == []
        assert ((batches.read(env.redis, batch) or {})["applied"], env.redis.hlen("bridge:held:products")) == (1, 0)
    finally:
        close_env(env)


def test_an_existing_product_left_to_the_shops_admins_is_not_held_for_a_property(
    redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    """With ``update_existing = false`` only ``active`` is written to a product the shop has: nothing is lost."""
    env = make(redis_url, shop, tmp_path, '[products]\nupdate_existing = false\narticle_property = "ARTNO"\n')
    try:
        existing = shop.add_product(xml_id="guid-7", name="Hammer")
        batch = env.push("products", [{"xml_id": "guid-7", "name": "Hammer 2", "article": "HM-7", "active": False}])[
            "batch"
        ]
        env.run_jobs()
        assert (batches.read(env.redis, batch) or {})["applied"] == 1
        assert shop.products[existing["id"]]["active"] == "N"
    finally:
        close_env(env)


def test_a_unit_or_vat_rate_the_shop_lacks_is_left_out_and_counted(
    redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    env = make(redis_url, shop, tmp_path, "")
    try:
        batch = env.push("products", [{"xml_id": "guid-1", "name": "Drill", "unit_code": "999", "vat_rate": "7"}])[
            "batch"
        ]
        env.run_jobs()
        product = shop.product_by_xml("guid-1")
        assert product is not None and product["vatId"] is None
        shown = batches.read(env.redis, batch) or {}
        assert (shown["applied"], shown["waiting"], shown["held"]["count"]) == (1, 0, 0)
        warned = {r["class"]: r["example"] for r in shown["warned"]["reasons"]}
        assert shown["warned"]["count"] == 2
        assert "OKEI code 999" in warned["unknown_unit"] and "VAT rate 7" in warned["unknown_vat_rate"]
        logged = [e for e in synclog.read(env.redis, limit=50) if e.operation == "update.products"]
        assert {e.outcome for e in logged} == {"warned"}
        assert any("applied with a warning (unknown_unit)" in (e.detail or "") for e in logged)
    finally:
        close_env(env)


def test_a_product_waits_for_a_section_still_in_the_sections_inbox(
    redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    """The products flush may run before the sections flush has split the sections body accepted before it."""
    env = make(redis_url, shop, tmp_path, "")
    try:
        env.push("sections", [{"xml_id": "g-tools", "name": "Tools"}])
        batch = env.push("products", [{"xml_id": "guid-1", "name": "Drill", "section_xml_ids": ["g-tools"]}])["batch"]
        runtime.install(env.rt)
        assert inbox.count(env.redis, "sections") == 1
        assert flush.flush("products").startswith("retry")  # before the sections flush: it waits
        assert shop.product_by_xml("guid-1") is None
        env.run_jobs()
        section, product = shop.section_by_xml("g-tools"), shop.product_by_xml("guid-1")
        assert section is not None and product is not None
        assert product["iblockSectionId"] == section["id"]
        assert (batches.read(env.redis, batch) or {})["applied"] == 1
    finally:
        close_env(env)


def test_a_product_whose_section_is_nowhere_is_held_until_the_section_is_sent(
    redis_url: str, shop: ShopEmulator, tmp_path: Path, cli: Any
) -> None:
    env = make(redis_url, shop, tmp_path, "")
    try:
        batch = env.push("products", [{"xml_id": "guid-1", "name": "Drill", "section_xml_ids": ["g-tools"]}])["batch"]
        env.run_jobs()
        assert shop.product_by_xml("guid-1") is None
        shown = batches.read(env.redis, batch) or {}
        assert [r["class"] for r in shown["held"]["reasons"]] == ["unknown_section"]
        (letter,) = failed_list(cli)
        assert "section 'g-tools' is not in the shop's catalog (iblock 1)" in letter["why"]
        assert "POST /1c/sections" in letter["why"] and "bridge failed retry" in letter["why"]

        env.push("sections", [{"xml_id": "g-tools", "name": "Tools"}])
        env.run_jobs()
        assert cli("failed", "retry", "--all")[0] == 0
        env.run_jobs()
        section, product = shop.section_by_xml("g-tools"), shop.product_by_xml("guid-1")
        assert section is not None and product is not None and product["iblockSectionId"] == section["id"]
        assert failed_list(cli) == []
    finally:
        close_env(env)
