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

from bridge.queue import QUEUES
from bridge.queue.markers import read_pending
from bridge.queue.work import JOB_KINDS, JobId, JobKind
from bridge.runtime import Runtime

log = logging.getLogger("bridge.queue.orphans")


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


def _served(job_ids: set[str]) -> set[JobId]:
    """(job kind, entity) of every piece of work some known job works for, read from the job ids."""
    return {parsed for parsed in map(JobId.parse, job_ids) if parsed is not None}


class OrphanSweep:
    """Remembers the markers found orphaned at the previous sweep; re-queues those found orphaned again."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.suspects: set[tuple[JobKind, str]] = set()

    def __call__(self) -> int:
        """One sweep; returns how many jobs were queued again."""
        redis = self.rt.redis
        served = _served(known_job_ids(redis))
        orphaned: set[tuple[JobKind, str]] = set()
        for kind in (k for k in JOB_KINDS if k.swept):
            for key in _texts(redis.scan_iter(match=kind.marker_prefix + "*", count=1000)):
                entity = key.removeprefix(kind.marker_prefix)
                if JobId(kind.name, JobId.safe(entity)) not in served:
                    orphaned.add((kind, entity))
        confirmed, self.suspects = orphaned & self.suspects, orphaned - self.suspects
        return sum(1 for kind, entity in sorted(confirmed, key=_marker) if self._requeue(kind, entity))

    def _requeue(self, kind: JobKind, entity: str) -> bool:
        action, _token = read_pending(self.rt.redis, kind.marker(entity))
        if action is None:  # finished meanwhile
            return False
        work = kind.work(entity, action)
        work.put(self.rt.queue(work.queue), timeout=self.rt.settings.job_timeout)
        log.warning(
            "%s %s: its job had vanished (a worker or Redis died as it was taken); queued it again", kind.name, entity
        )
        return True


def _marker(orphan: tuple[JobKind, str]) -> str:
    kind, entity = orphan
    return kind.marker(entity)
