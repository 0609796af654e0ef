"""Whether anyone does the work: the RQ workers and the clocks that are alive now, as ``/readyz`` shows them.

A worker is alive while RQ's own heartbeat hash for it exists (it expires ``worker_ttl`` s after its last
beat: about 25 s for the bridge's workers, see ``bridge.worker``); a clock while its heartbeat
(``keys.CLOCK_HEARTBEAT``) is younger than the leader lock's lifetime (``bridge.clock``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rq.worker_registration import REDIS_WORKER_KEYS

from bridge import keys
from bridge.clock import LEADER_TTL


@dataclass(frozen=True)
class Liveness:
    workers: int
    clocks: int
    clock_leading: bool

    def problems(self) -> list[str]:
        found = []
        if self.workers == 0:
            found.append("no worker is running: accepted work waits in the queues (start `bridge worker`)")
        if self.clocks == 0:
            found.append("no clock is running: no polling, flushes or alerts (start `bridge clock`)")
        elif not self.clock_leading:
            found.append("no clock leads yet (the last leader stopped less than a minute ago)")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": {"alive": self.workers},
            "clock": {"alive": self.clocks, "leading": self.clock_leading},
        }


async def read_async(redis: Any) -> Liveness:
    """Two round trips and one scan of the (few) clock heartbeats, through a ``redis.asyncio`` client."""
    members = await redis.smembers(REDIS_WORKER_KEYS)
    workers = 0
    if members:
        pipe = redis.pipeline(transaction=False)
        for member in members:
            pipe.exists(member)
        workers = sum(1 for alive in await pipe.execute() if alive)
    beats = [key async for key in redis.scan_iter(match=keys.CLOCK_HEARTBEAT.format(clock="*"), count=100)]
    values = await redis.mget(beats) if beats else []
    return _clocks(workers, values, time.time())


def _clocks(workers: int, values: list[Any], now: float) -> Liveness:
    clocks = 0
    leading = False
    for value in values:
        try:
            beat = json.loads(value)
            at = float(beat["at"])
        except (ValueError, TypeError, KeyError):  # gone between the scan and the read, or not ours
            continue
        if now - at <= LEADER_TTL:
            clocks += 1
            leading = leading or bool(beat.get("leading"))
    return Liveness(workers, clocks, leading)
