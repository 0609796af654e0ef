"""What a bridge job is: its queue, its function, its arguments, its pending marker and the id RQ files it under.

Every way a job gets into RQ (the collapsing enqueue of the web and of polling, a job's retry or
continuation, the orphan sweep, a dead letter put back) starts from a ``Work``. So each fact about a job is
written once, here: the function's dotted path (``JobKind``), the options RQ gets (``create_job``) and the
id format (``JobId``).

**Stored jobs outlive releases.** RQ stores a job's function as a dotted path, dead letters are kept for a
year and retries wait in the scheduler, so a path once written must keep resolving. ``LEGACY_FUNCTIONS``
maps each earlier path to the one it stands for (the modules in ``bridge.sync`` re-export the functions);
whatever reads a stored job's function goes through ``current_function``, and a replayed job gets today's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from rq import Queue
from rq.job import Job

from bridge import keys
from bridge.queue import CRASH_RETRY, EXCHANGE_QUEUE, FAILURE_TTL, ORDERS_QUEUE, SHOP_QUEUE

SYNC_ORDER = "bridge.orders.job.sync_order"
FLUSH = "bridge.updates.flush.flush"
IMPORT_EXCHANGE_FILE = "bridge.exchange.importing.import_file"
FLUSH_ACTION = "flush"  # a flush has one action: send whatever is pending
RELEASE = "bridge.updates.holds.release"  # held updates sent on once a person fixed the mappings

# Paths that jobs stored by earlier releases name → the function each stands for now.
LEGACY_FUNCTIONS = {
    "bridge.sync.orders.sync_order": SYNC_ORDER,
    "bridge.sync.updates.flush": FLUSH,
}


def current_function(path: str) -> str:
    """The dotted path a stored job's function has today."""
    return LEGACY_FUNCTIONS.get(path, path)


def create_job(
    queue: Queue,
    func: str,
    args: tuple[Any, ...],
    *,
    job_id: str,
    timeout: int,
    kwargs: dict[str, Any] | None = None,
) -> Job:
    """RQ's ``Job`` for a bridge job, not yet saved: the one place that says what RQ keeps of a job.

    No result (the return value is a word for the log), a dead letter for a year, and ``CRASH_RETRY`` for a
    job killed with its worker (failures the job understands it reschedules itself).
    """
    return queue.create_job(
        func,
        args=args,
        kwargs=kwargs or {},
        job_id=job_id,
        timeout=timeout,
        result_ttl=0,
        failure_ttl=FAILURE_TTL,
        retry=CRASH_RETRY,
    )


class JobId(NamedTuple):
    """The readable part of a job id, ``<job kind>-<entity>-<12 hex>``: what the job works for.

    The orphan sweep and the dead-letter list read it back, so they need not fetch every job's data. The
    entity is in the form the id holds (RQ allows only ``[A-Za-z0-9_-]``; see ``new``).
    """

    job_kind: str
    entity: str

    @staticmethod
    def new(job_kind: str, entity: str) -> str:
        """A fresh id; the random tail keeps every enqueue distinct."""
        return f"{job_kind}-{JobId.safe(entity)}-{os.urandom(6).hex()}"  # 48 random bits, as uuid4().hex[:12] gave

    @staticmethod
    def safe(entity: str) -> str:
        """``entity`` as a job id holds it."""
        if entity.isascii() and entity.isalnum():  # order ids: skip the per-character filter
            return entity[:64]
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in entity)[:64]

    @classmethod
    def parse(cls, job_id: str) -> JobId | None:
        """(job kind, entity) of an id ``new`` made; None for any other id."""
        head, _, tail = job_id.rpartition("-")
        job_kind, _, entity = head.partition("-")
        if len(tail) != 12 or not job_kind or not entity or not _is_hex(tail):
            return None
        return cls(job_kind, entity)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True, slots=True)
class Work:
    """One piece of work as RQ gets it: ``func(*args)`` on ``queue``, collapsed by ``marker`` holding
    ``action``, with ids that say it works on ``entity`` (an order id, a kind of update) for ``job_kind``.

    Built per request on the web's fast path: keep it a plain record.
    """

    queue: str
    func: str
    args: tuple[Any, ...]
    marker: str
    action: str
    job_kind: str
    entity: str

    def new_job_id(self) -> str:
        """A new id on every call: each job RQ gets for this work is a job of its own."""
        return JobId.new(self.job_kind, self.entity)

    def put(
        self, queue: Queue, *, timeout: int, kwargs: dict[str, Any] | None = None, delay: float | None = None
    ) -> Job:
        """Queue a job for this work straight into RQ, leaving the marker alone: now, or ``delay`` seconds from
        now through RQ's scheduler. For a job's own retry or continuation and for the orphan sweep, whose
        marker already promises this job; new work goes through ``Enqueuer.enqueue_once``."""
        job = create_job(queue, self.func, self.args, job_id=self.new_job_id(), timeout=timeout, kwargs=kwargs)
        if delay is None:
            return queue.enqueue_job(job)
        return queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=max(delay, 0.0)))


