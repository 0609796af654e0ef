"""Accepted 1C bodies wait whole in the inbox; the flush splits them oldest first, and a crash loses none."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bridge import keys
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.sync import inbox, updates


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def put(redis_url: str, kind: str, *items: dict[str, Any]) -> int:
    async def store() -> int:
        client = AsyncRedis.from_url(redis_url)
        try:
            return await inbox.put(client, kind, json.dumps({"items": list(items)}).encode())
        finally:
            await client.aclose()

    return asyncio.run(store())


def pending(redis: Redis, kind: str = "stock") -> dict[str, str]:
    return {k.decode(): v.decode().rsplit("|", 1)[1] for k, v in redis.hgetall(f"bridge:pending:{kind}").items()}


KEY = '["xml","a1","key","Main"]'


def test_bodies_are_split_in_the_order_they_were_accepted(redis_url: str, redis: Redis) -> None:
    first = put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 1})
    second = put(
        redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 2}, {"sku": "B", "store_id": 3, "amount": 4}
    )
    assert second > first
    assert inbox.count(redis, "stock") == 2
    assert inbox.split(redis, "stock") == 2
    assert pending(redis) == {KEY: "[2.0]", '["sku","B","id","3"]': "[4.0]"}
    assert inbox.count(redis, "stock") == 0
    assert inbox.split(redis, "stock") == 0


def test_a_body_split_again_after_a_crash_does_not_undo_a_newer_one(redis_url: str, redis: Redis) -> None:
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 1})
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 2})
    # A worker staged the first body and died before taking it off the inbox.
    raw = redis.lindex(inbox.inbox_key("stock"), 1)
    inbox._split_one(redis, "stock", "stock-1", int(redis.incr(keys.SEQUENCE)), raw.decode())
    assert pending(redis) == {KEY: "[1.0]"}
    assert inbox.split(redis, "stock") == 2  # the next flush: the first body again, then the second
    assert pending(redis) == {KEY: "[2.0]"}


def test_an_older_item_is_dropped_when_its_body_is_split(redis_url: str, redis: Redis) -> None:
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 9, "ts": "2024-05-01T12:00:00+03:00"})
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 1, "ts": "2024-05-01T11:00:00+03:00"})
    inbox.split(redis, "stock")
    assert pending(redis) == {KEY: "[9.0]"}


def test_a_body_that_no_longer_validates_is_dropped_loudly_and_the_rest_go_on(
    redis_url: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    redis.rpush(inbox.inbox_key("stock"), b"7", b'{"items": [{"xml_id": "a1", "amount": -1}]}')
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 3})
    with caplog.at_level(logging.ERROR, logger="bridge.sync.inbox"):
        assert inbox.split(redis, "stock") == 2
    assert pending(redis) == {KEY: "[3.0]"}
    assert any("stock-7 dropped" in r.getMessage() for r in caplog.records)


def test_a_body_stored_without_its_flush_gets_one_from_the_sweep(redis_url: str, redis: Redis) -> None:
    # The intake stores the body, then queues the flush: a crash in between leaves a body and no flush.
    put(redis_url, "prices", {"product_id": 5, "price_type_id": 1, "price": 10, "currency": "RUB"})
    rt = Runtime.from_settings(Settings(redis_url=redis_url), redis)
    assert updates.sweep(rt) == 1
    assert redis.exists(updates.marker_key("prices"))
    assert updates.sweep(rt) == 0  # queued once


def test_a_body_without_its_number_is_split_too(redis_url: str, redis: Redis) -> None:
    redis.rpush(inbox.inbox_key("stock"), b'{"items": [{"xml_id": "a1", "store": "Main", "amount": 1}]}')
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 2})
    assert inbox.split(redis, "stock") == 2
    assert pending(redis) == {KEY: "[2.0]"}
    assert redis.llen(inbox.inbox_key("stock")) == 0
