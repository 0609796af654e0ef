"""One call per operation: the sync log entry, the metrics and the log line, written together.

Jobs and peer clients say *what happened* (``record``, or the ready-made ``shop_call`` / ``onec_call`` /
``job_outcome``) and this module decides where it goes. The Redis writes are one pipelined round trip
without a transaction, so the hot path pays well under a millisecond; a failure to record never fails the
operation itself (the work matters more than its record).

Which entity an operation concerns is carried in a context variable (``about``): the order job sets it
once, and every shop call made inside (through the ``ShopClient.on_call`` hook, which knows nothing of
orders) is filed under that order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError

from bridge.ops import metrics, synclog
from bridge.ops.synclog import Entry

if TYPE_CHECKING:
    from bridge.onec.answers import Answer
    from bridge.shop.client import CallRecord

log = logging.getLogger("bridge.ops")

_about: ContextVar[tuple[str, str] | None] = ContextVar("bridge_entity", default=None)
QUIET_OUTCOMES = {"ok", "delivered", "unchanged", "skipped", "queued", "requeued", "sent", "polled", "deferred"}
FAILED_OUTCOMES = {"failed", "permanent"}


@contextlib.contextmanager
def about(entity: str, entity_id: str) -> Iterator[None]:
    """File every operation inside the block under ``entity`` ``entity_id`` (unless it names its own)."""
    token = _about.set((entity, str(entity_id)))
    try:
        yield
    finally:
        _about.reset(token)


def current_entity() -> tuple[str, str] | None:
    return _about.get()


_process: tuple[int, str] = (0, "")


def process_name() -> str:
    """host:pid, so an entry says which process did it (two clocks, many workers); computed once per pid."""
    global _process
    pid = os.getpid()
    if _process[0] != pid:
        _process = (pid, f"{socket.gethostname()}:{pid}")
    return _process[1]


def outcome_word(result: str) -> str:
    """The first word of a job's result text ("skipped: status …" → "skipped"), for a metric label."""
    word = result.split(":", 1)[0].split("(", 1)[0].strip().split(" ", 1)[0]
    return word or "unknown"


