"""What was applied per key is remembered for one to two generations, then leaves Redis: a real redis-server.

The applied maps used to grow with the catalogue for ever. Records now go into the current generation's
hash and are read from it and the previous one; each hash expires when it is neither.
"""

from __future__ import annotations

import time

from redis import Redis

from bridge import keys
from bridge.updates import pending
from bridge.updates.pending import APPLIED_GENERATION, Entry, applied_keys, applied_values, settle, stage

KIND = "stock"
KEY = '["xml","guid-chair","key","Main"]'


def staged_entry(redis: Redis, value: str, ts: int) -> Entry:
    stage(redis, KIND, [(KEY, str(ts), value)], seq=int(redis.incr(keys.SEQUENCE)))
    entries, bad = pending.load(redis, KIND, pending.scan(redis, KIND))
    assert not bad
    [entry] = entries
    return entry


def test_a_record_goes_into_the_current_generation_and_expires_after_the_next(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    entry = staged_entry(redis, "[2.0]", 100)
    settle(redis, KIND, [(entry, True)])
    current, previous = applied_keys(KIND)
    assert redis.hget(current, KEY) == b"100|[2.0]"
    assert not redis.exists(previous)
    expires_at = redis.expiretime(current)
    now = time.time()
    # Read while it is the current generation and the next one; gone once it is older.
    assert now + APPLIED_GENERATION <= expires_at <= now + 2 * APPLIED_GENERATION + 1
    assert applied_values(redis, KIND, [KEY]) == ["100|[2.0]"]


def test_the_previous_generation_is_still_read(redis_url: str) -> None:
    """After a rollover, an unchanged value is still known (no write), and an older one is still dropped."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    _current, previous = applied_keys(KIND)
    redis.hset(previous, KEY, "100|[2.0]")  # recorded in the last generation
    assert applied_values(redis, KIND, [KEY, '["other"]']) == ["100|[2.0]", None]
    assert stage(redis, KIND, [(KEY, "50", "[1.0]")], seq=1)[0] == 1  # older than what the shop has: dropped
    entry = staged_entry(redis, "[2.0]", 200)
    assert entry.unchanged
    settle(redis, KIND, [(entry, True)])  # recorded again, now in the current generation
    assert redis.hget(applied_keys(KIND)[0], KEY) == b"200|[2.0]"


def test_the_single_hash_of_earlier_releases_is_left_to_expire(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    legacy = keys.UPDATES_APPLIED.format(kind=KIND)
    redis.hset(legacy, KEY, "1|[1.0]")
    entry = staged_entry(redis, "[3.0]", 300)
    settle(redis, KIND, [(entry, True)])
    assert 0 < redis.ttl(legacy) <= APPLIED_GENERATION


def test_a_generation_older_than_the_previous_is_not_read(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    older = applied_keys(KIND, time.time() - 2 * APPLIED_GENERATION)[0]
    redis.hset(older, KEY, "100|[2.0]")  # as if its expiry had not come yet
    assert applied_values(redis, KIND, [KEY]) == [None]
