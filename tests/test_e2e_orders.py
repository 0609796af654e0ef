"""End to end: the emulated shop fires events at the real ``bridge web``; the real ``bridge worker`` delivers
the order to the emulated 1C. Real redis-server, real processes, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry

from bridge.queue import ORDERS_QUEUE
from tests.peers.server import free_port
from tests.processes import BridgeProcess, bridge_env, wait_for, wait_http

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    url: str
    redis: Redis
    env: dict[str, str]
    processes: list[BridgeProcess]
    log_dir: Path

    def start(self, command: str, name: str) -> BridgeProcess:
        process = BridgeProcess([command], self.env, self.log_dir, name)
        self.processes.append(process)
        return process

    def output(self) -> str:
        return "\n".join(p.output() for p in self.processes)


@pytest.fixture
def stack(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> Iterator[Stack]:
    port = free_port()
    env = bridge_env(shop, onec, port, redis_url)
    result = Stack(f"http://127.0.0.1:{port}", Redis.from_url(redis_url), env, [], tmp_path)
    web = result.start("web", "web")
    result.start("worker", "worker")
    wait_http(f"{result.url}/healthz", web)
    try:
        yield result
    finally:
        for process in result.processes:
            process.stop()
        print(result.output())  # shown by pytest only when the test failed


def test_three_duplicate_events_deliver_the_order_once(stack: Stack, shop: Any, onec: Any) -> None:
    order = shop.add_order(
        items=[
            {"product_id": 11, "name": "Chair", "price": 1500.0, "quantity": 2, "article": "ART-001", "vat_rate": 0.2},
            {"product_id": 12, "name": "Desk", "price": 999.99, "quantity": 1, "article": "ART-002", "vat_rate": None},
        ],
        delivery=("Courier", 300.0),
        discount=100.0,
    )
    answers = shop.fire_event(f"{stack.url}/shop/events", "ONSALEORDERSAVED", order["id"], duplicates=3)
    assert [a.status_code for a in answers] == [200, 200, 200]

    number = order["accountNumber"]
    wait_for(lambda: number in onec.documents, what="the order to reach 1C")
    # Give a wrongly duplicated job every chance to show itself before counting.
    wait_for(lambda: Queue(ORDERS_QUEUE, connection=stack.redis).count == 0, what="the queue to drain")
    assert onec.creations[number] == 1
    assert len([c for c in onec.calls if c["number"] == number]) == 1

    document = onec.documents[number]
    assert document["SiteId"] == str(order["id"])
    assert [(g["Article"], g["Quantity"]) for g in document["Goods"]] == [("ART-001", 2), ("ART-002", 1)]
    goods_total = sum(Decimal(str(g["Amount"])) for g in document["Goods"])
    assert goods_total + Decimal(str(document["Delivery"]["Price"])) == Decimal(str(document["DocumentAmount"]))
    assert Decimal(str(document["DocumentAmount"])) == Decimal(str(order["price"]))
    assert document["Status"] == "New"
    assert document["Cancelled"] is False


def test_wrong_token_is_refused_and_nothing_is_queued(stack: Stack, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    answers = shop.fire_event(f"{stack.url}/shop/events", "ONSALEORDERSAVED", order["id"], token="forged-token")
    assert answers[0].status_code == 401
    assert Queue(ORDERS_QUEUE, connection=stack.redis).count == 0
    assert stack.redis.keys("bridge:order:*") == []
    assert onec.calls == []


def test_order_saved_while_1c_is_locked_arrives_after_the_lock_lifts(stack: Stack, shop: Any, onec: Any) -> None:
    onec.lock("Ведутся технические работы")
    order = shop.add_order()
    shop.fire_event(f"{stack.url}/shop/events", "ONSALEORDERSAVED", order["id"])
    wait_for(lambda: any(c["outcome"] == "locked" for c in onec.calls), what="a call refused by the lock")

    ready = wait_for(
        lambda: (r := httpx.get(f"{stack.url}/readyz").json())["onec"]["circuit"] == "open" and r,
        what="/readyz to show the open circuit",
    )
    assert "Начало сеанса с информационной базой запрещено" in ready["onec"]["reason"]
    assert order["accountNumber"] not in onec.documents

    onec.unlock()
    wait_for(lambda: order["accountNumber"] in onec.documents, what="the order after the lock lifted")
    assert onec.creations[order["accountNumber"]] == 1
    wait_for(lambda: httpx.get(f"{stack.url}/readyz").json()["onec"]["circuit"] == "closed", what="circuit closed")


def test_permanent_refusal_lands_in_the_failed_registry(stack: Stack, shop: Any, onec: Any) -> None:
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    shop.fire_event(f"{stack.url}/shop/events", "ONSALEORDERSAVED", order["id"])
    registry = FailedJobRegistry(ORDERS_QUEUE, connection=stack.redis)
    wait_for(lambda: registry.count == 1, what="the job in the failed registry")
    job = registry.get_job_ids()[0]
    from rq.job import Job

    failed = Job.fetch(job, connection=stack.redis)
    assert "1C refused order" in (failed.exc_info or "")
    assert "Не заполнено поле Контрагент" in (failed.exc_info or "")
    assert len([c for c in onec.calls if c["outcome"] == "rejected"]) == 1  # not retried
