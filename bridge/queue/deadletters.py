"""Dead letters: jobs that gave up, shown in words and put back on their queue once the cause is fixed.

RQ's ``FailedJobRegistry`` of each bridge queue *is* the dead-letter list (a job stays there for a year,
``bridge.queue.FAILURE_TTL``). This module turns its entries into what a person needs: what the job was
about, why it failed (the last line of the stored traceback, which for the bridge's own ``PermanentError``
is a sentence written for people), when, and after how many attempts. ``bridge failed …`` and
``/admin/failed`` both use it.

A retried job starts afresh: its attempt counter and retry window (``attempt``, ``first_seen``) are reset
and its crash-retry budget restored, or a job that gave up after 72 hours of 1C downtime would give up
again at the first hiccup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from bridge.queue import CRASH_RETRY, QUEUES
from bridge.queue.work import HOLD_JOB, ORDER_JOB, JobId, current_function, job_kind_of

RESTART_KWARGS = ("attempt", "first_seen")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))(?:: ?(.*))?$")
# Our own errors say it all in their message; a foreign exception keeps its class name, which is the clue.
_OWN_ERRORS = ("PermanentError", "TransientError", "ShopPermanentError", "ShopTransientError", "BridgeError")


@dataclass(frozen=True)
class DeadLetter:
    """One failed job as a person sees it. ``when`` is the failure time (UTC) when RQ recorded one."""

    id: str
    queue: str
    what: str
    why: str
    when: datetime | None
    attempts: int
    entity: str | None = None
    entity_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "what": self.what,
            "why": self.why,
            "when": self.when.isoformat(timespec="seconds").replace("+00:00", "Z") if self.when else None,
            "attempts": self.attempts,
            "entity": self.entity,
            "entity_id": self.entity_id,
        }


@dataclass
class RetryReport:
    requeued: list[DeadLetter] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": [d.as_dict() for d in self.requeued], "missing": self.missing}


def _order(job: Job) -> tuple[str, str, str]:
    args = list(job.args)
    order_id = str(args[0]) if args else "?"
    action = str(args[1]) if len(args) > 1 else str(job.kwargs.get("action", "save"))
    return "order", order_id, f"order {order_id} ({action})"


def _held(job: Job) -> tuple[str, str, str]:
    kind = str(job.args[0])
    return "updates", kind, f"{kind} updates held until the mappings are fixed"


# How to name the work of a job, by its job kind; other jobs get a generic description.
DESCRIBERS: dict[str, Callable[[Job], tuple[str, str, str]]] = {ORDER_JOB.name: _order, HOLD_JOB.name: _held}


def describe(job: Job) -> tuple[str | None, str | None, str]:
    """(entity, entity id, what) of a job, e.g. ("order", "300", "order 300 (save)"), whichever path of its
    function (today's or an earlier release's) the job names."""
    func = job.func_name or "?"
    kind = job_kind_of(func)
    describer = DESCRIBERS.get(kind.name) if kind is not None else None
    if describer is not None:
        try:
            return describer(job)
        except Exception:  # a job stored by an older version with other arguments
            pass
    try:
        shown = ", ".join(str(a) for a in job.args)[:120]
    except Exception:
        shown = "?"
    return None, None, f"{func.rsplit('.', 1)[-1]}({shown})"


def why(exc_string: str | None) -> str:
    """The last line of a stored traceback, without the module path of the bridge's own error classes."""
    lines = [line.strip() for line in (exc_string or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no reason recorded"
    last = lines[-1]
    match = _EXCEPTION_LINE.match(last)
    if match is None:
        return last
    name, message = match.group(1), match.group(2) or ""
    if name in _OWN_ERRORS and message:
        return message
    return f"{name}: {message}" if message else name


def _failure(job: Job) -> tuple[str, datetime | None]:
    result: Result | None = job.latest_result()
    if result is not None and result.type == Result.Type.FAILED:
        return why(result.exc_string), job.ended_at or result.created_at
    return "no reason recorded", job.ended_at


def _letter(job: Job, queue: str) -> DeadLetter:
    entity, entity_id, what = describe(job)
    reason, when = _failure(job)
    attempt = job.kwargs.get("attempt", 0) if isinstance(job.kwargs, dict) else 0
    return DeadLetter(
        id=job.id,
        queue=queue,
        what=what,
        why=reason,
        when=when,
        attempts=int(attempt) + 1 if isinstance(attempt, int) else 1,
        entity=entity,
        entity_id=entity_id,
    )


def _missing(job_id: str, queue: str) -> DeadLetter:
    return DeadLetter(job_id, queue, "?", "the job's data has expired or was deleted", None, 0)


def list_failed(redis: Redis, queues: Iterable[str] = QUEUES, *, limit: int = 1000) -> list[DeadLetter]:
    """Every dead letter of the bridge's queues, newest first (at most ``limit``)."""
    letters: list[DeadLetter] = []
    for queue in queues:
        registry = FailedJobRegistry(queue, connection=redis)
        job_ids = registry.get_job_ids(0, limit - 1, desc=True)
        for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=redis), strict=True):
            letters.append(_letter(job, queue) if job is not None else _missing(job_id, queue))
    letters.sort(key=lambda d: d.when.timestamp() if d.when else 0.0, reverse=True)
    return letters[:limit]


