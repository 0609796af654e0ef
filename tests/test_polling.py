"""Polling: an order no webhook announced is found and synced; each version is queued once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from rq import Queue

from bridge import keys
from bridge.ops import synclog
from bridge.orders.polling import poll_orders
from bridge.queue import ORDERS_QUEUE
from bridge.runtime import Runtime
from tests.ops_helpers import emulator_settings, run_jobs


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


class ShopClock:
    def __init__(self, shop: Any) -> None:
        self.moment = shop.clock()
        shop.clock = lambda: self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def queued(redis: Redis) -> int:
    return Queue(ORDERS_QUEUE, connection=redis).count


def test_an_order_without_a_webhook_reaches_1c_and_is_not_queued_again(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    rt = Runtime.from_settings(settings, redis)
    order = shop.add_order()
    assert poll_orders(rt) == 1
    run_jobs(settings, redis)
    assert onec.creations[order["accountNumber"]] == 1
    assert poll_orders(rt) == 0
    assert queued(redis) == 0
    watermark = redis.get(keys.POLL_WATERMARK)
    assert watermark is not None and datetime.fromisoformat(watermark.decode()) == datetime.fromisoformat(
        order["dateUpdate"]
    )
    entries = synclog.read(redis, entity="order", entity_id=str(order["id"]))
    assert ("bridge", "poll.queue", "queued") in [(e.peer, e.operation, e.outcome) for e in entries]
    assert synclog.read(redis)[0].operation == "poll"


def test_a_refused_order_is_not_requeued_by_every_poll_until_it_changes(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    settings = emulator_settings(redis_url, shop, onec)
    rt = Runtime.from_settings(settings, redis)
    clock = ShopClock(shop)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    assert poll_orders(rt) == 1
    run_jobs(settings, redis)
    for _ in range(3):
        assert poll_orders(rt) == 0  # without the per-version memory, each poll made another dead letter
    onec.accept()
    clock.advance(5)
    shop.update_order(order["id"], comments="fixed by the manager")
    assert poll_orders(rt) == 1
    run_jobs(settings, redis)
    assert order["accountNumber"] in onec.documents


def test_orders_already_pending_are_not_queued_twice(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec), redis)
    shop.add_order()
    shop.add_order()
    assert poll_orders(rt) == 2
    redis.delete(*redis.keys(keys.POLL_QUEUED.format(order_id="*")))  # forget the polls: the marker still holds
    assert poll_orders(rt) == 0
    assert queued(redis) == 2


def test_a_poll_in_progress_elsewhere_means_this_one_does_nothing(
    redis_url: str, redis: Redis, shop: Any, onec: Any
) -> None:
    rt = Runtime.from_settings(emulator_settings(redis_url, shop, onec), redis)
    shop.add_order()
    other = redis.lock(keys.POLL_LOCK, timeout=30)
    assert other.acquire(blocking=False)
    assert poll_orders(rt) == 0
    assert shop.count("sale.order.list") == 0
    other.release()
    assert poll_orders(rt) == 1


def test_a_version_a_job_already_saw_is_left_to_that_job(redis_url: str, redis: Redis, shop: Any, onec: Any) -> None:
    from bridge.orders.job import queue_order
    from bridge.queue import deadletters

    settings = emulator_settings(redis_url, shop, onec)
    rt = Runtime.from_settings(settings, redis)
    onec.reject(422, "Не заполнено поле Контрагент")
    order = shop.add_order()
    queue_order(rt, str(order["id"]))  # as a webhook would
    run_jobs(settings, redis)
    assert deadletters.count(redis) == 1
    assert poll_orders(rt) == 0  # no second dead letter for the same refused version
    assert queued(redis) == 0
