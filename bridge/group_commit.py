"""Group commit: the writes of concurrent callers go to Redis together, one round trip for all that wait.

A webhook must be answered fast, and a round trip per request was a large share of the intake's CPU
(BENCHMARKS.md). So the first caller starts a writer task, and whatever piles up while its write is on the
wire goes in the next write, which the same task sends as soon as the previous one returned. Nothing waits
for a timer: an idle process writes each item at once, a busy one many per round trip.

Two writers use it: the web intake's enqueue (``bridge.queue.enqueue``: each request waits until its item
is in Redis) and the tally of shop events (``bridge.web.event_accounting``: counts that nobody waits for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("bridge.group_commit")

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Calls ``write`` with every item that waits (at most ``max_items`` per call), one call at a time.

    ``write`` returns one result per item, in order. ``submit`` waits for its item's result: it resolves only
    after the call that held the item returned, so "answered" still means "written". If a call fails, each
    of its waiters gets the error (as if it had failed alone) and the writer carries on with the rest.
    ``add`` queues an item nobody waits for: ``write`` handles its failures itself (keeps what it must, returns
    a result that says so); an error it raises for such items only reaches the log.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_items: int | None = None,
        name: str = "group-commit",
    ) -> None:
        self._write = write
        self.max_items = max_items
        self.name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result] | None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else waits; its result once the call that held it returned."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        return await future

    def add(self, item: Item) -> None:
        """Queue ``item`` for the next call without waiting for it; never blocks."""
        self._waiting.append((item, None))
        self._start()

    async def settled(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) until the writer has nothing left: a write in flight at shutdown."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer}, timeout=timeout)

    def _start(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all(), name=self.name)

    async def _write_all(self) -> None:
        """Write until nothing waits; a short-lived task, so nothing lingers between bursts."""
        while self._waiting:
            cut = len(self._waiting) if self.max_items is None else self.max_items
            group, self._waiting = self._waiting[:cut], self._waiting[cut:]
            try:
                results = await self._write([item for item, _future in group])
            except Exception as error:  # every waiter of this call learns it; the task carries on with the rest
                waiters = [future for _item, future in group if future is not None and not future.done()]
                for waiter in waiters:
                    waiter.set_exception(error)
                if not waiters:  # nobody would ever see it
                    log.error("%s: a write failed", self.name, exc_info=error)
                continue
            except BaseException:  # cancelled (shutdown): nobody may wait for ever on a writer that is gone
                for _item, future in group + self._waiting:
                    if future is not None:
                        future.cancel()
                self._waiting = []
                raise
            for (_item, future), result in zip(group, results, strict=True):
                if future is not None and not future.done():
                    future.set_result(result)