def _find(redis: Redis, job_id: str, queues: Sequence[str]) -> str | None:
    for queue in queues:
        if redis.zscore(FailedJobRegistry(queue, connection=redis).key, job_id) is not None:
            return queue
    return None


def retry(redis: Redis, job_ids: Iterable[str], queues: Sequence[str] = QUEUES) -> RetryReport:
    """Put these failed jobs back on their queues, each as if it had never been tried."""
    report = RetryReport()
    for job_id in dict.fromkeys(job_ids):
        queue = _find(redis, job_id, queues)
        if queue is None:
            report.missing.append(job_id)
            continue
        registry = FailedJobRegistry(queue, connection=redis)
        try:
            job = Job.fetch(job_id, connection=redis)
        except NoSuchJobError:
            registry.remove(job_id)  # an entry whose job expired: nothing left to run
            report.missing.append(job_id)
            continue
        letter = _letter(job, queue)
        if isinstance(job.kwargs, dict) and any(k in job.kwargs for k in RESTART_KWARGS):
            job.kwargs = {k: v for k, v in job.kwargs.items() if k not in RESTART_KWARGS}
        if job.func_name and current_function(job.func_name) != job.func_name:
            job.func_name = current_function(job.func_name)  # an earlier release's path: runs as today's
        job.retries_left = CRASH_RETRY.max
        # Noted before the job is back in its queue: a worker starts it within milliseconds, and the order's
        # history must read "requeued" before what the re-run did. (If someone else requeued it a moment
        # ago, the note is still true.)
        _note_retry(redis, letter)
        try:
            registry.requeue(job)
        except InvalidJobOperation:  # someone else retried it a moment ago
            report.missing.append(job_id)
            continue
        report.requeued.append(letter)
    return report


def _note_retry(redis: Redis, letter: DeadLetter) -> None:
    """Leave a trace in the sync log, so the history of an order shows that a person replayed it."""
    from bridge.ops import metrics
    from bridge.ops.synclog import Entry
    from bridge.ops.telemetry import Telemetry

    entry = Entry(
        "bridge",
        "retry",
        "requeued",
        letter.entity,
        letter.entity_id,
        detail=f"{letter.id} put back; it failed: {letter.why}",
    )
    Telemetry(redis).record(entry, counters=lambda pipe: metrics.inc(pipe, "bridge_dead_letters_retried"))


