"""The sync log: what the bridge did with each peer, kept in Redis so a person can ask "what happened to
order 300?" without reading Redis by hand.

Every operation becomes one entry in the capped stream ``keys.SYNC_LOG`` (newest ``max_entries`` kept,
trimmed approximately, which Redis does cheaply) and, when it concerns one entity (an order, a product),
also in that entity's own short stream ``keys.SYNC_LOG_ENTITY``, capped exactly and expiring after
``ENTITY_TTL`` of silence, so a lookup by id reads a few entries instead of scanning the whole log.

Entries are plain strings in the stream; the stream id gives the time. Writing is queued on the caller's
pipeline, so logging an operation costs no extra round trip to Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from bridge import keys
from bridge.scripts import LUA_APPEND_ENTRY, LUA_SPLIT, pack_blob
from bridge.texts import as_text

ENTITY_MAX = 200
ENTITY_TTL = 30 * 24 * 3600
TEXT_LIMIT = 500
SCAN_FACTOR = 20  # a filter over the global log looks at most this many entries per wanted one


@dataclass(frozen=True)
class Entry:
    """One operation. ``peer``: shop, 1c or bridge (the bridge's own steps: a job's outcome, a poll)."""

    peer: str
    operation: str
    outcome: str
    entity: str | None = None
    entity_id: str | None = None
    duration: float | None = None
    error: str | None = None
    detail: str | None = None
    process: str | None = None
    at: float | None = None  # unix time; set when read back (from the stream id)
    entry_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = iso(self.at) if self.at is not None else None
        return {k: v for k, v in data.items() if v is not None}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip(text: str) -> str:
    """One line of at most ``TEXT_LIMIT`` characters, as an entry's error and detail are stored."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= TEXT_LIMIT else one_line[: TEXT_LIMIT - 1] + "…"


def stream_fields(entry: Entry) -> dict[str, str]:
    """The stream fields ``append`` writes for ``entry`` (a script that writes entries itself starts from these)."""
    fields = {"peer": entry.peer, "op": entry.operation, "outcome": entry.outcome}
    optional = {
        "entity": entry.entity,
        "id": entry.entity_id,
        "error": clip(entry.error) if entry.error else None,
        "detail": clip(entry.detail) if entry.detail else None,
        "proc": entry.process,
    }
    fields.update({k: str(v) for k, v in optional.items() if v})
    if entry.duration is not None:
        fields["ms"] = f"{entry.duration * 1000:.1f}"
    return fields


def entity_key(entity: str, entity_id: str) -> str:
    return keys.SYNC_LOG_ENTITY.format(entity=entity, entity_id=entity_id)


def append(pipe: Any, entry: Entry, *, max_entries: int) -> None:
    """Queue the entry on ``pipe`` (a pipeline; executing it is the caller's business)."""
    fields = stream_fields(entry)
    pipe.xadd(keys.SYNC_LOG, fields, maxlen=max_entries, approximate=True)
    if entry.entity and entry.entity_id:
        key = entity_key(entry.entity, entry.entity_id)
        pipe.xadd(key, fields, maxlen=ENTITY_MAX, approximate=False)
        pipe.expire(key, ENTITY_TTL)


# ``append`` for many entries in one script call. ARGV[1] ``script_log`` packed; ARGV[2..] one entry each,
# "<length>:<bytes>" runs of: the entity stream's key ('' for none), then field, value, field, value...
_APPEND_MANY = (
    LUA_SPLIT
    + LUA_APPEND_ENTRY
    + """
local log = split(ARGV[1])
for i = 2, #ARGV do
  local parts = split(ARGV[i])
  local stream = table.remove(parts, 1)
  append_entry(log, 1, stream, parts)
end
return #ARGV - 1
"""
)


def script_log(max_entries: int) -> list[bytes]:
    """Where ``bridge.scripts.LUA_APPEND_ENTRY`` writes: the global log's key and cap, the entity streams' cap
    and TTL."""
    return [keys.SYNC_LOG.encode(), b"%d" % max_entries, b"%d" % ENTITY_MAX, b"%d" % ENTITY_TTL]


def append_many(pipe: Any, entries: Sequence[Entry], *, max_entries: int) -> None:
    """``append`` for each entry, as one script call queued on ``pipe``.

    The web intake files an entry per refused-but-authenticated shop event; queued one by one, their ~40
    arguments per event made packing the pipeline the single largest cost of a webhook (BENCHMARKS.md). One
    argument per entry keeps that cheap; Redis runs the very commands ``append`` would, in the same order.
    """
    if not entries:
        return
    packed = []
    for entry in entries:
        key = entity_key(entry.entity, entry.entity_id) if entry.entity and entry.entity_id else ""
        values = [key, *(text for pair in stream_fields(entry).items() for text in pair)]
        packed.append(pack_blob(value.encode() for value in values))
    pipe.eval(_APPEND_MANY, 0, pack_blob(script_log(max_entries)), *packed)


def _entry(stream_id: bytes | str, raw: dict[Any, Any]) -> Entry:
    fields = {as_text(k): as_text(v) for k, v in raw.items()}
    sid = as_text(stream_id)
    ms = fields.get("ms")
    return Entry(
        peer=fields.get("peer", "?"),
        operation=fields.get("op", "?"),
        outcome=fields.get("outcome", "?"),
        entity=fields.get("entity"),
        entity_id=fields.get("id"),
        duration=float(ms) / 1000 if ms else None,
        error=fields.get("error"),
        detail=fields.get("detail"),
        process=fields.get("proc"),
        at=int(sid.split("-", 1)[0]) / 1000,
        entry_id=sid,
    )


def read(redis: Redis, *, entity: str | None = None, entity_id: str | None = None, limit: int = 100) -> list[Entry]:
    """The newest ``limit`` entries, newest first; for one entity when both ``entity`` and ``entity_id`` are
    given, entries about any entity of that kind when only ``entity`` is (from the recent global log)."""
    limit = max(1, min(limit, 10_000))
    if entity and entity_id:
        rows: list[tuple[bytes, dict[bytes, bytes]]] = redis.xrevrange(entity_key(entity, entity_id), count=limit)  # type: ignore[assignment]
        return [_entry(sid, raw) for sid, raw in rows]
    rows = redis.xrevrange(keys.SYNC_LOG, count=limit * SCAN_FACTOR if entity else limit)  # type: ignore[assignment]
    entries = [_entry(sid, raw) for sid, raw in rows]
    if entity:
        entries = [e for e in entries if e.entity == entity]
    return entries[:limit]


def format_line(entry: Entry) -> str:
    """One line a person reads in a terminal: time, entity, peer and operation, outcome, duration, words."""
    when = iso(entry.at) if entry.at is not None else "-"
    subject = f"{entry.entity} {entry.entity_id}" if entry.entity and entry.entity_id else (entry.entity or "-")
    duration = f"{entry.duration:.3f}s" if entry.duration is not None else "-"
    words = "; ".join(w for w in (entry.detail, entry.error) if w)
    return f"{when}  {subject:<14} {entry.peer:<6} {entry.operation:<26} {entry.outcome:<12} {duration:>8}  {words}".rstrip()


def format_lines(entries: Iterable[Entry]) -> list[str]:
    return [format_line(e) for e in entries]
