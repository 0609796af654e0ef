"""The shop's limits, kept by all bridge processes together through Redis.

The shop counts requests per source IP in a leaky bucket (2/s, burst 50 by default) and answers 503
``QUERY_LIMIT_EXCEEDED`` when it overflows. Every worker, the clock and the web process call the same shop
from the same host, so one bucket in Redis stands in for the shop's and every HTTP request takes a slot
first. ``MethodPauses`` remembers what the shop told us to leave alone (``OPERATION_TIME_LIMIT`` for one
method, ``OVERLOAD_LIMIT`` for all) so that no process keeps knocking.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redis import Redis

from bridge import keys

# The bucket drains at ``rate`` per second and holds ``capacity`` requests. The clock is Redis' own TIME,
# so that hosts with skewed clocks still agree (fakeredis supports TIME in Lua as well). Redis >= 5
# replicates script effects, which is what makes calling TIME before a write legal.
# Returns "0" when admitted, else the seconds until a slot frees up, as a string: a Lua number would be
# truncated to an integer on the way back.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local mode = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local level = tonumber(redis.call('HGET', KEYS[1], 'level')) or 0
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts')) or now
if now > ts then
  level = math.max(0, level - (now - ts) * rate)
end
local wait = 0
if mode == 'fill' then
  level = capacity
elseif level + 1 <= capacity then
  level = level + 1
else
  wait = (level + 1 - capacity) / rate
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate + 60) * 1000))
return tostring(wait)
"""

MIN_SLEEP = 0.001  # never spin on a wait of a few nanoseconds left over from float rounding


class BucketTimeout(Exception):
    """No slot became free within the caller's timeout; ``wait`` is how long the next one still is."""

    def __init__(self, waited: float, wait: float) -> None:
        super().__init__(f"no shop request slot after waiting {waited:.1f}s (next in {wait:.1f}s)")
        self.waited = waited
        self.wait = wait


class LeakyBucket:
    """A leaky bucket in one Redis hash, admitting requests for every process that shares the key.

    ``headroom`` (0..1) shrinks rate and burst a little below the shop's own figures: our admission time is
    not the shop's arrival time, and a request that arrives early by network jitter should still fit.
    ``rate_headroom``, when given, shrinks the rate by its own share instead. The spare burst slots are what
    absorb jitter (a request early by up to ``spare slots / rate`` seconds still fits); a lower rate only
    costs throughput on every long drain, 10 % of it at the shop's figures (BENCHMARKS.md).
    """

    def __init__(
        self,
        redis: Redis,
        rate: float,
        burst: int,
        key: str = keys.SHOP_BUCKET,
        *,
        headroom: float = 0.0,
        rate_headroom: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        rate_share = headroom if rate_headroom is None else rate_headroom
        if rate <= 0 or burst < 1 or not 0 <= headroom < 1 or not 0 <= rate_share < 1:
            raise ValueError("rate must be > 0, burst >= 1 and headroom in [0, 1)")
        self.redis = redis
        self.key = key
        self.rate = rate * (1 - rate_share)
        self.capacity = max(1, math.floor(burst * (1 - headroom)))
        self._sleep = sleep
        self._script = redis.register_script(_SCRIPT)

    def try_acquire(self) -> float:
        """Take a slot if one is free (returns 0.0), else return the seconds until one will be."""
        return self._run("take")

    def acquire(self, timeout: float | None = None) -> float:
        """Wait for a slot and take it; returns the seconds this call waited (the sum of the waits the
        bucket asked for, which is what was slept, give or take the scheduler).

        Raises BucketTimeout when the next slot is further away than ``timeout`` allows, without sleeping
        in vain first.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                break
            if timeout is not None and waited + wait > timeout:
                self._count(waited)
                raise BucketTimeout(waited, wait)
            self._sleep(max(wait, MIN_SLEEP))
            waited += wait
        self._count(waited)
        return waited

    def penalize(self) -> None:
        """Fill the bucket: the shop said 503, so every process holds back until it has drained a slot."""
        self._run("fill")

    def level(self) -> float:
        """The stored level (not drained to now); for tests and diagnostics."""
        value = self.redis.hget(self.key, "level")
        return float(value) if value is not None else 0.0

    def _run(self, mode: str) -> float:
        return float(self._script(keys=[self.key], args=[repr(self.rate), self.capacity, mode]))

    def _count(self, waited: float) -> None:
        if waited > 0:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(keys.SHOP_WAITS)
            pipe.incrbyfloat(keys.SHOP_WAIT_SECONDS, waited)
            pipe.execute()


@dataclass(frozen=True)
class Pause:
    """Why a call must not go out now: ``method`` is the paused method, or None for the global pause."""

    method: str | None
    until: float

    def retry_after(self, now: float | None = None) -> float:
        return max(0.0, self.until - (time.time() if now is None else now))


class MethodPauses:
    """Pauses the shop asked for, stored in Redis with an expiry so they end by themselves.

    The moments are Unix times: ``operating_reset_at`` comes from the shop as one.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def pause(self, method: str, until: float) -> None:
        """Keep every process from calling ``method`` until ``until`` (a later pause is never shortened)."""
        self._set(keys.SHOP_PAUSE.format(method=method), until)

    def pause_all(self, until: float) -> None:
        """Keep every process from calling the shop at all until ``until`` (OVERLOAD_LIMIT)."""
        self._set(keys.SHOP_PAUSE_ALL, until)

    def paused_until(self, method: str) -> float | None:
        """When ``method`` may be called again, if it is paused now (the global pause not included)."""
        return self._future(self.redis.get(keys.SHOP_PAUSE.format(method=method)))

    def paused_all_until(self) -> float | None:
        """When the shop may be called again, if all calls are paused now."""
        return self._future(self.redis.get(keys.SHOP_PAUSE_ALL))

    def check(self, methods: Iterable[str]) -> Pause | None:
        """The pause that blocks any of ``methods`` (the global one first), in one round trip."""
        names = list(dict.fromkeys(methods))
        values = self.redis.mget([keys.SHOP_PAUSE_ALL, *(keys.SHOP_PAUSE.format(method=m) for m in names)])
        until = self._future(values[0])
        if until is not None:
            return Pause(None, until)
        for name, value in zip(names, values[1:], strict=True):
            until = self._future(value)
            if until is not None:
                return Pause(name, until)
        return None

    def _set(self, key: str, until: float) -> None:
        if until <= time.time():
            return
        current = self._future(self.redis.get(key))
        if current is not None and current >= until:
            return
        self.redis.set(key, repr(float(until)), pxat=math.ceil(until * 1000))

    @staticmethod
    def _future(value: bytes | str | None) -> float | None:
        return pause_end(value)


def pause_end(value: bytes | str | None, now: float | None = None) -> float | None:
    """When a stored pause (``keys.SHOP_PAUSE``, ``keys.SHOP_PAUSE_ALL``) ends, if it is still in force at
    ``now``; for readers that fetch the value in their own pipeline (``bridge.ops.status``)."""
    if value is None:
        return None
    until = float(value)
    return until if until > (time.time() if now is None else now) else None
