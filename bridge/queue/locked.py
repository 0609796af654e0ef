"""One job at a time per order or kind of update: the lock a bridge job works under.

Two jobs for the same work can run at once (a webhook's and a scheduled retry's, or a continuation and a
crash-retry), and two workers must never write the same order or the same keys at the same time. The lock
has a short lease, renewed while the job works (``bridge.locks.renewed``), so a killed worker's lock frees
itself within a minute (``bridge.worker``). A job that finds the lock taken does not wait for it: it
schedules itself again shortly, as a "busy" retry, so no event is dropped and no worker sits idle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import LockError

from bridge.errors import Cause, TransientError
from bridge.locks import renewed
from bridge.queue.retry import schedule_retry
from bridge.queue.work import Work
from bridge.runtime import Runtime

log = logging.getLogger("bridge.queue.locked")


@contextmanager
def locked_job(rt: Runtime, lock_key: str, work: Work, *, first_seen: float, busy: str) -> Iterator[bool]:
    """Hold ``lock_key`` for the body and yield True; or, when another worker holds it, schedule ``work``
    again (``busy`` says why, for the sync log) and yield False: the job then returns "deferred"."""
    settings = rt.settings
    lock = rt.redis.lock(lock_key, timeout=settings.job_lease, thread_local=False)
    if not lock.acquire(blocking=False):
        error = TransientError(busy, cause=Cause.BUSY)
        schedule_retry(rt, work, error=error, attempt=0, first_seen=first_seen)
        yield False
        return
    try:
        with renewed(lock, settings.job_heartbeat):
            yield True
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("%s %s: the lock expired before the job finished", work.job_kind, work.entity)
