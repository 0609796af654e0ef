"""Accepted 1C bodies wait whole in the inbox; the flush splits them oldest first, and a crash loses none."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError

from bridge import keys
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.updates import flush as updates
from bridge.updates import inbox
from bridge.updates.intake.staging import STAGED_TTL, StagedBody
from tests.processes import wait_for


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def put(redis_url: str, kind: str, *items: dict[str, Any]) -> int:
    async def store() -> int:
        client = AsyncRedis.from_url(redis_url)
        try:
            async with StagedBody(client, kind, json.dumps({"items": list(items)}).encode()) as staged:
                return await staged.keep()
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
    raw = redis.get(redis.lindex(inbox.inbox_key("stock"), 1))
    inbox._split_one(redis, "stock", "stock-1", raw.decode())
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
    redis.set(b"bridge:inbox:stock:old", b'{"items": [{"xml_id": "a1", "amount": -1}]}')
    redis.rpush(inbox.inbox_key("stock"), b"7", b"bridge:inbox:stock:old")
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 3})
    with caplog.at_level(logging.ERROR, logger="bridge.updates.inbox"):
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


# --- the staged body: stored while the intake checks it, on the inbox only once kept -----------------------

BODY = json.dumps({"items": [{"xml_id": "a1", "store": "Main", "amount": 1}]}).encode()


def staged_keys(redis: Redis, kind: str = "stock") -> list[bytes]:
    return list(redis.scan_iter(f"bridge:inbox:{kind}:*"))


def test_the_body_is_in_redis_before_the_check_ends_and_on_the_inbox_only_once_kept(
    redis_url: str, redis: Redis
) -> None:
    async def scenario() -> int:
        client = AsyncRedis.from_url(redis_url)
        try:
            async with StagedBody(client, "stock", BODY) as staged:
                # Still inside the check: another client already finds the whole body, off the inbox.
                found = await asyncio.to_thread(
                    wait_for, lambda: redis.get(staged.key), what="the staged body", timeout=10
                )
                assert found == BODY
                assert 0 < redis.ttl(staged.key) <= STAGED_TTL
                assert inbox.count(redis, "stock") == 0
                seq = await staged.keep()
            assert redis.ttl(staged.key) == -1  # kept: it no longer expires
            return seq
        finally:
            await client.aclose()

    seq = asyncio.run(scenario())
    assert redis.lrange(inbox.inbox_key("stock"), 0, -1)[0] == str(seq).encode()
    assert inbox.split(redis, "stock") == 1
    assert pending(redis) == {KEY: "[1.0]"}
    assert staged_keys(redis) == []  # the body leaves with its entry


def test_a_body_not_kept_is_deleted_and_one_whose_request_died_expires(redis_url: str, redis: Redis) -> None:
    async def scenario() -> str:
        client = AsyncRedis.from_url(redis_url)
        try:
            async with StagedBody(client, "stock", BODY):
                pass  # refused: never kept
            died = StagedBody(client, "stock", BODY)
            await died.__aenter__()  # the process is killed during the check: no keep, no exit
            return died.key
        finally:
            await client.aclose()

    died = asyncio.run(scenario())
    assert staged_keys(redis) == [died.encode()]
    assert 0 < redis.ttl(died) <= STAGED_TTL
    assert inbox.count(redis, "stock") == 0
    assert inbox.split(redis, "stock") == 0


def test_keeping_a_body_redis_no_longer_holds_fails_and_puts_nothing_on_the_inbox(redis_url: str, redis: Redis) -> None:
    async def scenario() -> None:
        client = AsyncRedis.from_url(redis_url)
        try:
            async with StagedBody(client, "stock", BODY) as staged:
                await asyncio.to_thread(wait_for, lambda: redis.exists(staged.key), what="the staged body", timeout=10)
                redis.delete(staged.key)  # evicted, say
                with pytest.raises(ResponseError, match="staged body is gone"):
                    await staged.keep()
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert inbox.count(redis, "stock") == 0
    assert not redis.exists(keys.SEQUENCE)


def test_an_entry_whose_body_is_gone_is_logged_and_the_rest_go_on(
    redis_url: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 1})
    put(redis_url, "stock", {"xml_id": "a1", "store": "Main", "amount": 2})
    redis.delete(redis.lindex(inbox.inbox_key("stock"), 1))
    with caplog.at_level(logging.ERROR, logger="bridge.updates.inbox"):
        assert inbox.split(redis, "stock") == 2
    assert pending(redis) == {KEY: "[2.0]"}
    assert inbox.count(redis, "stock") == 0
    assert any("lost" in r.getMessage() for r in caplog.records)
