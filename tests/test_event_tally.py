"""The web process's event tally: counts reach Redis in few pipelines, and survive a moment without Redis."""

from __future__ import annotations

import asyncio

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bridge import keys
from bridge.ops import synclog
from bridge.ops.synclog import Entry
from bridge.web.event_accounting import EventTally
from tests.peers.server import free_port

FIELD = b"ONSALEORDERSAVED\x1faccepted"
COUNTER = keys.METRIC_COUNTER.format(name="bridge_shop_events")


def test_a_burst_is_written_and_entries_ride_along(redis_url: str) -> None:
    async def scenario() -> None:
        client = AsyncRedis.from_url(redis_url)
        tally = EventTally(client, max_entries=1000)
        for order_id in ("300", "301", "302"):
            tally.add("ONSALEORDERSAVED", "accepted", Entry("shop", "event", "accepted", "order", order_id))
        tally.add("unknown", "unauthorized")
        await tally.aclose()
        await client.aclose()

    asyncio.run(scenario())
    redis = Redis.from_url(redis_url)
    assert redis.hget(COUNTER, FIELD) == b"3"
    assert redis.hget(COUNTER, b"unknown\x1funauthorized") == b"1"
    [entry] = synclog.read(redis, entity="order", entity_id="301")
    assert (entry.peer, entry.operation, entry.outcome) == ("shop", "event", "accepted") and entry.process


def test_counts_wait_for_redis_to_come_back(redis_url: str) -> None:
    async def scenario() -> None:
        dead = AsyncRedis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
        tally = EventTally(dead, max_entries=1000)
        tally.add("ONSALEORDERSAVED", "accepted")
        assert await tally.flushed() is False
        tally.redis = AsyncRedis.from_url(redis_url)  # Redis is back
        tally.add("ONSALEORDERSAVED", "accepted")
        await tally.aclose()
        await tally.redis.aclose()

    asyncio.run(scenario())
    assert Redis.from_url(redis_url).hget(COUNTER, FIELD) == b"2"
