"""ConcurrencyLimit: never more than ``limit`` holders across processes, and a dead holder's slot comes back.

Every test runs twice: against fakeredis (what ``bridge serve`` embeds) and a real redis-server (production).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from bridge.errors import TransientError
from bridge.locks import ConcurrencyLimit

KEY = "bridge:test:slots"


@pytest.fixture(scope="module")
def _own_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own, for when tests/conftest.py offers no ``redis_url``."""
    from tests.peers.redis_server import RedisServer

    with RedisServer(Path(tmp_path_factory.mktemp("redis-locks"))) as server:
        yield server.url


def real_redis_url(request: pytest.FixtureRequest) -> str:
    try:
        return str(request.getfixturevalue("redis_url"))
    except pytest.FixtureLookupError:
        return str(request.getfixturevalue("_own_redis_server"))


@pytest.fixture(params=["fakeredis", "redis-server"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield fakeredis.FakeRedis(server=server)
        return
    real = redis.Redis.from_url(real_redis_url(request))
    real.flushdb()
    yield real
    real.flushdb()
    real.close()


def test_admits_up_to_the_limit(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 2, lease_seconds=30)
    first, second = limit.acquire(timeout=0), limit.acquire(timeout=0)
    assert first and second and first != second
    assert limit.acquire(timeout=0) is None
    assert limit.in_use() == 2
    limit.release(first)
    third = limit.acquire(timeout=0)
    assert third is not None
    assert limit.in_use() == 2


def test_limits_are_shared_between_clients(client: redis.Redis) -> None:
    # Two ConcurrencyLimit objects stand for two processes: the limit holds for both together.
    a = ConcurrencyLimit(client, KEY, 1, lease_seconds=30)
    b = ConcurrencyLimit(client, KEY, 1, lease_seconds=30)
    token = a.acquire(timeout=0)
    assert token is not None
    assert b.acquire(timeout=0) is None
    b.release(token)  # any holder of the token may release it
    assert b.acquire(timeout=0) is not None


def test_acquire_waits_for_a_release(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 1, lease_seconds=30)
    token = limit.acquire(timeout=0)
    assert token is not None
    releaser = threading.Timer(0.2, limit.release, args=(token,))
    started = time.monotonic()
    releaser.start()
    second = limit.acquire(timeout=5)
    releaser.join()
    assert second is not None
    assert 0.15 <= time.monotonic() - started < 4


def test_acquire_gives_up_after_timeout(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 1, lease_seconds=30)
    assert limit.acquire(timeout=0) is not None
    started = time.monotonic()
    assert limit.acquire(timeout=0.3) is None
    waited = time.monotonic() - started
    assert 0.3 <= waited < 2


def test_a_dead_holders_slot_frees_itself(client: redis.Redis) -> None:
    # The holder "dies": it never releases. Its lease runs out and the slot comes back without anyone's help.
    limit = ConcurrencyLimit(client, KEY, 1, lease_seconds=0.4)
    assert limit.acquire(timeout=0) is not None
    started = time.monotonic()
    assert limit.acquire(timeout=0) is None
    token = limit.acquire(timeout=5)
    assert token is not None
    assert time.monotonic() - started >= 0.3  # not before the lease ran out


def test_the_key_expires_with_the_last_lease(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 3, lease_seconds=20)
    limit.acquire(timeout=0)
    ttl = client.pttl(KEY)
    assert 0 < ttl <= 20_000


def test_slot_releases_on_exit_and_on_error(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 1, lease_seconds=30)
    with limit.slot(timeout=0):
        assert limit.in_use() == 1
    assert limit.in_use() == 0
    with pytest.raises(RuntimeError), limit.slot(timeout=0):
        raise RuntimeError("boom")
    assert limit.in_use() == 0


def test_slot_raises_busy_when_none_comes(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 1, lease_seconds=30, name="calls to 1C")
    with limit.slot(timeout=0), pytest.raises(TransientError) as caught, limit.slot(timeout=0.05):
        pass
    assert caught.value.cause == "busy"
    assert "calls to 1C" in str(caught.value)


def test_never_more_than_limit_holders_under_contention(client: redis.Redis) -> None:
    limit = ConcurrencyLimit(client, KEY, 2, lease_seconds=30, poll=0.005)
    holders = 0
    peak = 0
    changed = threading.Condition()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal holders, peak

        def two_in() -> bool:
            return holders >= 2

        try:
            for _ in range(4):
                with limit.slot(timeout=10):
                    with changed:
                        holders += 1
                        peak = max(peak, holders)
                        changed.notify_all()
                        # Stay until a second holder is in (or a moment passed), so the limit is really
                        # tested at its edge rather than by luck of the scheduler.
                        changed.wait_for(two_in, timeout=0.2)
                    with changed:
                        holders -= 1
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert peak == 2
    assert limit.in_use() == 0


def test_rejects_nonsense() -> None:
    client = fakeredis.FakeRedis()
    with pytest.raises(ValueError):
        ConcurrencyLimit(client, KEY, 0, lease_seconds=1)
    with pytest.raises(ValueError):
        ConcurrencyLimit(client, KEY, 1, lease_seconds=0)
