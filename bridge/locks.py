"""A counting semaphore in Redis, shared by every process, whose slots free themselves.

1C runs every HTTP call in a server session with synchronous code, and parallel order pushes mostly contend
on the same registers, so the bridge caps calls in flight across *all* workers (``BRIDGE_ONEC_CONCURRENCY``).
A plain counter would leak a slot for ever whenever a worker is killed mid-call; here every holder has a
lease (a ZSET member scored with its expiry), and expired leases are swept before each admission. Time comes
from the Redis server (``TIME`` inside the script), so workers on hosts with skewed clocks agree on expiry.

Per-key mutual exclusion (one job per order) is a different need and uses redis-py's ``redis.lock.Lock``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from bridge.errors import Cause, TransientError

_log = logging.getLogger("bridge.locks")

# KEYS[1] = the ZSET of leases (member = token, score = expiry in ms).
# ARGV[1] = limit, ARGV[2] = lease in ms, ARGV[3] = token.  Returns 1 when admitted, else 0.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return 1
"""

# Counting live leases needs the server's clock too; read-only.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class ConcurrencyLimit:
    """At most ``limit`` holders of ``key`` at once, across processes; a lease ends after ``lease_seconds``.

    The lease must outlast the longest legitimate hold (for the 1C client: its timeout plus a margin),
    because an expired lease lets another caller in even if its holder is still working.
    """

    def __init__(
        self, redis: Redis, key: str, limit: int, lease_seconds: float, *, poll: float = 0.05, name: str | None = None
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.redis = redis
        self.key = key
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.poll = poll
        self.name = name or key
        self._acquire = redis.register_script(_ACQUIRE)
        self._count = redis.register_script(_COUNT)

    def try_acquire(self) -> str | None:
        """One attempt: a token when admitted, else None."""
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        lease_ms = max(1, int(self.lease_seconds * 1000))
        admitted = self._acquire(keys=[self.key], args=[self.limit, lease_ms, token])
        return token if int(admitted) == 1 else None

    @property
    def doorbell(self) -> str:
        """A list ``release`` pushes to, so that a waiter blocked on it (BLPOP) tries again at once."""
        return self.key + ":doorbell"

    def acquire(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for a slot; the token to ``release``, or None when none came.

        Between attempts a waiter blocks on the doorbell, which every ``release`` rings: when 1C drains a
        backlog, a freed slot is taken within a round trip. Sleeping between polls instead (10 ms doubling to
        200 ms) left slots idle for a good part of each call and held the outage drain at about three
        quarters of 1C's capacity (BENCHMARKS.md). The wait still ends after a growing, jittered delay, for
        slots freed without a ring: a lease that expired because its holder was killed.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        delay = min(self.poll, 0.01)
        while True:
            token = self.try_acquire()
            if token is not None:
                return token
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._wait_for_ring(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, self.poll * 4)

    def _wait_for_ring(self, seconds: float) -> None:
        try:
            self.redis.blpop([self.doorbell], timeout=max(seconds, 0.001))
        except RedisError:
            time.sleep(seconds)  # a blocking pop the client cannot make (or Redis away): plain polling

    def release(self, token: str) -> None:
        """Give the slot back at once (an expired or unknown token is ignored) and ring for a waiter.

        The doorbell keeps at most ``limit`` rings and expires with a lease, so rings nobody waited for
        cost a waiter at most a few extra attempts."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self.key, token)
        pipe.lpush(self.doorbell, 1)
        pipe.ltrim(self.doorbell, 0, self.limit - 1)
        pipe.pexpire(self.doorbell, max(1, int(self.lease_seconds * 1000)))
        pipe.execute()

    def in_use(self) -> int:
        """Slots held by live leases right now (for health and metrics)."""
        return int(self._count(keys=[self.key]))

    @contextmanager
    def slot(self, timeout: float) -> Iterator[str]:
        """Hold a slot for the ``with`` block; ``TransientError(cause=Cause.BUSY)`` when none came in time."""
        token = self.acquire(timeout)
        if token is None:
            raise TransientError(
                f"all {self.limit} slots for {self.name} stayed taken for {timeout:g} s",
                cause=Cause.BUSY,
                retry_after=None,
            )
        try:
            yield token
        finally:
            self.release(token)


@contextmanager
def renewed(lock: Lock, every: float) -> Iterator[None]:
    """Keep an acquired ``lock`` alive for the ``with`` block by renewing its lease every ``every`` seconds.

    A per-key lock needs a lease short enough that a killed holder does not block the key for long (see
    ``bridge.worker``), yet a live holder may work far longer than that (rate-limit waits, slow 1C). A
    daemon thread renews it while the block runs and dies with the process, so the lease runs out by itself
    when the holder does. The lock must be made with ``thread_local=False`` to be renewable from here.
    """
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(every):
            try:
                lock.reacquire()
            except LockError:
                _log.warning("lock %s expired before its holder finished; not renewing it any more", lock.name)
                return
            except RedisError as exc:  # Redis restarting: try again at the next beat
                _log.warning("lock %s not renewed: %s", lock.name, exc)

    thread = threading.Thread(target=renew, name=f"renew {lock.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(every + 5)
