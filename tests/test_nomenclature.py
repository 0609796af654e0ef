"""Products and sections from 1C into the shop: pushed to ``/1c/products`` and ``/1c/sections``, flushed by a
worker against the shop emulator over real HTTP and a real redis-server."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.updates.catalog import product_iblock
from bridge.updates.kinds.products import store_image
from tests.peers.shop import ShopEmulator
from tests.updates_env import UpdatesEnv, close_env, make_env, write_mappings

PNG = b"\x89PNG\r\n\x1a\n" + b"picture-one" * 20
JPG = b"\xff\xd8\xff" + b"picture-two" * 20


def make(redis_url: str, shop: ShopEmulator, tmp_path: Path, catalog: str = "", **overrides: Any) -> UpdatesEnv:
    mappings = write_mappings(tmp_path / "mappings", catalog)
    return make_env(redis_url, shop, mappings, **overrides)


@pytest.fixture
def env(redis_url: str, shop: ShopEmulator, tmp_path: Path) -> Iterator[UpdatesEnv]:
    bridge = make(redis_url, shop, tmp_path)
    yield bridge
    close_env(bridge)


def writes(shop: ShopEmulator) -> list[str]:
    return [m for m, _ in shop.commands if not m.endswith(".list")]


def test_a_pushed_product_is_created_with_its_fields_then_only_what_changed_is_written(
    env: UpdatesEnv, shop: ShopEmulator
) -> None:
    item = {
        "xml_id": "guid-1", "name": "Drill", "article": "DR-1", "barcodes": ["4600000000017"],
        "description": "<p>Strong</p>", "unit_code": "796", "vat_rate": "20",
    }  # fmt: skip
    answer = env.push("products", [item])
    assert answer["accepted"] == 1 and answer["batch"].startswith("products-")
    env.run_jobs()
    product = shop.product_by_xml("guid-1")
    assert product is not None and product["iblockId"] == 1
    assert product["name"] == "Drill" and product["detailText"] == "<p>Strong</p>"
    assert product["measure"] == 5 and product["vatId"] == 3  # piece (OKEI 796), VAT 20 %
    assert product[f"property{shop.article_property_id()}"]["value"] == "DR-1"
    assert product["property260"]["value"] == "4600000000017"  # CML2_BAR_CODE

    shop.clear_records()
    env.push("products", [item])  # the same document again: nothing to write
    env.run_jobs()
    assert writes(shop) == []

    shop.clear_records()
    env.push("products", [{**item, "name": "Drill 2"}])
    env.run_jobs()
    updates = [p for m, p in shop.commands if m == "catalog.product.update"]
    assert updates == [{"id": str(product["id"]), "fields": {"name": "Drill 2"}}]  # a batch command is a query string


def test_a_product_the_shop_has_is_matched_by_xml_id_and_an_unchanged_one_makes_no_write(
    env: UpdatesEnv, shop: ShopEmulator
) -> None:
    existing = shop.add_product(xml_id="guid-7", name="Hammer", article="HM-7")
    env.push("products", [{"xml_id": "guid-7", "name": "Hammer", "article": "HM-7"}])
    env.run_jobs()
    assert writes(shop) == []
    assert shop.count("catalog.product.add") == 0
    env.push("stock", [{"xml_id": "guid-7", "store_id": shop.add_store()["id"], "amount": 3}])
    env.run_jobs()
    assert shop.count("catalog.product.list") == 1  # the id found by the products flush served the stock flush
    assert shop.amount(existing["id"], 1) == 3


def test_variants_become_offers_of_their_product_and_sections_nest_parents_first(
    env: UpdatesEnv, shop: ShopEmulator
) -> None:
    env.push("sections", [
        {"xml_id": "grp-3", "name": "Cordless", "parent_xml_id": "grp-2"},
        {"xml_id": "grp-2", "name": "Drills", "parent_xml_id": "grp-1"},
        {"xml_id": "grp-1", "name": "Tools"},
    ])  # fmt: skip
    env.push("products", [
        {"xml_id": "P1#C1", "name": "Drill, blue"},
        {"xml_id": "P1", "name": "Drill", "section_xml_ids": ["grp-3"]},
        {"xml_id": "P1#C2", "name": "Drill, red", "parent_xml_id": "P1"},
    ])  # fmt: skip
    env.run_jobs()
    top, middle, leaf = (shop.section_by_xml(x) for x in ("grp-1", "grp-2", "grp-3"))
    assert top and middle and leaf
    assert top["iblockSectionId"] is None
    assert middle["iblockSectionId"] == top["id"] and leaf["iblockSectionId"] == middle["id"]
    adds = [p["fields"]["xmlId"] for m, p in shop.commands if m == "catalog.section.add"]
    assert adds == ["grp-1", "grp-2", "grp-3"]
    parent = shop.product_by_xml("P1")
    assert parent is not None and parent["iblockSectionId"] == leaf["id"]
    for xml_id in ("P1#C1", "P1#C2"):
        offer = shop.product_by_xml(xml_id)
        assert offer is not None and offer["iblockId"] == 2 and offer["type"] == 4
        assert offer["parentId"]["value"] == str(parent["id"])


def test_a_picture_is_uploaded_once_per_content_and_a_missing_content_keeps_the_shops(
    env: UpdatesEnv, shop: ShopEmulator
) -> None:
    encoded = base64.b64encode(PNG).decode()
    env.push("products", [{"xml_id": "img-1", "name": "Saw", "images": [{"name": "saw.png", "base64": encoded}]}])
    env.run_jobs()
    product = shop.product_by_xml("img-1")
    assert product is not None
    images = shop.images_of(product["id"])
    assert [(i["type"], i["sha256"]) for i in images] == [("DETAIL_PICTURE", hashlib.sha256(PNG).hexdigest())]
    # A changed document with the same picture plus a new one: only the new one is uploaded.
    second = store_image(env.redis, "saw2.jpg", JPG)
    gone = {"name": "gone.jpg", "sha256": "0" * 64}  # content never stored (or expired)
    pictures = [{"name": "saw.png", "base64": encoded}, second, gone]
    env.push("products", [{"xml_id": "img-1", "name": "Saw 2", "images": pictures}])
    env.run_jobs()
    images = shop.images_of(product["id"])
    assert [i["sha256"] for i in images] == [hashlib.sha256(PNG).hexdigest(), second["sha256"]]
    assert images[1]["type"] == "MORE_PHOTO"
    assert shop.count("catalog.productImage.add") == 2
    assert all(m != "batch" or "productImage" not in str(p) for m, p in shop.requests)  # one request each


def test_a_product_the_shop_refuses_is_reported_in_the_shops_words(
    env: UpdatesEnv, shop: ShopEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.updates.flush"):
        env.push("products", [{"xml_id": "bad-1", "name": "Glue", "section_xml_ids": ["nowhere"]}])
        env.rt.redis.set("bridge:cache:section:1:nowhere", 999)  # a remembered section the shop no longer has
        env.run_jobs()
    assert shop.product_by_xml("bad-1") is None
    dropped = [r for r in caplog.records if getattr(r, "extra_fields", {}).get("event") == "update_dropped"]
    assert len(dropped) == 1
    assert "Section with the specified identifier does not exist" in dropped[0].extra_fields["reason"]
    assert env.pending("products") == 0


def test_existing_products_keep_their_descriptions_when_the_mappings_say_so(
    redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    env = make(redis_url, shop, tmp_path, "[products]\nupdate_existing = false\n")
    try:
        existing = shop.add_product(xml_id="keep-1", name="Admin's name")
        env.push("products", [
            {"xml_id": "keep-1", "name": "1C name", "description": "1C text", "active": False},
            {"xml_id": "new-1", "name": "Brand new"},
        ])  # fmt: skip
        env.run_jobs()
        kept = shop.product_by_xml("keep-1")
        assert kept is not None and kept["name"] == "Admin's name" and kept["detailText"] is None
        assert kept["active"] == "N"  # deactivation is not a description
        created = shop.product_by_xml("new-1")
        assert created is not None and created["name"] == "Brand new"
        updates = [p for m, p in shop.commands if m == "catalog.product.update"]
        assert updates == [{"id": str(existing["id"]), "fields": {"active": "N"}}]
    finally:
        close_env(env)


def test_the_catalog_iblock_is_found_by_catalog_catalog_list_and_the_sku_lookup_uses_it(
    env: UpdatesEnv, shop: ShopEmulator
) -> None:
    shop.set_catalog(23, 24)
    product = shop.add_product(iblock_id=23, article="ART-23", xml_id="x-23")
    store = shop.add_store()
    env.push("stock", [
        {"sku": "ART-23", "store_id": store["id"], "amount": 4},
        {"xml_id": "x-23", "store_id": store["id"], "amount": 4},
    ])  # fmt: skip
    env.run_jobs()
    assert shop.amount(product["id"], store["id"]) == 4
    lists = [p["filter"]["iblockId"] for m, p in shop.commands if m == "catalog.product.list"]
    assert lists and {str(i) for i in lists} == {"23"}
    env.push("products", [{"xml_id": "new-23", "name": "Made in 23"}, {"xml_id": "new-23#v", "name": "Variant"}])
    env.run_jobs()
    made, variant = shop.product_by_xml("new-23"), shop.product_by_xml("new-23#v")
    assert made is not None and made["iblockId"] == 23
    assert variant is not None and variant["iblockId"] == 24


@pytest.mark.parametrize("how", ["setting", "mappings"])
def test_the_iblock_can_be_named_by_the_setting_or_the_mappings(
    redis_url: str, shop: ShopEmulator, tmp_path: Path, how: str
) -> None:
    shop.set_catalog(23, 24)
    shop.catalogs[40] = {**shop.catalogs[23], "id": 40, "iblockId": 40}
    if how == "setting":
        env = make(redis_url, shop, tmp_path, shop_iblock_id=40)
    else:
        env = make(redis_url, shop, tmp_path, "[products]\niblock_id = 40\n")
    try:
        assert product_iblock(env.rt) == 40
        env.push("products", [{"xml_id": "named", "name": "In 40"}])
        env.run_jobs()
        made = shop.product_by_xml("named")
        assert made is not None and made["iblockId"] == 40
        assert shop.count("catalog.catalog.list") == 0  # named: nothing to find (no variants asked for offers)
    finally:
        close_env(env)


def test_a_bad_products_body_is_refused_whole_and_changes_nothing(env: UpdatesEnv, shop: ShopEmulator) -> None:
    bad = [
        {"xml_id": "a", "name": "A", "images": [{"name": "x.jpg", "base64": "not base64!"}]},
        {"xml_id": "b", "name": "B", "vat_rate": "twenty"},
        {"xml_id": "c", "name": "C", "images": [{"url": "https://x/y.jpg", "sha256": "0" * 64, "name": "y"}]},
        {"xml_id": "d"},
    ]
    answer = env.client.post("/1c/products", json={"items": bad}, headers={"X-Api-Token": "inbound-t0ken-0001"})
    assert answer.status_code == 400
    paths = {d["path"] for d in answer.json()["details"]}
    assert {"/items/0/images/0", "/items/1/vat_rate", "/items/2/images/0", "/items/3/name"} <= paths
    assert env.pending("products") == 0
    assert env.redis.keys("bridge:image:*") == []


def test_a_picture_url_on_a_private_address_is_not_fetched_unless_the_settings_allow_it(
    redis_url: str, shop: ShopEmulator, tmp_path: Path
) -> None:
    url = f"{shop.url.split('/rest/')[0]}/rest/picture.jpg"  # loopback: the emulator answers 404 for it
    for allowed in (False, True):
        env = make(redis_url, shop, tmp_path, image_private_urls=allowed)
        try:
            env.push("products", [{"xml_id": f"url-{allowed}", "name": "Pictured", "images": [{"url": url}]}])
            env.run_jobs()
            product = shop.product_by_xml(f"url-{allowed}")
            assert product is not None and shop.images_of(product["id"]) == []  # created all the same
        finally:
            close_env(env)


def test_fetch_refuses_private_hosts_and_bounds_the_size() -> None:
    import httpx

    from bridge.updates import pictures

    with pytest.raises(ValueError, match="private"):
        pictures.fetch("http://127.0.0.1:9/x.jpg", allow_private=False)
    big = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * (pictures.MAX_BYTES + 1)))
    with pytest.raises(ValueError, match="larger"):
        pictures.fetch("http://127.0.0.1/x.jpg", allow_private=True, transport=big)
    moved = httpx.MockTransport(lambda request: httpx.Response(302, headers={"Location": "http://10.0.0.1/"}))
    with pytest.raises(ValueError, match="302"):
        pictures.fetch("http://127.0.0.1/x.jpg", allow_private=True, transport=moved)
    small = httpx.MockTransport(lambda request: httpx.Response(200, content=PNG))
    assert pictures.fetch("http://127.0.0.1/x.jpg", allow_private=True, transport=small) == PNG


def test_the_emulator_serves_the_catalogue_as_the_shop_does(shop: ShopEmulator) -> None:
    import httpx

    def call(method: str, params: dict[str, Any]) -> httpx.Response:
        return httpx.post(shop.url + method, json=params)

    catalogs = call("catalog.catalog.list", {}).json()["result"]["catalogs"]
    assert {(c["iblockId"], c["productIblockId"]) for c in catalogs} == {(1, None), (2, 1)}
    added = call("catalog.product.add", {"fields": {"iblockId": 1, "name": "A", "xmlId": "a"}}).json()["result"]
    assert added["element"]["xmlId"] == "a"
    got = call("catalog.product.get", {"id": added["element"]["id"]}).json()["result"]
    assert got["product"]["name"] == "A"
    refused = call("catalog.product.add", {"fields": {"iblockId": 99, "name": "B"}})
    assert refused.status_code == 400 and refused.json()["error"] == 200040300000
    offer = call(
        "catalog.product.offer.add", {"fields": {"iblockId": 2, "name": "A1", "parentId": added["element"]["id"]}}
    )
    assert offer.json()["result"]["offer"]["parentId"]["value"] == str(added["element"]["id"])
    offers = call("catalog.product.offer.list", {"select": ["id", "iblockId"], "filter": {"iblockId": 2}}).json()
    assert len(offers["result"]["offers"]) == 1 and offers["total"] == 1
    section = call("catalog.section.add", {"fields": {"iblockId": 1, "name": "S", "xmlId": "s"}}).json()["result"]
    orphan = call("catalog.section.add", {"fields": {"iblockId": 1, "name": "T", "iblockSectionId": 999}})
    assert orphan.status_code == 400 and orphan.json()["error"] == 200700300000
    assert (
        call("catalog.section.list", {"filter": {"xmlId": "s"}}).json()["result"]["sections"][0]["id"]
        == section["section"]["id"]
    )
    assert {m["code"] for m in call("catalog.measure.list", {}).json()["result"]["measures"]} >= {796, 166}
    assert {v["rate"] for v in call("catalog.vat.list", {}).json()["result"]["vats"]} == {None, 10, 20}
    image = {"fields": {"productId": added["element"]["id"]}, "fileContent": ["a.png", base64.b64encode(PNG).decode()]}
    assert call("catalog.productImage.add", image).json()["result"]["productImage"]["type"] == "MORE_PHOTO"
    in_batch = call(
        "batch",
        {"cmd": {"0": "catalog.productImage.add?fields[productId]=11&fileContent[0]=a.png&fileContent[1]=eA=="}},
    )
    assert in_batch.json()["result"]["result_error"][0]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    listed = call("catalog.productImage.list", {"productId": added["element"]["id"]}).json()["result"]
    assert [i["name"] for i in listed["productImages"]] == ["a.png"] and "sha256" not in listed["productImages"][0]
    enum = {"fields": {"propertyId": 257, "value": "Red", "xmlId": "red"}}
    assert (
        call("catalog.productPropertyEnum.add", enum).json()["error_description"]
        == "Only list properties are supported"
    )