class Telemetry:
    """Writes operations to the sync log and the metrics of one Redis, and logs one line for each."""

    def __init__(self, redis: Redis, *, max_entries: int = 100_000) -> None:
        self.redis = redis
        self.max_entries = max_entries

    def record(
        self,
        entry: Entry,
        *,
        counters: Callable[[Any], None] | None = None,
        log_line: bool = True,
    ) -> None:
        """Append ``entry`` (filed under the current entity if it names none), update the metrics
        ``counters`` queues on the same pipeline, and log one line unless the caller already did."""
        if entry.entity is None and (context := current_entity()) is not None:
            entry = replace(entry, entity=context[0], entity_id=context[1])
        if entry.process is None:
            entry = replace(entry, process=process_name())
        if log_line:
            self._log(entry)
        try:
            pipe = self.redis.pipeline(transaction=False)
            synclog.append(pipe, entry, max_entries=self.max_entries)
            if counters is not None:
                counters(pipe)
            pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not record %s %s in the sync log: %s", entry.peer, entry.operation, type(exc).__name__)

    def _log(self, entry: Entry) -> None:
        subject = f" {entry.entity} {entry.entity_id}" if entry.entity and entry.entity_id else ""
        took = f" in {entry.duration:.3f}s" if entry.duration is not None else ""
        words = "; ".join(w for w in (entry.detail, entry.error) if w)
        fields = {
            k: v
            for k, v in {
                "peer": entry.peer,
                "operation": entry.operation,
                "outcome": entry.outcome,
                "entity": entry.entity,
                "entity_id": entry.entity_id,
                "duration_ms": round(entry.duration * 1000, 1) if entry.duration is not None else None,
            }.items()
            if v is not None
        }
        level = (
            logging.INFO
            if entry.outcome in QUIET_OUTCOMES
            else logging.ERROR
            if entry.outcome in FAILED_OUTCOMES
            else logging.WARNING
        )
        log.log(
            level,
            "%s %s%s: %s%s%s",
            entry.peer,
            entry.operation,
            subject,
            entry.outcome,
            took,
            f" ({words})" if words else "",
            extra={"extra_fields": fields},
        )

    # -- the operations the bridge knows ---------------------------------------------------------------------

    def peer_call(
        self,
        peer: str,
        operation: str,
        outcome: str,
        duration: float,
        *,
        error: str | None = None,
        detail: str | None = None,
        entity: str | None = None,
        entity_id: str | None = None,
        log_line: bool = True,
    ) -> None:
        def counters(pipe: Any) -> None:
            metrics.inc(pipe, "bridge_peer_calls", (peer, operation, outcome))
            metrics.observe(pipe, "bridge_peer_call_duration_seconds", (peer, operation), duration)

        entry = Entry(peer, operation, outcome, entity, entity_id, duration, error, detail)
        self.record(entry, counters=counters, log_line=log_line)

    def shop_call(self, call: CallRecord) -> None:
        """The ``ShopClient.on_call`` hook: one HTTP request to the shop (each retry is one)."""
        status = f"HTTP {call.status}" if call.status is not None else "no answer"
        self.peer_call(
            "shop",
            call.method,
            call.outcome,
            call.duration,
            detail=status,
            error=f"shop error {call.code}" if call.code else None,
        )

    def onec_call(
        self, answer: Answer, duration: float, *, entity: str, entity_id: str, operation: str = "orders"
    ) -> None:
        """One call to 1C. ``OnecClient`` logs its own line with the peer's words; this adds the record."""
        error = None if answer.delivered else answer.reason
        self.peer_call(
            "1c",
            operation,
            answer.outcome.value,
            duration,
            error=error,
            detail=f"HTTP {answer.status}" if answer.status is not None else None,
            entity=entity,
            entity_id=entity_id,
            log_line=False,
        )

    def job_outcome(
        self,
        job: str,
        result: str,
        *,
        entity: str,
        entity_id: str,
        operation: str | None = None,
        error: str | None = None,
        detail: str | None = None,
        duration: float | None = None,
        log_line: bool = True,
    ) -> None:
        """How a job run ended: delivered, unchanged, skipped …, retry, failed (metric label: first word)."""
        outcome = outcome_word(result)
        if detail is None and result != outcome:
            detail = result
        entry = Entry("bridge", operation or f"{job}.sync", outcome, entity, entity_id, duration, error, detail)
        self.record(entry, counters=lambda pipe: metrics.inc(pipe, "bridge_jobs", (job, outcome)), log_line=log_line)


# -- the web process (async Redis): what the peers sent us ------------------------------------------------------


async def record_async(
    redis: Any, entry: Entry, *, max_entries: int, counters: Callable[[Any], None] | None = None
) -> None:
    """``Telemetry.record`` for ``redis.asyncio`` clients, without the log line (handlers log their own).

    Never raises: the request was already answered or accepted, a lost record must not turn it into a 500.
    """
    if entry.process is None:
        entry = replace(entry, process=process_name())
    try:
        pipe = redis.pipeline(transaction=False)
        synclog.append(pipe, entry, max_entries=max_entries)
        if counters is not None:
            counters(pipe)
        await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("could not record %s %s in the sync log: %s", entry.peer, entry.operation, type(exc).__name__)


async def inbound_push(
    redis: Any,
    *,
    kind: str,
    accepted: int,
    batch: str,
    max_entries: int = 100_000,
    also: Callable[[Any], None] | None = None,
) -> None:
    """1C pushed ``accepted`` items to ``/1c/<kind>``: the items counter and one sync-log entry, one round trip
    (with whatever ``also`` queues on the same pipeline)."""
    entry = Entry("1c", f"push.{kind}", "accepted", detail=f"{accepted} items, batch {batch}")

    def counters(pipe: Any) -> None:
        metrics.inc(pipe, "bridge_onec_items", (kind,), accepted)
        if also is not None:
            also(pipe)

    await record_async(redis, entry, max_entries=max_entries, counters=counters)


async def inbound_refused(redis: Any, *, kind: str, status: int, error: str, message: str, max_entries: int) -> None:
    """A push to ``/1c/<kind>`` was refused (400, 413, 415): one sync-log entry and the problems counter."""
    entry = Entry("1c", f"push.{kind}", "refused", error=f"{status} {error}: {message}")
    await record_async(
        redis,
        entry,
        max_entries=max_entries,
        counters=lambda pipe: metrics.inc(pipe, "bridge_update_problems", (kind, "refused", error)),
    )
