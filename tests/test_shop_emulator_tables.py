"""The shop emulator's method tables: how an area's REST methods join the emulator, and how a subclass
(the benchmarks' indexed shop) serves one of them its own way."""

from typing import Any

import pytest

from tests.peers.shop import Answer, ShopEmulator
from tests.peers.shop.methods import MethodTable

WEBHOOK = ("1", "k3y-s3cr3t-webhook")


def test_every_method_is_served_and_listed_including_batch_and_methods_itself() -> None:
    shop = ShopEmulator()
    status, body = shop.handle(*WEBHOOK, "methods", {})
    assert status == 200
    assert {
        "batch",
        "methods",
        "sale.order.get",
        "sale.paysystem.list",
        "sale.delivery.getlist",
        "catalog.price.modify",
        "catalog.document.conduct",
    } <= set(body["result"])
    assert len(body["result"]) == 47


def test_a_switched_off_method_is_not_found_and_not_listed() -> None:
    shop = ShopEmulator()
    shop.storeproduct_writes = False
    status, body = shop.handle(*WEBHOOK, "catalog.storeproduct.add", {"fields": {"productId": 1}})
    assert (status, body["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    listed = shop.handle(*WEBHOOK, "methods", {})[1]["result"]
    assert "catalog.storeproduct.add" not in listed
    assert "catalog.storeproduct.list" in listed


def test_two_areas_claiming_one_method_is_refused() -> None:
    first, second = MethodTable(), MethodTable()
    first.register("sale.order.get")(lambda shop, params: Answer(1))
    second.register("sale.order.get")(lambda shop, params: Answer(2))
    with pytest.raises(ValueError, match="twice"):
        MethodTable.union([first, second])
    with pytest.raises(ValueError, match="twice"):
        first.register("sale.order.get")(lambda shop, params: Answer(3))


def test_a_subclass_replaces_a_method_and_keeps_its_switch_and_the_shared_records() -> None:
    def quiet_add(shop: Any, params: dict[str, Any]) -> Answer:
        return Answer("replaced")

    class Quiet(ShopEmulator):
        METHODS = ShopEmulator.METHODS.replacing({"catalog.storeproduct.add": quiet_add})

    shop = Quiet()
    assert shop.handle(*WEBHOOK, "catalog.storeproduct.add", {})[1]["result"] == "replaced"
    assert shop.count("catalog.storeproduct.add") == 1
    shop.storeproduct_writes = False
    assert shop.handle(*WEBHOOK, "catalog.storeproduct.add", {})[0] == 404
    assert ShopEmulator().handle(*WEBHOOK, "catalog.storeproduct.add", {})[1]["error"] == 100  # the original
    with pytest.raises(ValueError, match="no such methods"):
        ShopEmulator.METHODS.replacing({"catalog.nothing": quiet_add})
