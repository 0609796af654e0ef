"""Putting work into RQ so that nothing is lost and nothing is done twice for no reason.

The shop fires several events for one order save, and 1C repeats itself. Each piece of work therefore has a
*pending marker* in Redis (``bridge:order:pending:<id>`` holding ``<action>:<seq>`` of the newest event).
``enqueue_once`` sets the marker and, only when there was none, creates the RQ job — both in one Lua call,
so a crash cannot leave a marker without a job, and the web process answers after one round trip.

The job clears the marker only if it is still the value it started from (``finish_pending``); an event that
arrived while the job ran changes the marker, and the job goes round once more. That is "latest state
wins" without a second job per order.

The RQ job itself comes from ``bridge.queue.template``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError
from rq import Queue

from bridge import keys
from bridge.queue import make_queue
from bridge.queue.template import JobTemplate, flatten, recorded_enqueue
from bridge.queue.work import Work
from bridge.scripts import LUA_SPLIT, pack_blob

log = logging.getLogger("bridge.queue")

# KEYS[1] the sequence, KEYS[2..] one pending marker per item.
# ARGV[1] the job template: RQ's recorded commands for one job as (argc, argv...) runs; ARGV[2] the template
# positions (1-based) of its holes; then ARGV[k+1] for the item of KEYS[k]: its action followed by, with a
# template, the values of the holes, or, without one (ARGV[1] empty), the item's own recorded commands.
# Each ARGV is a list in the form written by ``pack_blob`` ("<length>:<bytes>" repeated): a few arguments per
# item instead of ~50 keep the client's packing cheap, and the form is binary-safe (RQ's job data is zlib).
# With notes (``NoteWriter``), the items are followed by the notes' shared part and then one note per item,
# in the items' order; each item's note is written whether its event created a job or collapsed into one.
# Returns {the first item's seq, one '1' (created) or '0' (collapsed) per item}: the sequence numbers of one call
# are consecutive (one INCRBY), and two values are far cheaper for redis-py's pure-Python parser to read than
# an integer per item (its reply was ~5 % of the intake's CPU). Items are applied in order, so two for one
# marker collapse as if they had come one after the other.
_ENQUEUE_BODY = """
-- (argc, argv...) runs → {{argv table, argc, {{argv slot, hole index}...}}...}; the tables are built once per
-- call and only their holes are overwritten per item (redis.call does not keep them).
local function commands(run, first, hole)
  local out, p = {}, first
  while p <= #run do
    local n = tonumber(run[p])
    local cmd, fills = {}, {}
    for q = p + 1, p + n do
      cmd[q - p] = run[q]
      local x = hole[q]
      if x then fills[#fills + 1] = {q - p, x + 1} end
    end
    out[#out + 1] = {cmd, n, fills}
    p = p + n + 1
  end
  return out
end
local hole = {}
for x, position in ipairs(split(ARGV[2])) do hole[tonumber(position)] = x end
local template = commands(split(ARGV[1]), 1, hole)
local items = #KEYS - 1
local shared = ARGV[items + 3]
if shared then shared = split(shared) end
local created = {}
local first = redis.call('INCRBY', KEYS[1], items) - items + 1
for k = 2, #KEYS do
  local item = split(ARGV[k + 1])
  local seq = first + k - 2
  local prev = redis.call('GET', KEYS[k])
  redis.call('SET', KEYS[k], item[1] .. ':' .. seq)
  if prev then
    created[k - 1] = '0'
  else
    local run = template
    if #run == 0 then run = commands(item, 2, {}) end
    for _, c in ipairs(run) do
      local cmd = c[1]
      for _, fill in ipairs(c[3]) do cmd[fill[1]] = item[fill[2]] end
      redis.call(unpack(cmd, 1, c[2]))
    end
    created[k - 1] = '1'
  end
  if shared then note(shared, split(ARGV[items + 2 + k])) end
end
return {first, table.concat(created)}
"""


def enqueue_script(note_lua: str = "") -> tuple[str, str]:
    """(text, SHA1) of the enqueue script; ``note_lua`` defines ``note(shared, own)`` (see ``NoteWriter``)."""
    text = LUA_SPLIT + (note_lua or "local function note(shared, own) end\n") + _ENQUEUE_BODY
    return text, hashlib.sha1(text.encode()).hexdigest()


_ENQUEUE_ONCE, _ENQUEUE_ONCE_SHA = enqueue_script()
MAX_GROUP = 200  # items per group commit: bounds one script's run time inside Redis (~a few ms)


class Enqueuer:
    """Builds RQ jobs with a sync connection (RQ's API) and writes them with any client, sync or async.

    Jobs are filled into a ``JobTemplate`` that RQ recorded once per (queue, function), instead of being
    built as RQ ``Job`` objects one by one. The web process uses the async client and group-commits: the
    enqueues of all requests that are ready at the same moment go to Redis in one script call
    (``_GroupCommit``), and each request is answered once its own item is written.
    """

    def __init__(self, connection: Redis, *, job_timeout: int = 180) -> None:
        self.connection = connection
        self.job_timeout = job_timeout
        self._queues: dict[str, Queue] = {}
        self._templates: dict[tuple[str, str], JobTemplate | None] = {}
        self._groups: dict[tuple[int, str, str, NoteWriter | None], _GroupCommit] = {}

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            queue = make_queue(name, self.connection, default_timeout=self.job_timeout)
            queue.get_redis_server_version()  # cached: later enqueues must not talk to Redis by themselves
            self._queues[name] = queue
        return self._queues[name]

    def template(self, queue_name: str, func: str) -> JobTemplate | None:
        """The job template of (queue, func), derived on first use; None when RQ builds every job itself."""
        key = (queue_name, func)
        if key not in self._templates:
            template = JobTemplate.derive(self.queue(queue_name), func, timeout=self.job_timeout)
            if template is None:
                log.warning("RQ's job format is not what bridge.queue.JobTemplate expects; building jobs with RQ")
            self._templates[key] = template
        return self._templates[key]

    def _item(self, work: Work) -> tuple[list[bytes], bytes]:
        """(script header, item argument) of one enqueue for ``_ENQUEUE_ONCE``."""
        job_id = work.new_job_id()
        template = self.template(work.queue, work.func)
        if template is not None:
            return template.header, pack_blob([work.action.encode(), *template.values(job_id, work.args)])
        queue = self.queue(work.queue)
        commands = recorded_enqueue(queue, work.func, work.args, job_id=job_id, timeout=self.job_timeout)
        encode = queue.connection.get_encoder().encode
        return _NO_TEMPLATE, pack_blob([work.action.encode(), *(encode(value) for value in flatten(commands))])

    def enqueue_once(self, work: Work) -> bool:
        """Record ``work.action`` as the newest pending work for ``work.marker``; queue a job unless one is
        pending.

        Returns True when a job was created, False when the pending one will pick this up.
        """
        header, item = self._item(work)
        _first, created = self.connection.eval(_ENQUEUE_ONCE, 2, keys.SEQUENCE, work.marker, *header, item)
        return _flags(created) == b"1"

    async def enqueue_once_async(
        self, client: AsyncRedis, work: Work, *, notes: NoteWriter | None = None, note: bytes = b""
    ) -> bool:
        """``enqueue_once`` for the web process; returns only after the item is written (group-committed).

        With ``notes``, ``note`` (its item's part, packed) is written by the same script call as the job.
        """
        header, item = self._item(work)
        key = (id(client), work.queue, work.func, notes)
        group = self._groups.get(key)
        if group is None or group.client is not client:
            group = self._groups[key] = _GroupCommit(client, header, notes)
        created, _seq = await group.submit(work.marker, item, note, work.entity)
        return created


def _flags(value: bytes | str) -> bytes:
    """The script's created flags ('1'/'0' per item) as bytes, whichever way the client decodes replies."""
    return value.encode() if isinstance(value, str) else bytes(value)


_NO_TEMPLATE = [b"", b""]  # the script header when items carry their own recorded commands


@dataclass(frozen=True)
class NoteWriter:
    """What the enqueue script writes along with each item, whether it created a job or collapsed into one:
    the web intake's record of a shop event (its sync-log entries and its count, ``bridge.ops.telemetry``).

    Written by the same script call as the job, the record is in Redis before the answer, and a group of
    events costs one round trip instead of two (BENCHMARKS.md). ``lua`` defines ``note(shared, own)``, both
    lists split from ``pack_blob`` form: ``shared`` is the same for all notes (packed once) and ``own`` is
    the item's. ``written`` is called after each script call with the entities of its items and how many
    jobs it created: the place for one log line per write instead of one per event.
    """

    lua: str
    shared: bytes
    written: Callable[[list[str], int], None] | None = None


# (marker, item, note, entity, the waiting request's future)
_Waiting = tuple[str, bytes, bytes, str, "asyncio.Future[tuple[bool, int]]"]


class _GroupCommit:
    """Writes the enqueues of concurrent requests together: one ``_ENQUEUE_ONCE`` call for all that wait.

    The first request to arrive starts a writer task; requests that arrive while its script is on the wire
    wait for the next call, which the same task sends as soon as the previous one returned. So nothing waits
    for a timer: an idle bridge writes each event at once, a busy one writes many per round trip. Each
    request's future resolves only after the script that holds its item returned, so the answer still means
    "durably in Redis". One script call is atomic; if it fails (Redis down), every request in it gets the
    error and answers 503, exactly as if each had failed alone.

    There is one group per (client, queue, function, ``NoteWriter``), because one script call shares one job
    template and one kind of note.
    """

    def __init__(
        self, client: AsyncRedis, header: list[bytes], notes: NoteWriter | None = None, *, max_items: int = MAX_GROUP
    ) -> None:
        self.client = client
        self.header = header
        self.notes = notes
        self.script, self.sha = enqueue_script(notes.lua) if notes else (_ENQUEUE_ONCE, _ENQUEUE_ONCE_SHA)
        self.max_items = max_items
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, marker: str, item: bytes, note: bytes = b"", entity: str = "") -> tuple[bool, int]:
        future: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()
        self._waiting.append((marker, item, note, entity, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self.max_items], self._waiting[self.max_items :]
            try:
                results = await self._write(group)
            except Exception as error:  # every waiter of this call learns it; the task carries on with the rest
                for *_, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            except BaseException:  # cancelled (shutdown): nobody may wait for ever on a writer that is gone
                for *_, future in group + self._waiting:
                    future.cancel()
                self._waiting = []
                raise
            first, created = int(results[0]), _flags(results[1])
            for index, (*_, future) in enumerate(group):
                if not future.done():
                    future.set_result((created[index] == ord("1"), first + index))
            if self.notes is not None and self.notes.written is not None:
                self.notes.written([entity for _m, _i, _n, entity, _f in group], created.count(b"1"))

    async def _write(self, group: list[_Waiting]) -> list[Any]:
        markers = [marker for marker, *_ in group]
        argv = [*self.header, *(item for _marker, item, *_ in group)]
        if self.notes is not None:
            argv += [self.notes.shared, *(note for _marker, _item, note, *_ in group)]
        numkeys = 1 + len(markers)
        try:
            return await self.client.evalsha(self.sha, numkeys, keys.SEQUENCE, *markers, *argv)  # type: ignore[no-any-return]
        except NoScriptError:  # a restarted Redis forgot the script: EVAL sends it once more and caches it
            return await self.client.eval(self.script, numkeys, keys.SEQUENCE, *markers, *argv)  # type: ignore[no-any-return]
