"""1C's standard exchange end to end: the real ``bridge web`` and ``bridge worker`` processes, a real redis-server,
the shop emulator, and 1C's exchange node (``tests/peers/onec_exchange.py``) over real HTTP.

A generated goods + offers export creates the sections and products in the shop and sets their prices and
stock; the same export again makes no write; a worker killed in the middle of an import loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tests.exchange_files import SyntheticExport, synthetic_export
from tests.peers.onec_exchange import OnecExchange
from tests.peers.server import free_port
from tests.processes import BridgeProcess, bridge_env, wait_for, wait_http
from tests.updates_env import write_mappings

pytestmark = pytest.mark.slow

USER = "site-exchange"
PASSWORD = "exch4nge-pass-e2e-secret"
WRITES = ("add", "update", "modify", "set")


@dataclass
class Bridge:
    env: dict[str, str]
    url: str
    log_dir: Path
    processes: list[BridgeProcess] = field(default_factory=list)

    def start(self, command: str, name: str | None = None) -> BridgeProcess:
        process = BridgeProcess([command], self.env, self.log_dir, name or command)
        self.processes.append(process)
        if command == "web":
            wait_http(f"{self.url}/healthz", process)
        return process

    def output(self) -> str:
        return "\n".join(p.output() for p in self.processes)


@pytest.fixture
def files(tmp_path: Path) -> SyntheticExport:
    return synthetic_export(300, directory=tmp_path / "export", variants=False, warehouses=2, price_types=1)


@pytest.fixture
def bridge(redis_url: str, shop: Any, onec: Any, tmp_path: Path, files: SyntheticExport) -> Iterator[Bridge]:
    stores = "\n".join(f'"{w.id}" = {n}' for n, w in enumerate(files.warehouses, start=1))
    prices = "\n".join(f'"{p.id}" = {n}' for n, p in enumerate(files.price_types, start=1))
    for n, warehouse in enumerate(files.warehouses, start=1):
        shop.add_store(store_id=n, title=warehouse.name)
    for n, price_type in enumerate(files.price_types, start=1):
        shop.add_price_type(price_type_id=n, name=price_type.name)
    mappings = write_mappings(tmp_path / "mappings", f"[stores]\n{stores}\n[price_types]\n{prices}\n")
    port = free_port()
    env = bridge_env(
        shop,
        onec,
        port,
        redis_url,
        BRIDGE_MAPPINGS_DIR=str(mappings),
        BRIDGE_EXCHANGE_USER=USER,
        BRIDGE_EXCHANGE_PASSWORD=PASSWORD,
        BRIDGE_EXCHANGE_FILE_LIMIT="65536",
    )
    result = Bridge(env, f"http://127.0.0.1:{port}", tmp_path)
    try:
        yield result
    finally:
        for process in result.processes:
            process.stop()
            print(f"----- {process.log_path.name} (last lines)\n" + "\n".join(process.output().splitlines()[-40:]))


def one_c(bridge: Bridge, client: httpx.Client) -> OnecExchange:
    return OnecExchange(client, USER, PASSWORD)


def exported(files: SyntheticExport) -> dict[str, bytes]:
    return {"import0_1.xml": files.import_path.read_bytes(), "offers0_1.xml": files.offers_path.read_bytes()}


def shop_writes(shop: Any) -> list[str]:
    return [method for method, _params in shop.commands if method.rsplit(".", 1)[-1] in WRITES]


def test_an_export_fills_the_shop_and_the_same_export_again_writes_nothing(
    bridge: Bridge, shop: Any, files: SyntheticExport, redis_url: str
) -> None:
    bridge.start("web")
    bridge.start("worker")
    with httpx.Client(base_url=bridge.url, timeout=30) as client:
        finals = one_c(bridge, client).run_catalog(exported(files))
    assert all(reply.status == "success" for reply in finals.values())
    assert f"товары: {files.products} новых" in finals["import0_1.xml"].message
    redis = Redis.from_url(redis_url)

    def flushed() -> bool:
        return all(redis.hlen(f"bridge:pending:{kind}") == 0 for kind in ("products", "sections", "prices", "stock"))

    wait_for(flushed, timeout=120, what="the flushes to empty the pending updates")
    some = files.groups[0]
    assert shop.section_by_xml(some.id) is not None
    product = shop.product_by_xml("product-1") or next(iter(shop.products.values()))
    assert product is not None and len(shop.products) == files.products
    assert shop.price_of(int(product["id"]), 1) is not None
    shop.clear_records()
    with httpx.Client(base_url=bridge.url, timeout=30) as client:
        again = one_c(bridge, client).run_catalog(exported(files))
    assert f"{files.offers} без изменений" in again["offers0_1.xml"].message
    wait_for(flushed, timeout=60, what="nothing pending")
    assert shop_writes(shop) == []
    assert "exch4nge-pass" not in bridge.output()


def test_a_worker_killed_mid_import_loses_nothing(bridge: Bridge, shop: Any, files: SyntheticExport) -> None:
    # The web answers the first import call at once, while the job runs, so the kill lands mid-import.
    bridge.env["BRIDGE_EXCHANGE_IMPORT_WAIT"] = "0"
    bridge.start("web")
    worker = bridge.start("worker", "worker-1")
    with httpx.Client(base_url=bridge.url, timeout=30) as client:
        onec = one_c(bridge, client)
        onec.checkauth()
        onec.init()
        for name, content in exported(files).items():
            onec.upload(name, content)
        first = onec.call("catalog", "import", filename="import0_1.xml")
        assert first.status == "progress"
        worker.kill()  # whatever it had done of the import, the job is RQ's to run again
        bridge.start("worker", "worker-2")
        final = onec.import_file("import0_1.xml")
        assert final.status == "success", final.text
        offers = onec.import_file("offers0_1.xml")
        assert offers.status == "success", offers.text
    wait_for(lambda: len(shop.products) == files.products, timeout=180, what="every product in the shop")