@dataclass(frozen=True)
class JobKind:
    """One of the bridge's jobs: where it runs, what it calls, and how its marker and arguments follow from its
    entity. ``with_action``: the action is the job's second argument (an order's save or cancel)."""

    name: str
    queue: str
    func: str
    marker_prefix: str
    with_action: bool
    swept: bool = True  # its markers are looked after by the orphan sweep (a job kind without markers: False)

    def marker(self, entity: str) -> str:
        return self.marker_prefix + entity

    def work(self, entity: str, action: str) -> Work:
        args = (entity, action) if self.with_action else (entity,)
        return Work(self.queue, self.func, args, self.marker(entity), action, self.name, entity)


ORDER_JOB = JobKind("order", ORDERS_QUEUE, SYNC_ORDER, keys.ORDER_PENDING.format(order_id=""), with_action=True)
FLUSH_JOB = JobKind("flush", SHOP_QUEUE, FLUSH, keys.UPDATES_FLUSH.format(kind=""), with_action=False)
# On its own queue, which workers take before the flushes: 1C's exchange node waits on each import, while a
# flush waits on nobody (see ``bridge.worker.WORKER_QUEUES``).
EXCHANGE_JOB = JobKind(
    "exchange", EXCHANGE_QUEUE, IMPORT_EXCHANGE_FILE, keys.EXCHANGE_IMPORT_PENDING.format(entity=""), with_action=False
)
# The import of one file of 1C's order documents (type=sale), beside the catalogue's (same states, own job).
IMPORT_SALE_FILE = "bridge.exchange.sale.importing.import_documents"
SALE_IMPORT_JOB = JobKind(
    "saleimport", SHOP_QUEUE, IMPORT_SALE_FILE, keys.SALE_IMPORT_PENDING.format(entity=""), with_action=False
)
# Held updates of one kind and reason: filed straight as a dead letter, run when a person retries it (no marker:
# ``bridge.updates.holds`` keeps one letter per reason itself).
HOLD_JOB = JobKind("hold", SHOP_QUEUE, RELEASE, keys.UPDATES_HELD_LETTERS, with_action=True, swept=False)
JOB_KINDS = (ORDER_JOB, FLUSH_JOB, EXCHANGE_JOB, SALE_IMPORT_JOB, HOLD_JOB)
_BY_FUNCTION = {kind.func: kind for kind in JOB_KINDS}


# A 1C status the exchange could not map, held as a dead letter until statuses.toml names it and the job is
# retried (``bridge failed retry``); its action is the status as 1C wrote it. Queued once, never collapsed.
HELD_STATUS = "bridge.exchange.sale.changes.apply_held_status"
HELD_STATUS_JOB = JobKind("status", SHOP_QUEUE, HELD_STATUS, keys.SALE_HELD_STATUS, with_action=True)


def job_kind_of(func: str | None) -> JobKind | None:
    """The job kind a stored job's function (today's path or an earlier one) runs; None for a foreign job."""
    return _BY_FUNCTION.get(current_function(func)) if func else None


def order_work(order_id: str, action: str) -> Work:
    """A sync of this order: the same for webhooks, polling and the CLI."""
    return ORDER_JOB.work(order_id, action)


def flush_work(kind: str) -> Work:
    """A flush of this kind of update (stock, prices, order statuses)."""
    return FLUSH_JOB.work(kind, FLUSH_ACTION)


def exchange_import_work(entity: str) -> Work:
    """The import of one uploaded file of an exchange session (entity: ``<session id>_<file id>``)."""
    return EXCHANGE_JOB.work(entity, "import")


def sale_import_work(entity: str) -> Work:
    """The import of one uploaded file of 1C's order documents (entity: ``<session id>_<file id>``)."""
    return SALE_IMPORT_JOB.work(entity, "import")


def hold_work(kind: str, reason_digest: str) -> Work:
    """Sending on the updates of ``kind`` held for one reason (its digest): one dead letter per reason, so the
    entity in its id names both."""
    return Work(
        HOLD_JOB.queue,
        HOLD_JOB.func,
        (kind, reason_digest),
        HOLD_JOB.marker_prefix.format(kind=kind),
        reason_digest,
        HOLD_JOB.name,
        f"{kind}_{reason_digest}",
    )
