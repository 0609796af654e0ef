"""End to end, the order side of 1C's standard exchange: the real ``bridge web`` and ``bridge worker`` with the
exchange as the only channel to 1C (no BRIDGE_ONEC_URL), the shop emulator firing webhooks, and 1C's exchange
node (``tests/peers/onec_exchange_sale.py``) calling over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.onec_exchange_sale import SaleNode
from tests.peers.server import free_port
from tests.processes import BridgeProcess, bridge_env, wait_for, wait_http
from tests.test_exchange_sale_documents import documents_file

pytestmark = pytest.mark.slow

USER, PASSWORD = "exchange", "s3cret-exchange"


@pytest.fixture
def node(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> Iterator[SaleNode]:
    port = free_port()
    env = bridge_env(shop, onec, port, redis_url, BRIDGE_EXCHANGE_USER=USER, BRIDGE_EXCHANGE_PASSWORD=PASSWORD)
    del env["BRIDGE_ONEC_URL"]
    processes = [BridgeProcess(["web"], env, tmp_path, "web"), BridgeProcess(["worker"], env, tmp_path, "worker")]
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", processes[0])
    client = SaleNode(url, USER, PASSWORD)
    try:
        yield client
    finally:
        client.close()
        for process in processes:
            process.stop()
        print("\n".join(p.output() for p in processes))


def offered(node: SaleNode) -> list[str]:
    return [d.findtext("Номер") or "" for d in node.query() if d.findtext("ХозОперация") == "Заказ товара"]


def test_orders_reach_1c_by_query_and_1c_documents_change_the_shop(node: SaleNode, shop: Any, onec: Any) -> None:
    first, second = shop.add_order(account_number="E-1"), shop.add_order(account_number="E-2")
    base = node.url
    for order in (first, second):
        shop.fire_event(f"{base}/shop/events", "ONSALEORDERSAVED", order["id"])
    node.start()
    wait_for(lambda: sorted(offered(node)) == ["E-1", "E-2"], what="the orders to wait for 1C's query")
    # Interrupted before success: the next session gets them again.
    node.start()
    assert sorted(offered(node)) == ["E-1", "E-2"]
    assert node.success().startswith("success")
    node.start()
    assert offered(node) == []
    # Changed in the shop after success: offered again.
    shop.update_order(second["id"], statusId="P")
    shop.fire_event(f"{base}/shop/events", "ONSALEORDERSAVED", second["id"])
    wait_for(lambda: offered(node) == ["E-2"], what="the changed order to be offered again")
    assert onec.calls == []  # no HTTP service configured: nothing went that way
    # 1C's documents back: a status, a payment, a cancellation.
    body = documents_file(
        {"Ид": "g1", "Номер": "E-1", "ХозОперация": "Заказ товара",
         "requisites": {"Статуса заказа ИД": "F", "Дата оплаты по 1С": "2026-12-02T12:00:00"}},
        {"Ид": "g2", "Номер": "E-2", "ХозОперация": "Заказ товара", "requisites": {"Отменен": "true"}},
    )  # fmt: skip
    answer = node.send_documents("documents___e2e.xml", body)
    assert answer.startswith("success"), answer
    wait_for(lambda: shop.orders[first["id"]]["statusId"] == "F", what="1C's status in the shop")
    wait_for(lambda: shop.orders[first["id"]]["payments"][0]["paid"] == "Y", what="1C's payment in the shop")
    wait_for(lambda: shop.orders[second["id"]]["canceled"] == "Y", what="1C's cancellation in the shop")
