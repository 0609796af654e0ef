"""The order job in-process, against the emulators over HTTP and a real redis-server.

The end-to-end tests show the flow through real processes; these pin down the job's decisions: what is
not re-sent, what a deletion sends, when it gives up, how long it waits.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bridge import runtime
from bridge.errors import Cause, PermanentError, TransientError
from bridge.mappings import DEFAULTS_DIR
from bridge.orders.job import CANCEL, SAVE, queue_order, sync_order
from bridge.queue import ORDERS_QUEUE
from bridge.queue.retry import retry_delay
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.worker import build_worker


def settings_for(redis_url: str, shop: Any, onec: Any, mappings: Path = DEFAULTS_DIR) -> Settings:
    return Settings(
        redis_url=redis_url,
        shop_url=shop.url,
        onec_url=onec.url,
        onec_user=onec.user,
        onec_password=onec.password,
        mappings_dir=mappings,
        retry_min_delay=5,
        retry_max_delay=60,
    )


@pytest.fixture
def rt(redis_url: str, shop: Any, onec: Any) -> Iterator[Runtime]:
    current = Runtime.from_settings(settings_for(redis_url, shop, onec), Redis.from_url(redis_url))
    runtime.install(current)
    yield current
    runtime.install(None)


def run_queued(rt: Runtime) -> None:
    worker = build_worker(rt.settings, rt.redis, simple=True)
    runtime.install(rt)
    worker.work(burst=True)


def test_an_unchanged_order_is_not_sent_again(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    assert sync_order(str(order["id"])) == "delivered"
    assert sync_order(str(order["id"])) == "unchanged"
    assert len(onec.calls) == 1


def test_a_changed_order_is_sent_as_an_update(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    sync_order(str(order["id"]))
    shop.update_order(order["id"], statusId="P")
    assert sync_order(str(order["id"])) == "delivered"
    number = order["accountNumber"]
    assert (onec.creations[number], onec.updates[number]) == (1, 1)
    assert onec.documents[number]["Status"] == "In progress"


def test_events_during_a_run_are_picked_up_by_the_same_job(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    assert queue_order(rt, str(order["id"])) is True
    assert queue_order(rt, str(order["id"])) is False  # collapses into the pending job
    run_queued(rt)
    assert len(onec.calls) == 1
    assert rt.redis.keys("bridge:order:pending:*") == []
    assert queue_order(rt, str(order["id"])) is True  # nothing pending any more: a new job


def test_a_deleted_order_reaches_1c_as_cancelled(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    sync_order(str(order["id"]))
    shop.delete_order(order["id"])
    assert sync_order(str(order["id"]), CANCEL) == "delivered"
    assert onec.documents[order["accountNumber"]]["Cancelled"] is True


def test_a_deleted_order_1c_never_had_sends_nothing(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order()
    shop.delete_order(order["id"])
    assert sync_order(str(order["id"]), CANCEL).startswith("skipped")
    assert onec.calls == []


def test_statuses_not_chosen_for_1c_are_skipped(redis_url: str, shop: Any, onec: Any, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(DEFAULTS_DIR, mappings)
    statuses = mappings / "statuses.toml"
    statuses.write_text(statuses.read_text().replace('send = ["*"]', 'send = ["P"]'))
    runtime.install(Runtime.from_settings(settings_for(redis_url, shop, onec, mappings), Redis.from_url(redis_url)))
    try:
        order = shop.add_order(status="N")
        assert sync_order(str(order["id"])).startswith("skipped")
        shop.update_order(order["id"], statusId="P")
        assert sync_order(str(order["id"])) == "delivered"
    finally:
        runtime.install(None)
    assert len(onec.calls) == 1


def test_a_status_without_a_1c_name_is_a_dead_letter_naming_it(rt: Runtime, shop: Any, onec: Any) -> None:
    order = shop.add_order(status="D")
    statuses = dict(rt.mappings.statuses)
    del statuses["D"]
    rt.mappings = dataclasses.replace(rt.mappings, statuses=statuses)
    queue_order(rt, str(order["id"]))
    run_queued(rt)
    failed = FailedJobRegistry(ORDERS_QUEUE, connection=rt.redis)
    assert failed.count == 1
    reason = Job.fetch(failed.get_job_ids()[0], connection=rt.redis).exc_info or ""
    assert "'D'" in reason and "statuses.toml" in reason
    assert onec.calls == []
    assert rt.redis.keys("bridge:order:pending:*") == []  # later events for the order are not stuck


def test_a_locked_1c_reschedules_and_gives_up_only_after_the_window(rt: Runtime, shop: Any, onec: Any) -> None:
    onec.lock()
    order = shop.add_order()
    assert sync_order(str(order["id"]), SAVE) == "retry (unavailable)"
    scheduled = ScheduledJobRegistry(ORDERS_QUEUE, connection=rt.redis)
    assert scheduled.count == 1
    long_ago = time.time() - 73 * 3600
    with pytest.raises(PermanentError, match="gave up after 73"):
        sync_order(str(order["id"]), SAVE, attempt=80, first_seen=long_ago)


def test_busy_retries_soon_and_unavailable_waits_long(rt: Runtime) -> None:
    busy = [retry_delay(rt, TransientError("x", cause=Cause.BUSY), attempt) for attempt in range(8)]
    down = [retry_delay(rt, TransientError("x", cause=Cause.UNAVAILABLE), attempt) for attempt in range(8)]
    assert max(busy) <= 30 * 1.2
    assert busy[0] <= 1.2
    assert down[0] >= 5 * 0.8
    assert max(down) >= 60 * 0.8
    assert retry_delay(rt, TransientError("x", retry_after=500.0), 0) == 500.0


def test_while_1c_is_down_waiting_orders_do_not_ask_the_shop_until_a_probe_is_due(
    rt: Runtime, shop: Any, onec: Any
) -> None:
    onec.lock()
    first, second = shop.add_order(), shop.add_order()
    assert sync_order(str(first["id"]), SAVE) == "retry (unavailable)"  # this call opened the circuit
    assert rt.circuit.state().is_open
    shop.clear_records()
    assert sync_order(str(second["id"]), SAVE) == "retry (unavailable)"
    assert sync_order(str(first["id"]), SAVE) == "retry (unavailable)"
    assert shop.requests == []  # no probe was due: nobody fetched an order only to find 1C locked
    rt.redis.hset("bridge:onec:circuit", "retry_at", repr(time.time() - 1))  # the probe is due now
    onec.unlock()
    assert sync_order(str(second["id"]), SAVE) == "delivered"
    assert [method for method, _ in shop.requests] == ["sale.order.get"]
    assert not rt.circuit.state().is_open
