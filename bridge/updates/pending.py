"""Pending updates from 1C, coalesced per key in Redis: what the flushes send to the shop.

1C repeats itself (a full stock upload every few minutes is common), and the shop allows two requests a
second. So nothing is queued per item: each item overwrites the pending value of its key in the hash
``bridge:pending:<kind>`` (latest value wins), and one flush job per kind sends what is there.

The intake stores each accepted body whole (``bridge.updates.inbox``); the flush splits the bodies into these
entries, oldest first, before it sends anything.

- The key is the item as 1C named it, as a JSON array: ``["xml","<guid>","key","Main"]`` (product by
  xml id, store by 1C key); ``["A-300"]`` for an order. Each kind builds its keys and values
  (``bridge.updates.kinds``); the flush resolves them to shop ids.
- A pending value is ``<ts>|<seq>|<value JSON>``: ``ts`` (microseconds, empty when 1C sent none) decides
  which of two values is newer, ``seq`` (from ``bridge:seq``) the order of arrival.
- ``bridge:applied:<kind>:<generation>`` keeps ``<ts>|<value JSON>`` of what last reached the shop per key.
  An item older than the pending or the applied value of its key is dropped on arrival; a value equal to the
  applied one is not sent again (and is recorded again, so a key 1C keeps sending stays remembered).
- What was applied is remembered for ``APPLIED_GENERATION`` to twice that after it was last recorded, not
  for ever: records go into the hash of the current generation (``APPLIED_GENERATION`` seconds long) and are
  read from it and the previous one, and each hash expires when it is no longer one of the two. Keys of
  products that left the catalogue thus leave Redis too (Redis 7.0 has no per-field expiry). Forgetting a
  key costs at most one redundant write of the same value; the only check it weakens is the drop of an
  item older than the applied value, for an item delayed by more than a week.
- The flush removes a pending entry only if it still holds the value the flush read (compare-and-delete),
  so a value that arrived meanwhile is sent by the next round.

Writes go in chunks of ``CHUNK`` items per Lua call, so a 50,000-item body never holds Redis for long.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis import Redis

from bridge import keys

if TYPE_CHECKING:  # the kinds import this module
    from bridge.updates.intake.validation import Accepted
    from bridge.updates.kinds.base import UpdateKind

CHUNK = 1000
APPLIED_GENERATION = 7 * 24 * 3600  # seconds; see the module's docstring

# KEYS[1] pending hash, KEYS[2] and KEYS[3] the current and previous applied hashes, KEYS[4] held hash. ARGV[1]
# seq, ARGV[2] lines of "key<TAB>ts<TAB>value" (one string: packing thousands of separate arguments costs more
# than the work; JSON escapes tabs and newlines, so they cannot occur inside a key or value). Returns {stale,
# replaced, released}: how many items were dropped as older than what is pending, held or applied for their
# key, and the sequence numbers (seq, count, ...) of the pending and of the held values the new ones replaced.
_STAGE = """
local stale = 0
local replaced = {}
local released = {}
local has_held = redis.call('EXISTS', KEYS[4]) == 1
local function stamp(stored)
  return tonumber(string.match(stored, '^([^|]*)|'))
end
local function seq_of(stored)
  return string.match(stored, '^[^|]*|([^|]*)|')
end
local function note(tally, seq)
  if seq then tally[seq] = (tally[seq] or 0) + 1 end
end
for line in string.gmatch(ARGV[2], '[^\\n]+') do
  local key, ts, value = string.match(line, '^([^\\t]*)\\t([^\\t]*)\\t(.*)$')
  local keep = true
  local pending = redis.call('HGET', KEYS[1], key)
  local held = nil
  if has_held then
    held = redis.call('HGET', KEYS[4], key)
    if held then held = string.match(held, '^[^|]*|(.*)$') end
  end
  if ts ~= '' then
    -- A pending or held value with a ts is never older than the applied one, so the applied one is read
    -- only when nothing stamped is pending or held.
    local other = nil
    if pending then other = stamp(pending) end
    if other == nil and held then other = stamp(held) end
    if other == nil then
      local applied = redis.call('HGET', KEYS[2], key) or redis.call('HGET', KEYS[3], key)
      if applied then other = stamp(applied) end
    end
    keep = other == nil or tonumber(ts) >= other
  end
  if keep then
    if pending then note(replaced, seq_of(pending)) end
    if held then
      note(released, seq_of(held))
      redis.call('HDEL', KEYS[4], key)
    end
    redis.call('HSET', KEYS[1], key, ts .. '|' .. ARGV[1] .. '|' .. value)
  else
    stale = stale + 1
  end
