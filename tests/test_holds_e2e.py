"""End to end: a mistake in the bridge's setup holds updates, a person fixes the mapping file and retries, and
the updates arrive, with no process restarted; and ``GET /1c/batches/{batch}`` tells 1C what became of a push.

Real redis-server, real ``bridge web`` and ``bridge worker`` processes, the emulated shop over real HTTP, the
operator's commands run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from bridge.ops import synclog
from tests.peers.server import free_port
from tests.processes import ROOT, BridgeProcess, bridge_env, wait_for, wait_http

pytestmark = pytest.mark.slow

TOKEN = "inb0und-t0ken-holds-secret"
HEADERS = {"X-Api-Token": TOKEN}

CATALOG = """
[stores]
Main = 1
[price_types]
Retail = 1
[products]
article_property = "{article}"
"""
STATUSES = """
[statuses]
N = "New"
P = "In progress"
"""


@dataclass
class Bridge:
    env: dict[str, str]
    url: str
    mappings: Path
    redis: Redis
    log_dir: Path
    processes: list[BridgeProcess] = field(default_factory=list)

    def start(self, command: str) -> BridgeProcess:
        process = BridgeProcess([command], self.env, self.log_dir, command)
        self.processes.append(process)
        if command == "web":
            wait_http(f"{self.url}/healthz", process)
        return process

    def push(self, kind: str, items: list[dict[str, Any]]) -> str:
        answer = httpx.post(f"{self.url}/1c/{kind}", json={"items": items}, headers=HEADERS, timeout=10)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["batch"])

    def batch(self, batch: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/1c/batches/{batch}", headers=HEADERS, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def settled(self, batch: str) -> dict[str, Any] | None:
        shown = self.batch(batch)
        return shown if shown["waiting"] == 0 else None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")} | self.env
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    def failed(self) -> list[dict[str, Any]]:
        result = self.cli("failed", "list", "--json")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    def readyz(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/readyz", timeout=10).json())

    def write(self, name: str, text: str) -> None:
        path = self.mappings / name
        path.write_text(text, encoding="utf-8")
        stamp = time.time() + 2  # a new mtime even on a file system with coarse times
        os.utime(path, (stamp, stamp))


@pytest.fixture
def bridge(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> Iterator[Bridge]:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    port = free_port()
    env = bridge_env(shop, onec, port, redis_url, BRIDGE_INBOUND_TOKEN=TOKEN, BRIDGE_MAPPINGS_DIR=str(mappings))
    result = Bridge(env, f"http://127.0.0.1:{port}", mappings, Redis.from_url(redis_url), tmp_path)
    result.write("catalog.toml", CATALOG.format(article="ARTNO"))  # a code the shop's catalog lacks
    result.write("statuses.toml", STATUSES)
    try:
        yield result
    finally:
        for process in result.processes:
            process.stop()
            print(f"----- {process.log_path.name} (last lines)\n" + "\n".join(process.output().splitlines()[-60:]))


def problems(url: str) -> dict[tuple[str, str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.labels["kind"], s.labels["outcome"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "bridge_update_problems_total"
    }


def test_each_setup_mistake_holds_its_updates_until_the_mapping_is_fixed_and_retried(bridge: Bridge, shop: Any) -> None:
    shop.set_catalog(1)  # no SKU catalog yet: variants cannot be written
    shop.add_product(product_id=101, xml_id="guid-chair", article="ART-CHAIR")
    shop.add_product(product_id=102, xml_id="guid-desk", article="ART-DESK")
    shop.add_store(store_id=1, title="Main")
    shop.add_store(store_id=2, title="Warehouse 2")
    shop.add_price_type(price_type_id=1, name="Retail")
    shop.add_price_type(price_type_id=2, name="Wholesale")
    order = shop.add_order(status="N")
    bridge.start("web")
    bridge.start("worker")

    batches = {
        "store": bridge.push("stock", [{"xml_id": "guid-desk", "store": "north", "amount": 5}]),
        "price type": bridge.push(
            "prices", [{"xml_id": "guid-chair", "price_type": "Опт", "price": 7, "currency": "RUB"}]
        ),
        "status": bridge.push("order-status", [{"order": order["accountNumber"], "status": "Packed"}]),
        "article": bridge.push("stock", [{"sku": "ART-CHAIR", "store_id": 1, "amount": 3}]),
        "variant": bridge.push("products", [{"xml_id": "guid-chair#red", "name": "Chair, red"}]),
    }
    for what, batch in batches.items():
        shown = wait_for(lambda b=batch: bridge.settled(b), what=f"the {what} batch settled")
        assert shown["held"]["count"] == 1 and shown["applied"] == 0, (what, shown)

    # Held, not dropped: one dead letter per reason, with the words that say what to fix.
    letters = {letter["why"]: letter for letter in bridge.failed()}
    expected = {
        "store": "1C warehouse 'north' is not mapped to a shop store",
        "price type": "1C price type 'Опт' is not mapped to a shop price type",
        "status": "1C status 'Packed' is not mapped to a shop status",
        "article": "has no article property 'ARTNO'",
        "variant": "has no SKU (trade offers) catalog",
    }
    for what, words in expected.items():
        assert any(words in why for why in letters), (what, list(letters))
    assert len(letters) == len(expected)
    held = bridge.readyz()["held"]
    assert {kind: entry["count"] for kind, entry in held.items()} == {
        "stock": 2, "prices": 1, "order-status": 1, "products": 1
    }  # fmt: skip
    assert any("'north'" in reason for reason in held["stock"]["reasons"])
    assert shop.amount(102, 1) is None and shop.price_of(101, 2) is None
    held_logged = [e for e in synclog.read(bridge.redis, limit=200) if e.outcome == "held"]
    assert {e.operation for e in held_logged} == {
        "update.stock",
        "update.prices",
        "update.order-status",
        "update.products",
    }
    assert problems(bridge.url)[("stock", "held", "unmapped_store")] == 1

    # A retry before the fix holds them again (and files the letters again): nothing is lost.
    first = bridge.cli("failed", "retry", "--all")
    assert first.returncode == 0, first.stderr
    wait_for(lambda: len(bridge.failed()) == len(expected), what="the letters filed again")
    assert sum(entry["count"] for entry in bridge.readyz()["held"].values()) == 5

    # The fixes, on disk, with every process still running.
    bridge.write(
        "catalog.toml",
        '[stores]\nMain = 1\nnorth = 2\n[price_types]\nRetail = 1\n"Опт" = 2\n[products]\narticle_property = "CML2_ARTICLE"\n',
    )
    bridge.write("statuses.toml", STATUSES + 'D = "Packed"\n')
    shop.set_catalog(1, 2)
    time.sleep(1.1)  # the mappings are looked at once a second at most
    retried = bridge.cli("failed", "retry", "--all")
    assert retried.returncode == 0, retried.stderr

    wait_for(lambda: shop.amount(102, 2) == 5, what="the held stock in the mapped store")
    wait_for(lambda: shop.amount(101, 1) == 3, what="the stock found by article")
    wait_for(lambda: (shop.price_of(101, 2) or {}).get("price") == 7, what="the held price")
    wait_for(lambda: shop.orders[order["id"]]["statusId"] == "D", what="the held status")
    wait_for(lambda: shop.product_by_xml("guid-chair#red") is not None, what="the held variant")
    for what, batch in batches.items():
        shown = wait_for(lambda b=batch: bridge.settled(b), what=f"the {what} batch after the fix")
        assert (shown["applied"], shown["held"]["count"]) == (1, 0), (what, shown)
    assert bridge.failed() == []
    assert bridge.readyz()["held"] == {}


def test_a_batch_tells_what_became_of_each_item(bridge: Bridge, shop: Any) -> None:
    shop.set_catalog(1, 2)
    shop.add_product(product_id=101, xml_id="guid-chair")
    shop.add_product(product_id=103, xml_id="guid-lamp")
    shop.add_store(store_id=1, title="Main")
    bridge.start("web")
    bridge.start("worker")
    first = bridge.push(
        "stock",
        [
            {"xml_id": "guid-chair", "store": "Main", "amount": 5, "ts": "2026-12-01T10:00:00Z"},
            {"xml_id": "guid-lamp", "store": "Main", "amount": 7},
            {"xml_id": "guid-nobody", "store": "Main", "amount": 1},
            {"xml_id": "guid-lamp", "store": "Attic", "amount": 2},
        ],
    )
    shown = wait_for(lambda: bridge.settled(first), what="the first batch settled")
    assert shown["accepted"] == 4
    assert (shown["applied"], shown["unchanged"], shown["superseded"]) == (2, 0, 0)
    assert shown["dropped"]["count"] == 1
    assert [r["class"] for r in shown["dropped"]["reasons"]] == ["unknown_product"]
    assert "guid-nobody" in shown["dropped"]["reasons"][0]["example"]
    assert shown["held"]["count"] == 1
    assert [r["class"] for r in shown["held"]["reasons"]] == ["unmapped_store"]
    assert "add it under [stores] in catalog.toml" in shown["held"]["reasons"][0]["example"]

    second = bridge.push(
        "stock",
        [
            {"xml_id": "guid-chair", "store": "Main", "amount": 4, "ts": "2026-12-01T09:00:00Z"},  # older
            {"xml_id": "guid-lamp", "store": "Main", "amount": 7},  # the same again
        ],
    )
    shown = wait_for(lambda: bridge.settled(second), what="the second batch settled")
    assert (shown["accepted"], shown["applied"], shown["unchanged"], shown["superseded"]) == (2, 0, 1, 1)
    assert shop.amount(101, 1) == 5 and shop.amount(103, 1) == 7

    # A newer value for the held key supersedes the held one (and is held in its turn); an older one does not.
    third = bridge.push("stock", [{"xml_id": "guid-lamp", "store": "Attic", "amount": 9}])
    assert wait_for(lambda: bridge.settled(third), what="the third batch settled")["held"]["count"] == 1
    shown = bridge.batch(first)
    assert (shown["held"]["count"], shown["superseded"], shown["waiting"]) == (0, 1, 0)
    older = bridge.push("stock", [{"xml_id": "guid-chair", "store": "Main", "amount": 1, "ts": "2026-11-30T00:00:00Z"}])
    assert wait_for(lambda: bridge.settled(older), what="the older push settled")["superseded"] == 1
    assert shop.amount(101, 1) == 5
    assert problems(bridge.url)[("stock", "dropped", "unknown_product")] == 1
    dropped = [e for e in synclog.read(bridge.redis, limit=200) if e.outcome == "dropped"]
    assert dropped and "guid-nobody" in (dropped[0].detail or "")

    missing = httpx.get(f"{bridge.url}/1c/batches/stock-999999", headers=HEADERS, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_batch" and "stock-999999" in missing.json()["message"]
    assert httpx.get(f"{bridge.url}/1c/batches/{first}", timeout=10).status_code == 401

    refused = httpx.post(f"{bridge.url}/1c/stock", content="x", headers={**HEADERS, "Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert problems(bridge.url)[("stock", "refused", "unsupported_media_type")] == 1
    assert any(e.outcome == "refused" for e in synclog.read(bridge.redis, limit=200))
