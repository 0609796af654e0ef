"""The web process's own tally of shop events, written to Redis by one task (group commit).

A webhook must be answered fast, and a Redis round trip per event just to count it cost a tenth of the
intake's CPU. So the handler only adds to this in-memory tally, and one task writes it out: whatever piled
up while its previous write was in flight goes in the next single pipeline. An idle intake thus writes
each event at once; a busy one pays one round trip for many events. The sync-log entries of ignored
events ride along in the same pipeline. Accepted events do not come here at all: the script that queues
their job counts and files them in the same call (``bridge.ops.telemetry.EventNotes``).

While Redis is away the counts are kept (entries up to ``MAX_PENDING``) and written with the next event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import replace
from typing import Any

from redis.exceptions import RedisError

from bridge.ops import metrics, synclog
from bridge.ops.synclog import Entry
from bridge.ops.telemetry import process_name

log = logging.getLogger("bridge.web.tally")

MAX_PENDING = 10_000
CLOSE_WAIT = 5.0


class EventTally:
    """Counts by (event, outcome) and sync-log entries, flushed by a task of the running event loop."""

    def __init__(self, redis: Any, *, max_entries: int) -> None:
        self.redis = redis
        self.max_entries = max_entries
        self._counts: Counter[tuple[str, str]] = Counter()
        self._entries: list[Entry] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._process = process_name()

    def add(self, event: str, outcome: str, entry: Entry | None = None) -> None:
        """Count one event (and keep its entry); never waits."""
        self._counts[(event, outcome)] += 1
        if entry is not None:
            self._entries.append(entry if entry.process else replace(entry, process=self._process))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="event-tally")

    async def _drain(self) -> None:
        """Write until nothing is left; a short-lived task, so nothing lingers between bursts of events."""
        while (self._counts or self._entries) and await self.flushed():
            pass

    async def flushed(self) -> bool:
        """Write everything counted so far; False when Redis is away (then it is kept for the next write)."""
        async with self._lock:
            counts, entries = self._counts, self._entries
            if not counts and not entries:
                return True
            self._counts, self._entries = Counter(), []
            try:
                pipe = self.redis.pipeline(transaction=False)
                for (event, outcome), n in counts.items():
                    metrics.inc(pipe, "bridge_shop_events", (event, outcome), n)
                synclog.append_many(pipe, entries, max_entries=self.max_entries)  # one argument per entry
                await pipe.execute()
            except (RedisError, OSError) as exc:
                self._counts.update(counts)
                self._entries = (entries + self._entries)[-MAX_PENDING:]
                log.warning("shop event counts not written yet (%s); kept for the next write", type(exc).__name__)
                return False
            return True

    async def aclose(self) -> None:
        """Write what is left (at shutdown), waiting a little for a write in flight."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=CLOSE_WAIT)
        await self.flushed()
