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

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError
from rq import Queue

from bridge import keys
from bridge.group_commit import GroupCommit
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
# The hook ``note(shared, own)``: with a ``NoteWriter``, the items are followed by the notes' shared part and
# then one note per item, in the items' order, both split from ``pack_blob`` form; the script calls ``note``
# once per item, after the item, whether it created a job or collapsed into one. Without notes ``note`` is a
# no-op and ARGV ends with the items.
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


_NO_NOTE = "local function note(shared, own) end\n"


def enqueue_script(note_lua: str = "") -> tuple[str, str]:
    """(text, SHA1) of the enqueue script; ``note_lua`` defines ``note(shared, own)`` (see ``NoteWriter``).

    ``LUA_SPLIT`` comes first, so ``note_lua`` may use ``split`` and must not define it again."""
    text = LUA_SPLIT + (note_lua or _NO_NOTE) + _ENQUEUE_BODY
    return text, hashlib.sha1(text.encode()).hexdigest()


_ENQUEUE_ONCE, _ENQUEUE_ONCE_SHA = enqueue_script()
MAX_GROUP = 200  # items per group commit: bounds one script's run time inside Redis (~a few ms)


class Enqueuer:
    """Builds RQ jobs with a sync connection (RQ's API) and writes them with any client, sync or async.

    Jobs are filled into a ``JobTemplate`` that RQ recorded once per (queue, function), instead of being
    built as RQ ``Job`` objects one by one. The web process uses the async client and group-commits: the
    enqueues of all requests that are ready at the same moment go to Redis in one script call
    (``_EnqueueGroup``), and each request is answered once its own item is written.
    """

    def __init__(self, connection: Redis, *, job_timeout: int = 180) -> None:
        self.connection = connection
        self.job_timeout = job_timeout
        self._queues: dict[str, Queue] = {}
        self._templates: dict[tuple[str, str], JobTemplate | None] = {}
        self._groups: dict[tuple[int, str, str, NoteWriter | None], _EnqueueGroup] = {}

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
            group = self._groups[key] = _EnqueueGroup(client, header, notes)
        created, _seq = await group.submit(work.marker, item, note, work.entity)
        return created


def _flags(value: bytes | str) -> bytes:
    """The script's created flags ('1'/'0' per item) as bytes, whichever way the client decodes replies."""
    return value.encode() if isinstance(value, str) else bytes(value)


_NO_TEMPLATE = [b"", b""]  # the script header when items carry their own recorded commands


@dataclass(frozen=True)
class NoteWriter:
    """What the enqueue script also writes for each item, in the same call: the web intake's record of an
    accepted shop event (its count and sync-log entries, ``bridge.web.event_accounting``) is one.

    Written by the same script call as the job, the note is in Redis before the answer, and a group of
    requests costs one round trip instead of two (BENCHMARKS.md). ``lua`` defines the script's hook
    ``note(shared, own)``, both lists split from ``pack_blob`` form: ``shared`` is the same for all notes
    (packed once per call) and ``own`` is the item's (``enqueue_once_async(note=…)``). ``written`` is called
    after each script call with the entities of its items and how many jobs it created: the place for one
    log line per write instead of one per item.
    """

    lua: str
    shared: bytes
    written: Callable[[list[str], int], None] | None = None


# (marker, item, note, entity) of one waiting enqueue
_Pending = tuple[str, bytes, bytes, str]


class _EnqueueGroup:
    """The enqueues of concurrent requests, written together: one ``_ENQUEUE_ONCE`` call for all that wait
    (``bridge.group_commit``). One script call is atomic; if it fails (Redis down), every request in it gets
    the error and answers 503, exactly as if each had failed alone.

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
        self._commit: GroupCommit[_Pending, tuple[bool, int]] = GroupCommit(
            self._write, max_items=max_items, name="enqueue"
        )

    def submit(self, marker: str, item: bytes, note: bytes = b"", entity: str = "") -> Awaitable[tuple[bool, int]]:
        """(created, sequence number) of this item, once the script call that holds it returned."""
        return self._commit.submit((marker, item, note, entity))  # no coroutine of its own: one frame less

    async def _write(self, group: list[_Pending]) -> list[tuple[bool, int]]:
        markers = [marker for marker, *_ in group]
        argv = [*self.header, *(item for _marker, item, *_ in group)]
        if self.notes is not None:
            argv += [self.notes.shared, *(note for _marker, _item, note, _entity in group)]
        numkeys = 1 + len(markers)
        try:
            results = await self.client.evalsha(self.sha, numkeys, keys.SEQUENCE, *markers, *argv)
        except NoScriptError:  # a restarted Redis forgot the script: EVAL sends it once more and caches it
            results = await self.client.eval(self.script, numkeys, keys.SEQUENCE, *markers, *argv)
        first, created = int(results[0]), _flags(results[1])
        if self.notes is not None and self.notes.written is not None:
            self.notes.written([entity for *_, entity in group], created.count(b"1"))
        return [(flag == ord("1"), first + index) for index, flag in enumerate(created)]
