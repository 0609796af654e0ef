"""The flush job: sends what is pending for one kind of update (stock, prices, order statuses) to the shop.

The web intake stores each accepted body in ``bridge:inbox:<kind>`` and queues this job with
``enqueue_once`` (marker ``bridge:flush:pending:<kind>``), so any number of pushes collapse into one
pending flush. The job:

1. takes the kind's lock, so no key is written by two workers at once (the rate limit itself is shared
   by every ``ShopClient`` through the leaky bucket in Redis);
2. splits the waiting bodies, oldest first, into entries coalesced per key in ``bridge:pending:<kind>``
   (``bridge.updates.inbox``, under the kind's split lock, which the exchange import takes too before it
   stages), so the latest value of each key is all that is left to send;
3. reads the pending entries in key order (so one product's entries share lookups), a window of ``WINDOW`` at a
   time, in rounds of ``ROUND``, skips what the shop already has, and hands the rest to the kind's writer
   (``UpdateKind.apply``, in ``bridge.updates.kinds``), which looks up, writes in batches of 50 and settles
   every entry in ``Outcomes``;
4. settles each round at once (compare-and-delete), so a crash repeats at most one round;
5. finishes the marker only if no push arrived meanwhile, else goes round again ("latest state wins").

Transient trouble leaves the entries pending and reschedules the job (``schedule_retry``, the shared
policy); a refusal no item can get past (a method the shop lacks) sends it to the dead-letter list with the
reason, the entries still pending for the retry a person starts after fixing it. A big backlog is worked
off in slices of ``SLICE`` seconds (at most half the job timeout): the job queues its own continuation rather
than being killed, and hands the worker back to work that waits for it (an exchange import).

``sweep`` (run by the clock) queues a flush for any kind that has waiting bodies or pending entries but no
flush pending, which is what a crash between the intake's two steps (store the body, queue the job) would
leave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bridge import keys, runtime
from bridge.errors import Cause, PermanentError, TransientError
from bridge.queue.locked import locked_job
from bridge.queue.markers import finish_pending, read_pending
from bridge.queue.retry import give_up, schedule_retry
from bridge.queue.work import FLUSH_JOB, flush_work
from bridge.runtime import Runtime
from bridge.updates import accounting, holds, inbox, pending
from bridge.updates.kinds import KINDS
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry

log = logging.getLogger("bridge.updates.flush")

# Keys per round. A round's lookups are one ``batch`` of list commands, each answering up to 50 rows, so one
# request can read 2,500 rows: rounds of 2,500 keys need the fewest lookup requests, and leave fewer half-
# filled write batches. Rounds of 1,000 cost a 50,000-item push 13 % more shop requests than the least
# possible, rounds of 2,500 about 3 % (bench/stock.py, BENCHMARKS.md).
ROUND = 2500
# Keys held at a time (``pending.scan_smallest``): a few rounds, in key order, so a slice has work in hand and the
# worker's memory does not grow with a backlog.
WINDOW = 4 * ROUND
# A job works for at most this share of its timeout, then queues its own continuation (a 50,000-item
# backlog at 2 requests a second takes longer than any sensible job timeout).
BUDGET_SHARE = 0.5
MIN_BUDGET = 10.0
# And for at most this many seconds (after its first round) before it hands the worker back: its continuation
# goes to the end of its queue, so an exchange import queued meanwhile (which a worker takes first) waits for one
# slice, not for a whole flush of a catalogue. Rounds are unchanged, so the requests are the same.
SLICE = 2.0


def marker_key(kind: str) -> str:
    return FLUSH_JOB.marker(kind)


def queue_flush(rt: Runtime, kind: str) -> bool:
    """Queue a flush of ``kind`` unless one is pending; True when a job was created."""
    return rt.enqueuer.enqueue_once(flush_work(kind))


def sweep(rt: Runtime) -> int:
    """Queue a flush for every kind with pending entries and no flush pending. Returns how many were queued."""
    queued = 0
    for kind in KINDS:
        waiting = rt.redis.exists(pending.pending_key(kind), inbox.inbox_key(kind))
        orphaned = waiting and not rt.redis.exists(marker_key(kind))
        if orphaned and queue_flush(rt, kind):
            queued += 1
            log.warning(
                "%s: %d pending updates and %d bodies had no flush queued; queued one",
                kind, pending.count(rt.redis, kind), inbox.count(rt.redis, kind),
            )  # fmt: skip
    return queued


def flush(kind: str, *, attempt: int = 0, first_seen: float | None = None) -> str:
    """Send the pending updates of ``kind`` to the shop. Returns what happened, in a few words."""
    if kind not in KINDS:
        raise give_up(PermanentError(f"unknown kind of update {kind!r}; expected one of {', '.join(KINDS)}"))
    rt = runtime.current()
    first_seen = first_seen or time.time()
    lock = keys.UPDATES_LOCK.format(kind=kind)
    busy = f"{kind} updates are being flushed by another worker"
    with locked_job(rt, lock, flush_work(kind), first_seen=first_seen, busy=busy) as locked:
        if not locked:
            return "deferred"
        return _flush_locked(rt, kind, attempt, first_seen)


def _flush_locked(rt: Runtime, kind: str, attempt: int, first_seen: float) -> str:
    deadline = time.monotonic() + min(SLICE, max(MIN_BUDGET, rt.settings.job_timeout * BUDGET_SHARE))
    marker = marker_key(kind)
    total = Outcomes(kind)
    waiting: TransientError | None
    while True:
        _action, token = read_pending(rt.redis, marker)
        try:
            inbox.split(rt.redis, kind)
            state = _drain(rt, kind, deadline, total)
        except TransientError as error:
            state, waiting = "waiting", error
        except PermanentError as error:
            log.error("%s flush gave up: %s", kind, error)
            raise give_up(error) from None
        else:
            waiting = total.first_wait()
        if total.applied:  # progress: the retry window starts afresh
            attempt, first_seen = 0, time.time()
        if state == "fatal" and total.fatal is not None:
            log.error("%s flush gave up: %s", kind, total.fatal)
            raise give_up(total.fatal)
        if state == "waiting" and waiting is not None:
            schedule_retry(rt, flush_work(kind), error=waiting, attempt=attempt, first_seen=first_seen)
            return f"retry ({waiting.cause}); {_summary(total)}"
        if state == "out of time":
            _continue(rt, kind)
            log.info("%s flush: %s; continuing in a new job", kind, _summary(total))
            return f"continued; {_summary(total)}"
        if finish_pending(rt.redis, marker, token):
            holds.tidy(rt.redis, kind)
            summary = _summary(total)
            log.info("%s flush: %s", kind, summary)
            return summary


def _drain(rt: Runtime, kind: str, deadline: float, total: Outcomes) -> str:
    """Work through everything pending, round by round: "done", "waiting", "fatal" or "out of time"."""
    stalled = False
    first = True
    after: str | None = None
    while True:
        pairs = pending.scan_smallest(rt.redis, kind, WINDOW, after)
        for start in range(0, len(pairs), ROUND):
            if not first and time.monotonic() > deadline:  # every job does at least one round
                return "out of time"
            first = False
            outcomes = run_round(rt, kind, pairs[start : start + ROUND])
            total.merge(outcomes)
            if outcomes.fatal is not None:
                return "fatal"
            if outcomes.waiting:
                stalled = True
                if any(error.cause is not Cause.BUSY for _, error in outcomes.waiting):
                    return "waiting"  # the shop is in trouble: the other rounds would only fail too
        if len(pairs) < WINDOW:
            return "waiting" if stalled else "done"
        after = pairs[-1][0]


def run_round(rt: Runtime, kind: str, pairs: Sequence[tuple[str, str]]) -> Outcomes:
    """One round: filter, hand to the kind's module, settle in Redis. Raises what the module raised."""
    entries, unreadable = pending.load(rt.redis, kind, pairs)
    if unreadable:
        log.warning("%s: %d pending entries could not be read and were removed", kind, len(unreadable))
        pending.discard(rt.redis, kind, unreadable)
    outcomes = Outcomes(kind)
    todo: list[Entry] = []
    for entry in entries:
        if entry.ts is not None and entry.applied_ts is not None and entry.ts < entry.applied_ts:
            outcomes.supersede([entry])  # older than what the shop already has
        elif entry.unchanged:
            outcomes.keep_unchanged([entry])  # the shop already has exactly this
        else:
            todo.append(entry)
    try:
        KINDS[kind].apply(rt, todo, outcomes)
    finally:
        pending.settle(rt.redis, kind, outcomes.settled())  # what is settled stays settled, even on a raise
        outcomes.held = holds.hold(rt.redis, kind, outcomes.held)
        accounting.account(rt, kind, outcomes)
    return outcomes


def _continue(rt: Runtime, kind: str) -> None:
    """Queue the rest of a big backlog as a new job at once (the marker stays: no other flush is queued)."""
    work = flush_work(kind)
    work.put(rt.queue(work.queue), timeout=rt.settings.job_timeout)


def _summary(total: Outcomes) -> str:
    return (
        f"{len(total.applied)} applied with {total.written} writes, {len(total.unchanged)} unchanged, "
        f"{len(total.dropped)} dropped, {len(total.held)} held, {len(total.superseded)} superseded, "
        f"{len(total.waiting)} waiting"
    )
