"""An exchange import does not wait behind a flush: workers take the exchange queue before the shop's, and a
flush of a big backlog hands the worker back after each slice.

1C's exchange node waits on every import (``mode=import`` answered ``progress``) while a flush waits on nobody;
a catalogue's products flush (25 s at 20,000 offers) used to run between the goods import and the offers
import on a single worker (BENCHMARKS.md). The worker here is the real ``BridgeSimpleWorker`` on
``WORKER_QUEUES``, run one job at a time, so the order the jobs run in is the order a worker takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import runtime
from bridge.queue import EXCHANGE_QUEUE, ORDERS_QUEUE, QUEUES, SHOP_QUEUE, make_queue
from bridge.updates import flush as updates
from bridge.updates import pending
from bridge.worker import WORKER_QUEUES, BridgeSimpleWorker
from tests.exchange_env import MAIN, PASSWORD, USER, exchange_env, export
from tests.peers.onec_exchange import OnecExchange
from tests.updates_env import UpdatesEnv, close_env

BACKLOG = range(201, 261)  # 60 stock entries: three rounds of 20


@pytest.fixture
def env(redis_url: str, shop: Any, tmp_path: Path) -> Iterator[UpdatesEnv]:
    current = exchange_env(redis_url, shop, tmp_path)
    yield current
    close_env(current)


def one_job(env: UpdatesEnv) -> None:
    """One job, taken as a worker takes it."""
    runtime.install(env.rt)
    queues = [make_queue(name, env.redis, default_timeout=env.rt.settings.job_timeout) for name in WORKER_QUEUES]
    BridgeSimpleWorker(queues, connection=env.redis).work(burst=True, max_jobs=1, logging_level="WARNING")


def waiting(env: UpdatesEnv, queue: str) -> int:
    return int(env.redis.llen(f"rq:queue:{queue}"))


def test_a_worker_listens_on_every_queue_orders_first_then_the_exchange() -> None:
    assert sorted(WORKER_QUEUES) == sorted(QUEUES)
    assert WORKER_QUEUES.index(ORDERS_QUEUE) < WORKER_QUEUES.index(EXCHANGE_QUEUE) < WORKER_QUEUES.index(SHOP_QUEUE)


def test_an_import_queued_during_a_long_flush_runs_before_the_flush_goes_on(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for product_id in BACKLOG:
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    monkeypatch.setattr(updates, "ROUND", 20)
    monkeypatch.setattr(updates, "SLICE", 0.0)  # hand the worker back after every round
    env.push("stock", [{"product_id": p, "store": MAIN, "amount": 2} for p in BACKLOG])

    one_job(env)  # the flush's first slice
    assert pending.count(env.redis, "stock") == 40
    assert waiting(env, SHOP_QUEUE) == 1  # its continuation

    onec = OnecExchange(env.client, USER, PASSWORD)
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", export(2)["import0_1.xml"])
    assert onec.call("catalog", "import", filename="import.xml").status == "progress"
    assert waiting(env, EXCHANGE_QUEUE) == 1

    one_job(env)  # the import, though the flush's continuation was queued first
    assert onec.call("catalog", "import", filename="import.xml").status == "success"
    assert pending.count(env.redis, "stock") == 40  # the flush has not gone on meanwhile

    env.run_jobs()
    assert pending.count(env.redis, "stock") == 0
    assert all(shop.amount(p, 1) == 2 for p in BACKLOG)
    assert shop.product_by_xml("item-1") is not None  # and the import's own products flush ran too


def test_a_flush_of_a_backlog_stops_after_its_slice_not_after_half_the_job_timeout(
    env: UpdatesEnv, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for product_id in BACKLOG:
        shop.add_product(product_id=product_id, xml_id=f"g{product_id}")
    monkeypatch.setattr(updates, "ROUND", 20)
    monkeypatch.setattr(updates, "SLICE", 0.0)
    assert env.rt.settings.job_timeout * updates.BUDGET_SHARE >= updates.MIN_BUDGET  # the budget alone: no slice
    env.push("stock", [{"product_id": p, "store": MAIN, "amount": 3} for p in BACKLOG])
    one_job(env)
    assert 0 < pending.count(env.redis, "stock") < len(BACKLOG)
