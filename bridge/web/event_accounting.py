"""The accounting of ``POST /shop/events``: every answer counted by event and outcome, the events that matter
filed in the sync log, and the shop never waiting for either.

The handler tells ``EventAccounting`` what it decided (accepted, ignored, refused) with what it knows; the
counts go to the ``bridge_shop_events`` metric and the entries to the sync log (``bridge.ops``). Neither path
costs a request a Redis round trip of its own (BENCHMARKS.md, webhook intake):

- **Accepted** (nearly every event): counted and filed by the very script call that queues the event's job.
  ``EventNotes`` gives the enqueue script its hook ``note(shared, own)`` (``bridge.queue.enqueue.NoteWriter``),
  so a 200 means the event already shows in ``bridge log`` and ``/metrics``; one INFO line per script call
  names every order in it, each event's own line is DEBUG.
- **Everything else** (ignored, refused, 503) is rare: added to an in-process tally that one task writes out
  (``EventTally``, a group commit). Refusals are only counted, so unauthenticated noise cannot push
  history out of the capped sync log; an ignored event gets its entry and an INFO line.

``tests/test_fast_paths.py`` holds the script's writes to what ``synclog.append`` and ``metrics.inc`` write.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from dataclasses import replace
from enum import StrEnum
from typing import Any

from redis.exceptions import RedisError

from bridge.group_commit import GroupCommit
from bridge.ops import metrics, synclog
from bridge.ops.synclog import Entry
from bridge.ops.telemetry import process_name
from bridge.queue.enqueue import NoteWriter
from bridge.scripts import LUA_APPEND_ENTRY, pack_blob

log = logging.getLogger("bridge.web.shop")
record_log = logging.getLogger("bridge.ops")  # where every recorded operation's line goes (bridge.ops.telemetry)

METRIC = "bridge_shop_events"
UNKNOWN_EVENT = "unknown"  # the event label of a refusal: its body's event name is nobody's to trust
MAX_PENDING = 10_000  # sync-log entries kept while Redis is away
CLOSE_WAIT = 5.0
_EVENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class Outcome(StrEnum):
    """The ``outcome`` label of ``bridge_shop_events``: what the intake did with an event."""

    ACCEPTED = "accepted"  # 200, its job queued (or an already pending one will pick it up)
    IGNORED = "ignored"  # 200, an event the bridge has no use for
    REJECTED = "rejected"  # 400, 413, 415: a body the bridge cannot read
    UNAUTHORIZED = "unauthorized"  # 401: wrong or missing application token
    UNAVAILABLE = "unavailable"  # 503: not configured, or Redis away


class EventAccounting:
    """What the handler calls, once per answer; one per web process (``bridge.web.app``'s lifespan)."""

    def __init__(self, redis: Any, *, max_entries: int) -> None:
        self._notes = EventNotes(max_entries=max_entries)
        self.notes = self._notes.writer  # pass with ``note(…)`` to ``Enqueuer.enqueue_once_async``
        self.tally = EventTally(redis, max_entries=max_entries)

    def note(self, event: str, order_id: str) -> bytes:
        """The accepted event's record, for the enqueue script to write with its job (``notes=self.notes``)."""
        return self._notes.note(event, order_id)

    def accepted(self, event: str, order_id: str) -> None:
        """The event's job is queued, and its script counted and filed it (``note``): only its DEBUG line."""
        if log.isEnabledFor(logging.DEBUG):
            fields = {"peer": "shop", "operation": "event", "event": event, "outcome": Outcome.ACCEPTED.value}
            fields |= {"entity": "order", "entity_id": order_id}
            log.debug("shop event %s order %s: accepted", event, order_id, extra={"extra_fields": fields})

    def ignored(self, event: str) -> None:
        """An event after a good token, of no use to the bridge: counted, filed and logged."""
        event = event[:64] if _EVENT_NAME.match(event[:64]) else "other"  # label values only of our vocabulary
        fields = {"peer": "shop", "operation": "event", "event": event, "outcome": Outcome.IGNORED.value}
        log.info("shop event %s: %s", event, Outcome.IGNORED.value, extra={"extra_fields": fields})
        self.tally.add(event, Outcome.IGNORED, Entry("shop", "event", Outcome.IGNORED, detail=event))

    def refused(self, outcome: Outcome) -> None:
        """A request answered 4xx or 503: only counted, under the event ``unknown``."""
        self.tally.add(UNKNOWN_EVENT, outcome)

    async def flushed(self) -> bool:
        """This process's counts written, so a scrape right after an event shows it; False if Redis is away."""
        return await self.tally.flushed()

    async def aclose(self) -> None:
        await self.tally.aclose()


# -- accepted events: written by the enqueue script -----------------------------------------------------------


class EntryTemplate:
    """Sync-log entries that differ only in their entity id and detail (one per order), for a script that
    writes many of them in one call.

    What they share is packed once (``shared``: ``synclog.script_log``, the entity streams' key without the
    id, the field/value pairs); each entry then adds only its id and detail (``own``). ``_NOTE_LUA`` joins the
    two and runs what ``synclog.append`` would run for the whole entry.
    """

    def __init__(self, entry: Entry, *, max_entries: int) -> None:
        if entry.entity is None or entry.entity_id is not None or entry.detail is not None:
            raise ValueError("a template names the entity kind and leaves its id and the detail open")
        prefix = synclog.entity_key(entry.entity, "")
        if synclog.entity_key(entry.entity, "1") != prefix + "1":
            raise ValueError("the entity stream's key does not end with the entity id")
        pairs = [text for pair in synclog.stream_fields(entry).items() for text in pair]
        self.shared = [*synclog.script_log(max_entries), prefix.encode(), *(text.encode() for text in pairs)]

    @staticmethod
    def own(entity_id: str, detail: str) -> list[bytes]:
        """One entry's part: its entity id and its detail."""
        return [entity_id.encode(), synclog.clip(detail).encode()]


# ``note(shared, own)``, the enqueue script's hook: one event's count and its sync-log entries.
# ``shared``: the counter's hash key, then ``EntryTemplate.shared`` (from index 2: the log's key, its cap, the
# entity streams' cap and TTL, the entity streams' key prefix, then field, value, ...); ``own``: the counter
# field, then ``EntryTemplate.own`` (the order id, the detail). 'id' and 'detail' are the field names
# ``synclog.stream_fields`` gives them.
_NOTE_LUA = (
    LUA_APPEND_ENTRY
    + """
local function note(shared, own)
  redis.call('HINCRBY', shared[1], own[1], 1)
  local fields, n = {}, 0
  for i = 7, #shared do n = n + 1; fields[n] = shared[i] end
  fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 'id', own[2], 'detail', own[3]
  append_entry(shared, 2, shared[6] .. own[2], fields)
end
"""
)


@functools.lru_cache(maxsize=256)
def _counter_field(event: str) -> bytes:
    """The ``bridge_shop_events`` field of (event, accepted); event names are few (the handler's ``ACTIONS``)."""
    return metrics.counter_slot(METRIC, (event, Outcome.ACCEPTED))[1].encode()


class EventNotes:
    """The record of each accepted event, written by the intake's enqueue script in the same call as the
    event's job: the count (event, accepted), and the entry (shop, event, accepted) in the global log and the
    order's own stream. ``writer`` goes to the enqueue, ``note`` gives one event's part."""

    def __init__(self, *, max_entries: int) -> None:
        self.template = EntryTemplate(
            Entry("shop", "event", Outcome.ACCEPTED, "order", process=process_name()), max_entries=max_entries
        )
        counter_key = metrics.counter_slot(METRIC, (UNKNOWN_EVENT, Outcome.ACCEPTED))[0]  # one hash per metric
        self.writer = NoteWriter(_NOTE_LUA, pack_blob([counter_key.encode(), *self.template.shared]), self.written)

    def note(self, event: str, order_id: str) -> bytes:
        """The packed ``own`` part of one event's note."""
        return pack_blob([_counter_field(event), *self.template.own(order_id, event)])

    @staticmethod
    def written(order_ids: list[str], created: int) -> None:
        """One log line per script call, with the ids of every order in it (a string: the log filter would
        turn a list into one anyway)."""
        ids = ", ".join(order_ids)
        record_log.info(
            "shop events accepted for %d order(s), %d new job(s): order %s",
            len(order_ids),
            created,
            ids,
            extra={
                "extra_fields": {
                    "peer": "shop",
                    "operation": "event",
                    "outcome": Outcome.ACCEPTED.value,
                    "entity": "order",
                    "entity_ids": ids,
                    "events": len(order_ids),
                    "jobs_created": created,
                }
            },
        )


# -- every other answer: the tally ------------------------------------------------------------------------------

# One answer to count: (event, outcome, its sync-log entry or None); None alone asks for a write of what is kept.
_Count = tuple[str, str, Entry | None] | None


class EventTally:
    """Counts by (event, outcome) and sync-log entries, written by one task (``bridge.group_commit``):
    whatever piled up while the previous write was in flight goes in the next single pipeline.

    While Redis is away the counts are kept (entries up to ``MAX_PENDING``) and written with the next event.
    """

    def __init__(self, redis: Any, *, max_entries: int) -> None:
        self.redis = redis
        self.max_entries = max_entries
        self._kept_counts: Counter[tuple[str, str]] = Counter()
        self._kept_entries: list[Entry] = []
        self._process = process_name()
        self._commit: GroupCommit[_Count, bool] = GroupCommit(self._write, name="event-tally")

    def add(self, event: str, outcome: str, entry: Entry | None = None) -> None:
        """Count one answer (and file its entry); never waits."""
        if entry is not None and not entry.process:
            entry = replace(entry, process=self._process)
        self._commit.add((event, outcome, entry))

    async def flushed(self) -> bool:
        """Write everything counted so far; False when Redis is away (then it is kept for the next write)."""
        return await self._commit.submit(None)

    async def aclose(self) -> None:
        """Write what is left (at shutdown), waiting a little for a write in flight."""
        await self._commit.settled(CLOSE_WAIT)
        await self.flushed()

    async def _write(self, batch: list[_Count]) -> list[bool]:
        """One pipeline for the batch and whatever an earlier failed write kept; True per item once written."""
        counts, entries = self._kept_counts, self._kept_entries
        for count in batch:
            if count is not None:
                event, outcome, entry = count
                counts[(event, outcome)] += 1
                if entry is not None:
                    entries.append(entry)
        if counts or entries:
            try:
                pipe = self.redis.pipeline(transaction=False)
                for (event, outcome), n in counts.items():
                    metrics.inc(pipe, METRIC, (event, outcome), n)
                synclog.append_many(pipe, entries, max_entries=self.max_entries)  # one argument per entry
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self._kept_entries = entries[-MAX_PENDING:]
                log.warning("shop event counts not written yet (%s); kept for the next write", type(exc).__name__)
                return [False] * len(batch)
            self._kept_counts, self._kept_entries = Counter(), []
        return [True] * len(batch)
