"""The shared leaky bucket and the method pauses, against a real redis-server and against fakeredis.

The bucket's clock is Redis' TIME, so the tests cannot freeze it; they assert on the waits the bucket
reports (which it computes from its level), not on how long the test took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from bridge import keys
from bridge.shop.ratelimit import BucketTimeout, LeakyBucket, MethodPauses, Pause


@pytest.fixture(params=["redis-server", "fakeredis"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        conn: redis.Redis = fakeredis.FakeRedis()
    else:
        conn = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield conn
    conn.close()


class Sleeps:
    """A sleep that really sleeps (the Redis clock runs on) and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(seconds)


def test_admits_burst_at_once_then_asks_to_wait(client: redis.Redis) -> None:
    bucket = LeakyBucket(client, rate=10, burst=5)
    assert [bucket.try_acquire() for _ in range(5)] == [0.0] * 5
    wait = bucket.try_acquire()
    assert 0.05 < wait <= 0.1 + 1e-9  # one slot drains in 1/rate; a few ms have passed at most


def test_acquire_waits_one_interval_per_call_after_the_burst(client: redis.Redis) -> None:
    rate, burst, extra = 20.0, 4, 6
    sleeps = Sleeps()
    bucket = LeakyBucket(client, rate=rate, burst=burst, sleep=sleeps)
    assert [bucket.acquire() for _ in range(burst)] == [0.0] * burst
    assert sleeps.calls == []
    waits = [bucket.acquire() for _ in range(extra)]
    assert all(0 < w <= 1 / rate + 1e-9 for w in waits), waits
    # Each call had to wait, and never more than one interval: the bucket admits exactly `rate` per second.
    assert len(sleeps.calls) >= extra
    assert int(client.get(keys.SHOP_WAITS) or 0) == extra
    assert float(client.get(keys.SHOP_WAIT_SECONDS) or 0) == pytest.approx(sum(waits))


def test_first_wait_after_the_burst_is_one_interval(client: redis.Redis) -> None:
    bucket = LeakyBucket(client, rate=4, burst=3)
    for _ in range(3):
        bucket.try_acquire()
    assert bucket.try_acquire() == pytest.approx(0.25, abs=0.05)
    # Asking again does not take a slot: the wait stays put instead of growing.
    assert bucket.try_acquire() == pytest.approx(0.25, abs=0.05)


def test_penalize_fills_the_bucket(client: redis.Redis) -> None:
    bucket = LeakyBucket(client, rate=5, burst=10)
    assert bucket.try_acquire() == 0.0
    bucket.penalize()
    assert bucket.level() == 10
    assert bucket.try_acquire() == pytest.approx(0.2, abs=0.05)


def test_two_processes_share_one_bucket(client: redis.Redis) -> None:
    first = LeakyBucket(client, rate=1, burst=3)
    second = LeakyBucket(client, rate=1, burst=3)
    assert first.try_acquire() == 0.0
    assert second.try_acquire() == 0.0
    assert first.try_acquire() == 0.0
    assert second.try_acquire() > 0.5
    assert first.try_acquire() > 0.5


def test_acquire_gives_up_without_sleeping_when_the_wait_exceeds_the_timeout(client: redis.Redis) -> None:
    sleeps = Sleeps()
    bucket = LeakyBucket(client, rate=0.5, burst=1, sleep=sleeps)
    assert bucket.acquire(timeout=1) == 0.0
    with pytest.raises(BucketTimeout) as caught:
        bucket.acquire(timeout=1)
    assert sleeps.calls == []
    assert caught.value.wait == pytest.approx(2.0, abs=0.1)


def test_headroom_keeps_the_bucket_below_the_shop(client: redis.Redis) -> None:
    bucket = LeakyBucket(client, rate=2, burst=50, headroom=0.1)
    assert bucket.capacity == 45
    assert bucket.rate == pytest.approx(1.8)
    assert [bucket.try_acquire() for _ in range(45)] == [0.0] * 45
    assert bucket.try_acquire() > 0


def test_bucket_key_expires_when_idle(client: redis.Redis) -> None:
    bucket = LeakyBucket(client, rate=2, burst=5)
    bucket.try_acquire()
    ttl = client.pttl(keys.SHOP_BUCKET)
    assert 0 < ttl <= (5 / 2 + 60) * 1000


def test_invalid_parameters_are_refused(client: redis.Redis) -> None:
    with pytest.raises(ValueError):
        LeakyBucket(client, rate=0, burst=5)
    with pytest.raises(ValueError):
        LeakyBucket(client, rate=1, burst=0)


def test_method_pause(client: redis.Redis) -> None:
    pauses = MethodPauses(client)
    until = time.time() + 30
    assert pauses.paused_until("sale.order.list") is None
    pauses.pause("sale.order.list", until)
    assert pauses.paused_until("sale.order.list") == pytest.approx(until)
    assert pauses.paused_until("sale.order.get") is None
    assert pauses.check(["sale.order.get", "sale.order.list"]) == Pause("sale.order.list", pytest.approx(until))
    # A shorter pause never cuts a longer one short.
    pauses.pause("sale.order.list", until - 20)
    assert pauses.paused_until("sale.order.list") == pytest.approx(until)
    # The key ends with the pause.
    assert 0 < client.pttl(keys.SHOP_PAUSE.format(method="sale.order.list")) <= 31_000


def test_a_pause_in_the_past_is_ignored(client: redis.Redis) -> None:
    pauses = MethodPauses(client)
    pauses.pause("catalog.price.update", time.time() - 1)
    assert pauses.paused_until("catalog.price.update") is None
    assert pauses.check(["catalog.price.update"]) is None


def test_global_pause_blocks_every_method_first(client: redis.Redis) -> None:
    pauses = MethodPauses(client)
    pauses.pause("sale.order.list", time.time() + 30)
    pauses.pause_all(time.time() + 60)
    found = pauses.check(["sale.order.list"])
    assert found is not None and found.method is None
    assert pauses.paused_all_until() == pytest.approx(time.time() + 60, abs=1)
    assert found.retry_after() == pytest.approx(60, abs=1)
