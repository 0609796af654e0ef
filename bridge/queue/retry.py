"""What every bridge job does with a failure: give up with a reason, or come back later.

Kept apart from the jobs themselves so that orders, stock, prices and statuses share one retry policy:
transient failures are retried with growing delays for at least ``BRIDGE_RETRY_HOURS`` (72 by default),
measured from the first attempt; after that, and for every permanent failure, the job lands in RQ's
failed registry (the dead-letter list) with a reason a person can act on.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.registry import ScheduledJobRegistry

from bridge.errors import Cause, PermanentError, TransientError
from bridge.queue import deadletters
from bridge.queue.work import Work
from bridge.runtime import Runtime

log = logging.getLogger("bridge.jobs")


def give_up(error: PermanentError) -> PermanentError:
    """Mark the running job as not to be retried by RQ's crash-retry, and return the error to raise.

    The job is about to become a dead letter; older dead letters of the same order (or kind of update) go,
    so the failed list holds one line per thing that needs a person's fix.
    """
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
        try:
            dropped = deadletters.drop_superseded(job.connection, job.id)
        except RedisError as exc:  # the new dead letter matters more than tidying the old ones
            log.warning("older dead letters of %s not removed: %s", job.id, exc)
        else:
            for old in dropped:
                log.info("dead letter %s replaced by the newer failure %s", old, job.id)
    return error


def retry_delay(runtime: Runtime, error: TransientError, attempt: int) -> float:
    """Busy peers are retried soon; unavailable ones back off long, never before the peer said it may help."""
    settings = runtime.settings
    if error.cause is Cause.BUSY:
        delay = backoff(
            attempt, min_delay=min(1.0, settings.retry_min_delay), max_delay=min(30.0, settings.retry_max_delay)
        )
    else:
        delay = backoff(attempt, min_delay=settings.retry_min_delay, max_delay=settings.retry_max_delay)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def schedule_retry(runtime: Runtime, work: Work, *, error: TransientError, attempt: int, first_seen: float) -> float:
    """Schedule the next attempt at ``work``, or give up once the retry window is over. Returns the delay."""
    waited = time.time() - first_seen
    if waited > runtime.settings.retry_hours * 3600:
        raise give_up(
            PermanentError(f"gave up after {waited / 3600:.1f} h of retries; last failure: {error}")
        ) from None
    delay = retry_delay(runtime, error, attempt)
    work.put(  # through RQ's scheduler (``ScheduledJobRegistry``)
        runtime.queue(work.queue),
        timeout=runtime.settings.job_timeout,
        kwargs={"attempt": attempt + 1, "first_seen": first_seen},
        delay=delay,
    )
    # The sync log shows what waits and why; this log line is the operation's one line.
    kind, entity = work.job_kind, work.entity
    runtime.telemetry.job_outcome(
        kind, "retry", entity=kind, entity_id=entity, error=str(error),
        detail=f"{error.cause}; attempt {attempt + 1}, next in {delay:.1f}s", log_line=False,
    )  # fmt: skip
    log.info("%s %s: %s (%s); attempt %d, next in %.1f s", kind, entity, error, error.cause, attempt + 1, delay)
    return delay


def backoff(attempt: int, *, min_delay: float, max_delay: float, jitter: float = 0.2) -> float:
    """Doubling delay with jitter, so that a crowd of retries does not hit a recovering peer at once."""
    base = min(max_delay, min_delay * (2 ** min(attempt, 30)))
    return base * (1 + random.uniform(-jitter, jitter))


def bring_forward(queue: Queue) -> int:
    """Make every scheduled retry of ``queue`` due now: the peer they waited for is back.

    Used when the 1C circuit closes, so an outage drains at full speed instead of at each job's back-off.
    """
    registry = ScheduledJobRegistry(queue=queue)
    job_ids = registry.get_job_ids()
    if not job_ids:
        return 0
    due = int(datetime.now(UTC).timestamp())  # RQ's scheduler compares whole seconds
    queue.connection.zadd(registry.key, {job_id: due for job_id in job_ids}, xx=True)
    return len(job_ids)
