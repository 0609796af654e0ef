"""Taking due order jobs out of the queue, so that one job can fetch their orders together.

After a 1C outage hundreds of order jobs are due at once. A running order job takes up to ``limit`` more of
them off the orders queue in one script call (``claim``): a job taken this way is in no RQ list, so no other
worker starts it, and its order is worked exactly once. Each taken job is then *claimed*: its id sits in
``bridge:order:claims`` scored with the claim's expiry, renewed while the taker works (``Renewer``) and
removed when the order is settled (``done``) or the job is given back to the queue (``give_back``).

A taker killed mid-batch leaves claims that stop being renewed. Once expired, the next order job to take
work takes them over first (their jobs still exist, their markers still promise them), and the orphan sweep
(``bridge.queue.orphans``) counts only live claims as serving a marker, so it is the net below that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from rq import Queue
from rq.job import Job

from bridge import keys
from bridge.queue.work import ORDER_JOB

log = logging.getLogger("bridge.orders.claims")

# KEYS[1] the orders queue's list, KEYS[2] the claims zset. ARGV[1] how many at most, ARGV[2] the claim's
# lease in seconds, ARGV[3] the job id prefix of order jobs, ARGV[4] how far down the queue to look.
# Expired claims (a dead taker's) come first. Returns the ids taken; their claims expire a lease from now.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local limit = tonumber(ARGV[1])
local out = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
if #out < limit then
  local prefix = ARGV[3]
  for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)) do
    if #out >= limit then break end
    if string.sub(id, 1, #prefix) == prefix and redis.call('LREM', KEYS[1], 1, id) == 1 then
      out[#out + 1] = id
    end
  end
end
local expiry = now + tonumber(ARGV[2])
for _, id in ipairs(out) do redis.call('ZADD', KEYS[2], expiry, id) end
return out
"""

# KEYS[1] the claims zset; ARGV[1] the lease; ARGV[2..] the ids still claimed. Only live claims are renewed.
_RENEW = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
return #ARGV - 1
"""

QUEUE_WINDOW = 500  # how far down the queue a taker looks for order jobs


@dataclass
class Claimed:
    """One order job taken off the queue: its id, what it works for, and its place in the retry window."""

    job_id: str
    order_id: str
    action: str
    attempt: int
    first_seen: float | None
    lock: Lock | None = None


def claim(redis: Redis, queue: Queue, limit: int, lease: float) -> list[Claimed]:
    """Take up to ``limit`` due order jobs (expired claims first); jobs whose data is gone are dropped."""
    if limit <= 0:
        return []
    raw = redis.eval(_CLAIM, 2, queue.key, keys.ORDER_CLAIMS, limit, lease, f"{ORDER_JOB.name}-", QUEUE_WINDOW)
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in raw]
    if not ids:
        return []
    taken: list[Claimed] = []
    gone: list[str] = []
    for job_id, job in zip(ids, Job.fetch_many(ids, connection=redis), strict=True):
        parsed = _parse(job_id, job)
        if parsed is None:
            gone.append(job_id)
        else:
            taken.append(parsed)
    if gone:
        redis.zrem(keys.ORDER_CLAIMS, *gone)
    return taken


def _parse(job_id: str, job: Job | None) -> Claimed | None:
    if job is None:
        return None
    try:
        args = list(job.args)
        kwargs = job.kwargs if isinstance(job.kwargs, dict) else {}
        order_id = str(args[0])
        action = str(args[1]) if len(args) > 1 else str(kwargs.get("action", "save"))
        attempt = int(kwargs.get("attempt", 0) or 0)
        first_seen = kwargs.get("first_seen")
        return Claimed(job_id, order_id, action, attempt, float(first_seen) if first_seen else None)
    except Exception:  # a job stored by another release with other arguments: leave it to RQ
        return None


def give_back(redis: Redis, queue: Queue, claims: Sequence[Claimed]) -> None:
    """Put these jobs back at the head of the queue, as if never taken: each then runs on its own."""
    if not claims:
        return
    pipe = redis.pipeline(transaction=True)
    pipe.zrem(keys.ORDER_CLAIMS, *(c.job_id for c in claims))
    for claimed in claims:
        pipe.lpush(queue.key, claimed.job_id)
    pipe.execute()


def done(redis: Redis, claims: Sequence[Claimed]) -> None:
    """The work of these jobs is settled (delivered, skipped, or rescheduled as a job of its own): delete them.

    RQ would delete them the same way after running them, since bridge jobs keep no result."""
    if not claims:
        return
    pipe = redis.pipeline(transaction=True)
    pipe.zrem(keys.ORDER_CLAIMS, *(c.job_id for c in claims))
    for claimed in claims:
        pipe.delete(Job.key_for(claimed.job_id))
    pipe.execute()


class Renewer:
    """Keeps a batch's order locks and claims alive while it works, like ``bridge.locks.renewed`` for one lock.

    A daemon thread renews every ``every`` seconds and dies with the process, so a killed taker's locks and
    claims run out by themselves within a lease."""

    def __init__(self, redis: Redis, lease: float, every: float) -> None:
        self.redis = redis
        self.lease = lease
        self.every = every
        self._claims: dict[str, Claimed] = {}
        self._mutex = threading.Lock()

    def add(self, claimed: Claimed) -> None:
        with self._mutex:
            self._claims[claimed.job_id] = claimed

    def remove(self, claimed: Claimed) -> None:
        with self._mutex:
            self._claims.pop(claimed.job_id, None)

    def renew(self) -> None:
        with self._mutex:
            held = list(self._claims.values())
        if not held:
            return
        try:
            self.redis.eval(_RENEW, 1, keys.ORDER_CLAIMS, self.lease, *(c.job_id for c in held))
        except RedisError as exc:
            log.warning("order claims not renewed: %s", exc)
        for claimed in held:
            if claimed.lock is None:
                continue
            try:
                claimed.lock.reacquire()
            except LockError:
                log.warning("lock of order %s expired before its batch finished it", claimed.order_id)
            except RedisError as exc:
                log.warning("lock of order %s not renewed: %s", claimed.order_id, exc)

    @contextmanager
    def running(self) -> Iterator[Renewer]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.every):
                self.renew()

        thread = threading.Thread(target=loop, name="renew order claims", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(self.every + 5)
