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
counts as serving nothing: a dead letter waits for a person (``bridge failed retry``), and a marker whose
only job is one (a job abandoned more often than its crash retries allow) is cleared, so that later events
queue a job of their own. Order jobs a running batch took off the queue (``bridge.orders.claims``) serve
their markers while the batch renews its claims.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from redis import Redis

from bridge import keys
from bridge.queue import QUEUES
from bridge.queue.markers import finish_pending, read_pending
from bridge.queue.work import JOB_KINDS, JobId, JobKind
from bridge.runtime import Runtime

log = logging.getLogger("bridge.queue.orphans")


def _texts(values: Iterable[bytes | str]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def known_job_ids(redis: Redis) -> set[str]:
    """Every job id in a queue, its intermediate list, or the scheduled, started or failed registry, or
    held by a live order batch (``bridge:order:claims``)."""
    live, failed = job_ids_by_fate(redis)
    return live | failed


def job_ids_by_fate(redis: Redis) -> tuple[set[str], set[str]]:
    """(ids of jobs that will run or are running, ids of dead letters)."""
    pipe = redis.pipeline(transaction=False)
    for name in QUEUES:
        pipe.lrange(f"rq:queue:{name}", 0, -1)
        pipe.lrange(f"rq:queue:{name}:intermediate", 0, -1)
        for registry in ("scheduled", "wip"):
            pipe.zrange(f"rq:{registry}:{name}", 0, -1)
    pipe.zrangebyscore(keys.ORDER_CLAIMS, time.time(), "+inf")
    for name in QUEUES:
        pipe.zrange(f"rq:failed:{name}", 0, -1)
    answers = pipe.execute()
    live_lists, failed_lists = answers[: -len(QUEUES)], answers[-len(QUEUES) :]
    # StartedJobRegistry ("wip") holds "<job id>:<execution id>"; job ids never contain ":".
    live = {member.partition(":")[0] for members in live_lists for member in _texts(members)}
    failed = {member for members in failed_lists for member in _texts(members)}
    return live, failed


def _served(job_ids: set[str]) -> set[JobId]:
    """(job kind, entity) of every piece of work some job of ``job_ids`` works for, read from the ids."""
    return {parsed for parsed in map(JobId.parse, job_ids) if parsed is not None}


class OrphanSweep:
    """Remembers the markers found orphaned at the previous sweep; re-queues those found orphaned again."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.suspects: set[tuple[JobKind, str]] = set()

    def __call__(self) -> int:
        """One sweep; returns how many jobs were queued again."""
        redis = self.rt.redis
        live_ids, failed_ids = job_ids_by_fate(redis)
        served, dead = _served(live_ids), _served(failed_ids)
        orphaned: set[tuple[JobKind, str]] = set()
        for kind in (k for k in JOB_KINDS if k.swept):
            for key in _texts(redis.scan_iter(match=kind.marker_prefix + "*", count=1000)):
                entity = key.removeprefix(kind.marker_prefix)
                work = JobId(kind.name, JobId.safe(entity))
                if work in served:
                    continue
                if work in dead:
                    self._release_dead(kind, entity)
                else:
                    orphaned.add((kind, entity))
        confirmed, self.suspects = orphaned & self.suspects, orphaned - self.suspects
        return sum(1 for kind, entity in sorted(confirmed, key=_marker) if self._requeue(kind, entity))

    def _release_dead(self, kind: JobKind, entity: str) -> None:
        """A marker whose only job is a dead letter: the job was abandoned (its worker killed, or it crashed)
        more often than ``CRASH_RETRY`` allows, and RQ filed it as failed with the marker still set. The dead
        letter waits for a person (replaying it syncs the newest state); the marker must go, or every later
        event for this order or kind would collapse into a job that never runs again."""
        marker = kind.marker(entity)
        _action, token = read_pending(self.rt.redis, marker)
        if token is None or not finish_pending(self.rt.redis, marker, token):
            return
        self.rt.telemetry.job_outcome(
            kind.name,
            "failed",
            entity=kind.name,
            entity_id=entity,
            error="its job was abandoned too often (worker killed or crashed) and is a dead letter now",
        )
        log.warning(
            "%s %s: its job ended as a dead letter after repeated crashes; later events queue anew", kind.name, entity
        )

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