end
local function flat(tally)
  local out = {}
  for seq, n in pairs(tally) do
    out[#out + 1] = seq
    out[#out + 1] = n
  end
  return out
end
return {stale, flat(replaced), flat(released)}
"""

# KEYS[1] pending hash, KEYS[2] the current applied hash. ARGV: (key, token read, applied value or '') triples.
# Records what reached the shop, and removes each pending entry unless a newer value replaced it.
_SETTLE = """
local removed = 0
for i = 1, #ARGV, 3 do
  local key = ARGV[i]
  if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[2], key, ARGV[i + 2]) end
  if redis.call('HGET', KEYS[1], key) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], key)
    removed = removed + 1
  end
end
return removed
"""


def pending_key(kind: str) -> str:
    return keys.UPDATES_PENDING.format(kind=kind)


def applied_key(kind: str, now: float | None = None) -> str:
    """The applied hash records go into now (the current generation's)."""
    return applied_keys(kind, now)[0]


def applied_keys(kind: str, now: float | None = None) -> tuple[str, str]:
    """(current, previous) generation's applied hash; reads look in both, current first."""
    generation = int((time.time() if now is None else now) // APPLIED_GENERATION)
    base = keys.UPDATES_APPLIED.format(kind=kind)
    return f"{base}:{generation}", f"{base}:{generation - 1}"


def applied_values(redis: Redis, kind: str, fields: Sequence[str]) -> list[str | None]:
    """The applied record of each key (None when none is remembered), from the newer generation first."""
    if not fields:
        return []
    current, previous = applied_keys(kind)
    pipe = redis.pipeline(transaction=False)
    pipe.hmget(current, list(fields))
    pipe.hmget(previous, list(fields))
    newer, older = pipe.execute()
    return [
        None if raw is None else _text(raw)
        for raw in (a if a is not None else b for a, b in zip(newer, older, strict=True))
    ]


def _generation_end(now: float) -> int:
    """When the current generation's hash stops being read: the end of the next generation."""
    return (int(now // APPLIED_GENERATION) + 2) * APPLIED_GENERATION


# --- splitting a body ------------------------------------------------------------------------------------


def entries(kind: UpdateKind, accepted: Accepted) -> list[tuple[str, str, str]]:
    """(key, ts, value) per distinct key of a validated body; see ``latest_entries``."""
    return latest_entries(kind, accepted.items, accepted.stamps)


def latest_entries(
    kind: UpdateKind, items: Sequence[dict[str, Any]], stamps: Sequence[int | None]
) -> list[tuple[str, str, str]]:
    """(key, ts, value) per distinct key: the newest item of the body for each key (by ts, then position).

    The key and value texts are the kind's (``UpdateKind.key_of``, ``value_of``): what 1C named, not yet
    resolved to shop ids, and the value the shop should end up with, as canonical JSON so that equal values
    compare equal as text.
    """
    key_of, value_of = kind.key_of, kind.value_of
    latest: dict[str, tuple[int | None, dict[str, Any]]] = {}
    for item, stamp in zip(items, stamps, strict=True):
        key = key_of(item)
        known = latest.get(key)
        if known is not None and stamp is not None and known[0] is not None and stamp < known[0]:
            continue
        latest[key] = (stamp, item)
    return [(key, "" if stamp is None else str(stamp), value_of(item)) for key, (stamp, item) in latest.items()]


@dataclass(frozen=True)
class Staged:
    """What one ``stage_items`` call did: distinct keys written as pending, and items dropped as older."""

    items: int
    keys: int
    stale: int

    @property
    def pending(self) -> int:
        return self.keys - self.stale


def stage_items(
    redis: Redis,
    kind: str,
    items: Sequence[dict[str, Any]],
    stamps: Sequence[int | None],
    *,
    batch: str,
    count_accepted: bool = True,
) -> Staged:
    """The one way into the coalescing store: items of ``kind`` (already valid) become its pending entries.

    Both intakes come through here: the JSON pushes when the flush splits their stored bodies
    (``bridge.updates.inbox``) and the CommerceML exchange (``bridge.exchange.catalog_import``), so the
    latest value per key wins whichever intake sent it. ``stamps`` are the items' ``ts`` in microseconds
    (None when 1C sent none); ``batch`` names the push or exchange file the items came from. The caller
    queues the kind's flush (the inbox is split by the flush itself). What the items became is counted under
    ``batch`` (``bridge.updates.batches``; ``count_accepted=False`` when the intake counted them already).
    """
    from bridge.updates.kinds import KINDS  # the kinds import this module

    staged = latest_entries(KINDS[kind], items, stamps)
    return stage_entries(redis, kind, staged, items=len(items), batch=batch, count_accepted=count_accepted)


def stage_entries(
    redis: Redis,
    kind: str,
    staged: Sequence[tuple[str, str, str]],
    *,
    items: int,
    batch: str,
    count_accepted: bool = True,
) -> Staged:
    """``stage_items`` for entries already built: (key, ts, value) texts, one per distinct key, out of ``items``.

    For an intake that builds the kind's texts itself (the CommerceML import, which fingerprints them too).
    """
    from bridge.updates import batches

    # A fresh number, taken now: the entries' numbers keep the order in which they were staged.
    seq = int(redis.incr(keys.SEQUENCE))
    stale, replaced, released = stage(redis, kind, staged, seq)
    tally = batches.Tally()
    for old_seq, amount in replaced.items():
        tally.settle(old_seq, "superseded", amount)
    for old_seq, amount in released.items():  # a held value a newer one replaced: no longer held
        tally.settle(old_seq, "superseded", amount)
        tally.add(old_seq, "held", -amount)
    pipe = redis.pipeline(transaction=False)
    batches.note_staged(
        pipe, batch, seq, accepted=items if count_accepted else None, superseded=items - len(staged) + stale
    )
    pipe.execute()
    tally.write(redis)
    return Staged(items=items, keys=len(staged), stale=stale)


def stage(
    redis: Redis, kind: str, staged: Sequence[tuple[str, str, str]], seq: int
) -> tuple[int, dict[int, int], dict[int, int]]:
    """Write the entries as pending, chunk by chunk: how many were dropped as stale, and the numbers (seq →
    count) of the pending and of the held values that newer ones replaced."""
    script = redis.register_script(_STAGE)
    stale = 0
    replaced: Counter[int] = Counter()
    released: Counter[int] = Counter()
    held = keys.UPDATES_HELD.format(kind=kind)
    for start in range(0, len(staged), CHUNK):
        lines = "\n".join(f"{key}\t{ts}\t{value}" for key, ts, value in staged[start : start + CHUNK])
        answer = script(keys=[pending_key(kind), *applied_keys(kind), held], args=[seq, lines])
        stale += int(answer[0])
        for tally, flat in ((replaced, answer[1]), (released, answer[2])):
            for i in range(0, len(flat), 2):
                tally[int(flat[i])] += int(flat[i + 1])
    return stale, dict(replaced), dict(released)


# --- the flush side -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One pending update as the flush sees it.

    ``token`` is the stored value (for compare-and-delete), ``key``/``value`` the decoded JSON,
    ``applied`` the value JSON last written for this key (None if never) and ``applied_ts`` its ts.
    """

    field: str
    token: str
    key: list[Any]
    value: list[Any]
    ts: int | None
    seq: int
    value_json: str
    applied: str | None = None
    applied_ts: int | None = None

    @property
    def unchanged(self) -> bool:
        """The shop already got exactly this value for this key."""
        return self.applied is not None and self.applied == self.value_json

    def newer_than(self, other: Entry) -> bool:
        """Which of two entries for the same shop key should win: the newer ts, else the later arrival."""
        if self.ts is not None and other.ts is not None and self.ts != other.ts:
            return self.ts > other.ts
        return self.seq > other.seq

    def applied_record(self) -> str:
        """What ``bridge:applied`` should hold once this value reached the shop (the newest ts is kept)."""
        stamps = [s for s in (self.ts, self.applied_ts) if s is not None]
        return f"{max(stamps) if stamps else ''}|{self.value_json}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stamp(text: str) -> int | None:
    return int(text) if text else None


def parse_entry(field: str, token: str, applied: str | None) -> Entry | None:
    """Decode one hash entry; None for one that cannot be read (written by a different version)."""
    try:
        ts, seq, value_json = token.split("|", 2)
        applied_ts, applied_value = applied.split("|", 1) if applied is not None else ("", None)
        return Entry(
            field=field,
            token=token,
            key=json.loads(field),
            value=json.loads(value_json),
            ts=_stamp(ts),
            seq=int(seq),
            value_json=value_json,
            applied=applied_value,
            applied_ts=_stamp(applied_ts),
        )
    except ValueError:
        return None


def scan(redis: Redis, kind: str, count: int = CHUNK) -> list[tuple[str, str]]:
    """Every pending (key, token) of the kind, read in steps so that a big hash does not block Redis."""
    found = {_text(k): _text(v) for k, v in redis.hscan_iter(pending_key(kind), count=count)}
    return sorted(found.items())  # sorted: the entries of one product sit together, so lookups share work


def scan_smallest(
    redis: Redis, kind: str, limit: int, after: str | None = None, count: int = CHUNK
) -> list[tuple[str, str]]:
    """The ``limit`` smallest pending (key, token) pairs whose key is above ``after``, sorted: the flush's next
    window in key order.

    The flush works in key order (one product's entries together, so lookups share work) and in slices of
    seconds. Sorting the whole hash held a first export's backlog (700,000 prices and amounts for 100,000
    offers) in the worker's memory in every slice; here it is read in steps and only the window is kept.
    """
    pairs = ((_text(k), _text(v)) for k, v in redis.hscan_iter(pending_key(kind), count=count))
    if after is not None:
        pairs = (pair for pair in pairs if pair[0] > after)
    return heapq.nsmallest(limit, pairs)


def load(redis: Redis, kind: str, pairs: Sequence[tuple[str, str]]) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The entries with what was last applied for their keys, and the (key, token) pairs that cannot be read."""
    if not pairs:
        return [], []
    applied = applied_values(redis, kind, [field for field, _ in pairs])
    good: list[Entry] = []
    bad: list[tuple[str, str]] = []
    for (field, token), raw in zip(pairs, applied, strict=True):
        entry = parse_entry(field, token, raw)
        if entry is None:
            bad.append((field, token))
        else:
            good.append(entry)
    return good, bad


def settle(redis: Redis, kind: str, done: Iterable[tuple[Entry, bool]]) -> int:
    """Close finished entries: (entry, applied?) — applied ones are recorded as what the shop now holds.

    Entries that were dropped (unknown product, refused by the shop) pass ``False``: removed from pending,
    but not recorded as applied. Returns how many pending entries were removed.
    """
    script = redis.register_script(_SETTLE)
    removed = 0
    now = time.time()
    current = applied_key(kind, now)
    recorded = False
    for chunk in _chunks(list(done), CHUNK):
        args: list[str] = []
        for entry, applied in chunk:
            args.extend((entry.field, entry.token, entry.applied_record() if applied else ""))
            recorded = recorded or applied
        removed += int(script(keys=[pending_key(kind), current], args=args))
    if recorded:
        pipe = redis.pipeline(transaction=False)
        pipe.expireat(current, _generation_end(now))
        # The one hash of releases before generations: read no more, so it goes after one generation.
        pipe.expire(keys.UPDATES_APPLIED.format(kind=kind), APPLIED_GENERATION, nx=True)
        pipe.execute()
    return removed


def discard(redis: Redis, kind: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Remove unreadable entries (compare-and-delete as well)."""
    script = redis.register_script(_SETTLE)
    for chunk in _chunks(list(pairs), CHUNK):
        args: list[str] = []
        for field, token in chunk:
            args.extend((field, token, ""))
        script(keys=[pending_key(kind), applied_key(kind)], args=args)  # records nothing: no expiry to set


def count(redis: Redis, kind: str) -> int:
    return int(redis.hlen(pending_key(kind)))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