def retry_all(redis: Redis, queues: Sequence[str] = QUEUES) -> RetryReport:
    job_ids = [job_id for queue in queues for job_id in FailedJobRegistry(queue, connection=redis).get_job_ids()]
    return retry(redis, job_ids, queues)


def drop_superseded(redis: Redis, job_id: str, queues: Iterable[str] = QUEUES) -> list[str]:
    """Remove older dead letters of the same work as ``job_id`` (same kind and entity); their ids.

    One order that 1C refuses must be one line in ``bridge failed list``, however many jobs tried it: a
    webhook and a poll can each queue a job for the same order version, and both fail for the same reason.
    Every job fetches the current state when it runs, so replaying the newest failure replays them all.
    Job ids say what a job works for (``bridge.queue.work.JobId``).
    """
    target = JobId.parse(job_id)
    if target is None:
        return []
    dropped: list[str] = []
    for queue in queues:
        registry = FailedJobRegistry(queue, connection=redis)
        for other in registry.get_job_ids():
            if other != job_id and JobId.parse(other) == target:
                registry.remove(other, delete_job=True)
                dropped.append(other)
    return dropped


def count(redis: Redis, queues: Iterable[str] = QUEUES) -> int:
    return sum(int(redis.zcard(FailedJobRegistry(q, connection=redis).key)) for q in queues)


def format_table(letters: Sequence[DeadLetter]) -> list[str]:
    """Aligned lines for a terminal: id, what, attempts, when, why."""
    rows = [("ID", "WHAT", "ATTEMPTS", "FAILED AT (UTC)", "WHY")]
    for d in letters:
        when = d.when.strftime("%Y-%m-%d %H:%M:%S") if d.when else "-"
        rows.append((d.id, d.what, str(d.attempts), when, d.why))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]


@dataclass
class DiscardReport:
    discarded: list[DeadLetter] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"discarded": [d.as_dict() for d in self.discarded], "missing": self.missing}


DISCARD_REASON_MAX = 500


def discard(redis: Redis, job_ids: Iterable[str], reason: str, queues: Sequence[str] = QUEUES) -> DiscardReport:
    """Drop these dead letters for good (a test order that can never be fixed), each with a person's reason
    kept in the sync log: the order's history then ends in "discarded: <reason>", not in silence. Nothing
    changes in the shop or in 1C."""
    report = DiscardReport()
    reason = " ".join(reason.split())[:DISCARD_REASON_MAX] or "no reason given"
    for job_id in dict.fromkeys(job_ids):
        queue = _find(redis, job_id, queues)
        if queue is None:
            report.missing.append(job_id)
            continue
        registry = FailedJobRegistry(queue, connection=redis)
        job = Job.fetch_many([job_id], connection=redis)[0]
        letter = _letter(job, queue) if job is not None else _missing(job_id, queue)
        if not redis.zrem(registry.key, job_id):  # someone else retried or discarded it a moment ago
            report.missing.append(job_id)
            continue
        if job is not None:
            job.delete(remove_from_queue=False)
        _note_discard(redis, letter, reason)
        report.discarded.append(letter)
    return report


def discard_all(redis: Redis, reason: str, queues: Sequence[str] = QUEUES) -> DiscardReport:
    job_ids = [job_id for queue in queues for job_id in FailedJobRegistry(queue, connection=redis).get_job_ids()]
    return discard(redis, job_ids, reason, queues)


def _note_discard(redis: Redis, letter: DeadLetter, reason: str) -> None:
    from bridge.ops import metrics
    from bridge.ops.synclog import Entry
    from bridge.ops.telemetry import Telemetry

    entry = Entry(
        "bridge",
        "discard",
        "discarded",
        letter.entity,
        letter.entity_id,
        detail=f"{letter.id} dropped by hand ({reason}); it had failed: {letter.why}",
    )
    Telemetry(redis).record(entry, counters=lambda pipe: metrics.inc(pipe, "bridge_dead_letters_discarded"))
