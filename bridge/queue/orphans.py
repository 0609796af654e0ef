"""Pending work whose RQ job vanished: queue the job again.

A pending marker (``bridge:order:pending:<id>``, ``bridge:flush:pending:<kind>``) promises that a job will
carry the work through, and it makes ``enqueue_once`` queue nothing more for that order or kind. RQ can
lose the job in one window: a worker that listens on more than one queue (every bridge worker does) takes a
job with LPOP/BLPOP, because RQ's reliable hand-over (LMOVE into an intermediate list, cleaned up by
maintenance) only serves single-queue workers. If the worker is killed, or Redis goes away, between that pop
and the job's entry in ``StartedJobRegistry``, the job is in no list at all. The marker would then block
every later event for that order: lost for good, not delayed.

``OrphanSweep`` (run by the clock's leader every ``BRIDGE_MAINTENANCE_INTERVAL``, the pace at which workers
look for abandoned jobs) gathers every job id RQ still knows (queued, scheduled,
started, intermediate, failed) and looks for markers no job serves. A marker found orphaned twice in a row
(so not a job in the milliseconds between pop and registry) gets its job back. A job in the failed registry
counts as serving its marker: a dead letter waits for a person (``bridge failed retry``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis

from bridge import keys
from bridge.queue import CRASH_RETRY, FAILURE_TTL, ORDERS_QUEUE, QUEUES, SHOP_QUEUE
from bridge.queue.enqueue import new_job_id
from bridge.queue.markers import read_pending
from bridge.runtime import Runtime

log = logging.getLogger("bridge.queue.orphans")

SYNC_ORDER = "bridge.orders.job.sync_order"
FLUSH = "bridge.updates.flush.flush"


def _texts(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def known_job_ids(redis: Redis) -> set[str]:
    """Every job id in a queue, its intermediate list, or the scheduled, started or failed registry."""
    pipe = redis.pipeline(transaction=False)
    for name in QUEUES:
        pipe.lrange(f"rq:queue:{name}", 0, -1)
        pipe.lrange(f"rq:queue:{name}:intermediate", 0, -1)
        for registry in ("scheduled", "wip", "failed"):
            pipe.zrange(f"rq:{registry}:{name}", 0, -1)
    ids: set[str] = set()
    for members in pipe.execute():
        # StartedJobRegistry ("wip") holds "<job id>:<execution id>"; job ids never contain ":".
        ids.update(member.partition(":")[0] for member in _texts(members))
    return ids


def _served(job_ids: set[str]) -> tuple[set[str], set[str]]:
    """(order ids, update kinds) that some known job works for, read from the job ids' ``<kind>-<entity>-``."""
    orders: set[str] = set()
    kinds: set[str] = set()
    for job_id in job_ids:
        head, _, _tail = job_id.rpartition("-")  # drop the random tail
        prefix, _, entity = head.partition("-")
        if prefix == "order":
            orders.add(entity)
        elif prefix == "flush":
            kinds.add(entity)
    return orders, kinds


class OrphanSweep:
    """Remembers the markers found orphaned at the previous sweep; re-queues those found orphaned again."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.suspects: set[str] = set()

    def __call__(self) -> int:
        """One sweep; returns how many jobs were queued again."""
        redis = self.rt.redis
        orders, kinds = _served(known_job_ids(redis))
        orphaned: set[str] = set()
        order_prefix = keys.ORDER_PENDING.format(order_id="")
        for key in _texts(redis.scan_iter(match=order_prefix + "*", count=1000)):
            if key.removeprefix(order_prefix) not in orders:
                orphaned.add(key)
        flush_prefix = keys.UPDATES_FLUSH.format(kind="")
        for key in _texts(redis.scan_iter(match=flush_prefix + "*", count=100)):
            if key.removeprefix(flush_prefix) not in kinds:
                orphaned.add(key)
        confirmed, self.suspects = orphaned & self.suspects, orphaned - self.suspects
        requeued = sum(1 for marker in sorted(confirmed) if self._requeue(marker, order_prefix, flush_prefix))
        return requeued

    def _requeue(self, marker: str, order_prefix: str, flush_prefix: str) -> bool:
        action, _token = read_pending(self.rt.redis, marker)
        if action is None:  # finished meanwhile
            return False
        if marker.startswith(order_prefix):
            order_id = marker.removeprefix(order_prefix)
            queue, func, args, kind, entity = ORDERS_QUEUE, SYNC_ORDER, (order_id, action), "order", order_id
        else:
            entity = marker.removeprefix(flush_prefix)
            queue, func, args, kind = SHOP_QUEUE, FLUSH, (entity,), "flush"
        self.rt.queue(queue).enqueue(
            func,
            *args,
            job_id=new_job_id(kind, entity),
            job_timeout=self.rt.settings.job_timeout,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            retry=CRASH_RETRY,
        )
        log.warning(
            "%s %s: its job had vanished (a worker or Redis died as it was taken); queued it again", kind, entity
        )
        return True
