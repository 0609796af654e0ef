"""Updates held back by the bridge's own setup, kept until a person fixes it, then sent on.

An update 1C names with a warehouse, price type or status the mappings do not know (or a product by article
when the shop has no article property, a product whose article, barcodes or mapped property fill a property
the shop's iblock lacks, or whose section the shop does not have) is not wrong: the bridge is not set up for it yet. Dropping it would
lose stock the shop needs the moment the mapping is added, and 1C will not send an unchanged amount again.
So the flush moves such an entry from ``bridge:pending:<kind>`` to ``bridge:held:<kind>`` (compare-and-move,
with the digest of its reason in front), and files **one dead letter per kind and reason**: a failed RQ job of
the function ``release`` whose error is the reason in plain words ("1C warehouse 'main' is not mapped …;
add it under [stores] in catalog.toml"). ``bridge failed list``, ``/admin/failed``, ``/readyz`` and the
alerts all show it with nothing of their own to learn, and ``bridge failed retry`` (or ``--all``) runs
``release``, which puts the held entries back as pending and queues the flush. The mappings are read again
when their files change (``bridge.mappings.reload``), so the retry sees the fix without a restart; if the
mapping is still missing, the flush holds the entries again and files a new dead letter.

Latest wins here too: staging a newer value for a held key replaces the held one (``pending._STAGE``), an
older one is refused, so a held value is never overwritten by nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from redis import Redis
from rq.job import JobStatus
from rq.registry import FailedJobRegistry
from rq.results import Result

from bridge import keys, runtime
from bridge.queue import FAILURE_TTL, make_queue
from bridge.queue.work import create_job, hold_work
from bridge.texts import as_text
from bridge.updates import batches
from bridge.updates.pending import Entry, pending_key

log = logging.getLogger("bridge.updates.holds")

RELEASE_TIMEOUT = 600

# KEYS[1] pending hash, KEYS[2] held hash. ARGV: (key, token read, digest) triples. Moves each entry that still
# holds the value the flush read; returns the positions (1-based triples) of those moved.
_HOLD = """
local moved = {}
for i = 1, #ARGV, 3 do
  local key = ARGV[i]
  if redis.call('HGET', KEYS[1], key) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], key)
    redis.call('HSET', KEYS[2], key, ARGV[i + 2] .. '|' .. ARGV[i + 1])
    moved[#moved + 1] = (i + 2) / 3
  end
end
return moved
"""

# KEYS[1] pending hash, KEYS[2] held hash. ARGV: (key, held value read) pairs. Puts each back as pending
# unless a value is pending for the key already (then that one is newer, and the held one is superseded).
# Returns {key, "1" (released) | "0" (superseded), ...}.
_RELEASE = """
local out = {}
for i = 1, #ARGV, 2 do
  local key = ARGV[i]
  if redis.call('HGET', KEYS[2], key) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[2], key)
    local token = string.match(ARGV[i + 1], '^[^|]*|(.*)$')
    if redis.call('HSETNX', KEYS[1], key, token) == 1 then
      out[#out + 1] = key; out[#out + 1] = '1'
    else
      out[#out + 1] = key; out[#out + 1] = '0'
    end
  end
end
return out
"""


def held_key(kind: str) -> str:
    return keys.UPDATES_HELD.format(kind=kind)


def digest(reason: str) -> str:
    return hashlib.sha256(reason.encode()).hexdigest()[:12]


def hold(redis: Redis, kind: str, held: Sequence[tuple[Entry, str, str]]) -> list[tuple[Entry, str, str]]:
    """Move ``held`` (entry, reason, class) from pending to the held store and file their dead letters.

    Returns the ones moved (an entry whose pending value changed meanwhile stays pending, for the next round).
    """
    if not held:
        return []
    reasons = {digest(reason): (reason, why) for _, reason, why in held}
    pipe = redis.pipeline(transaction=False)
    pipe.hset(
        keys.UPDATES_HELD_REASONS.format(kind=kind),
        mapping={d: json.dumps({"reason": r, "class": w}, ensure_ascii=False) for d, (r, w) in reasons.items()},
    )
    pipe.execute()
    script = redis.register_script(_HOLD)
    args: list[str] = []
    for entry, reason, _ in held:
        args.extend((entry.field, entry.token, digest(reason)))
    positions = script(keys=[pending_key(kind), held_key(kind)], args=args)
    moved = [held[int(n) - 1] for n in positions]  # a value that changed meanwhile stays pending, for the next round
    for d in sorted({digest(reason) for _, reason, _ in moved}):
        reason, why = reasons[d]
        file_letter(redis, kind, d, reason)
        log.warning(
            "%s updates held: %s (`bridge failed list` shows them, `bridge failed retry` sends them once fixed)",
            kind, reason, extra={"extra_fields": {"event": "update_held", "kind": kind, "reason": reason, "why": why}},
        )  # fmt: skip
    return moved


def file_letter(redis: Redis, kind: str, reason_digest: str, reason: str) -> str:
    """One dead letter per kind and reason: a failed ``release`` job whose error is the reason. Its id."""
    letters = keys.UPDATES_HELD_LETTERS.format(kind=kind)
    known = redis.hget(letters, reason_digest)
    work = hold_work(kind, reason_digest)
    registry = FailedJobRegistry(work.queue, connection=redis)
    if known is not None and redis.zscore(registry.key, as_text(known)) is not None:
        return as_text(known)
    queue = make_queue(work.queue, redis, default_timeout=RELEASE_TIMEOUT)
    job = create_job(queue, work.func, work.args, job_id=work.new_job_id(), timeout=RELEASE_TIMEOUT)
    exc = f"bridge.errors.PermanentError: {reason}"
    job.ended_at = datetime.now(UTC)
    pipe = redis.pipeline()
    registry.add(job, ttl=FAILURE_TTL, exc_string=exc, pipeline=pipe)
    job.set_status(JobStatus.FAILED, pipeline=pipe)
    Result.create_failure(job, FAILURE_TTL, exc_string=exc, pipeline=pipe)
    pipe.hset(letters, reason_digest, job.id)
    pipe.execute()
    return job.id


def release(kind: str, reason_digest: str) -> str:
    """Put the entries held for this reason back as pending and queue the flush (``bridge failed retry``)."""
    from bridge.updates.flush import queue_flush

    rt = runtime.current()
    forget_shop_setup(rt.redis)
    back, superseded = release_entries(rt.redis, kind, reason_digest)
    pipe = rt.redis.pipeline(transaction=False)
    pipe.hdel(keys.UPDATES_HELD_LETTERS.format(kind=kind), reason_digest)
    pipe.hdel(keys.UPDATES_HELD_REASONS.format(kind=kind), reason_digest)  # held again, it is written again
    pipe.execute()
    if back:
        queue_flush(rt, kind)
    log.info("%s: %d held updates sent on, %d superseded meanwhile", kind, back, superseded)
    return f"{back} released, {superseded} superseded"


# What the bridge remembers of the shop's setup for minutes or an hour (its catalogs, stores, price types and
# their xmlIds, the article property, the iblocks' properties): a person who fixed the shop and retries must not wait for it to expire.
SETUP_CACHES = (
    keys.CACHE_CATALOGS,
    keys.CACHE_STORES,
    keys.CACHE_XML_IDS.format(what="stores"),
    keys.CACHE_XML_IDS.format(what="price_types"),
)


def forget_shop_setup(redis: Redis) -> None:
    article = keys.CACHE_ARTICLE_PROPERTY.format(iblock_id="*", code="*")
    properties = keys.CACHE_PROPERTIES.format(iblock_id="*")  # a property created in the shop for a held product
    found = [*redis.scan_iter(match=article, count=1000), *redis.scan_iter(match=properties, count=1000)]
    redis.delete(*SETUP_CACHES, *found)


def release_entries(redis: Redis, kind: str, reason_digest: str | None = None) -> tuple[int, int]:
    """Move held entries (of one reason, or all) back to pending: (released, superseded)."""
    wanted = [
        (as_text(k), as_text(v))
        for k, v in redis.hscan_iter(held_key(kind), count=1000)
        if reason_digest is None or as_text(v).startswith(reason_digest + "|")
    ]
    if not wanted:
        return 0, 0
    script = redis.register_script(_RELEASE)
    by_field = dict(wanted)
    tally = batches.Tally()
    released = superseded = 0
    for start in range(0, len(wanted), 1000):
        args = [x for pair in wanted[start : start + 1000] for x in pair]
        answer = script(keys=[pending_key(kind), held_key(kind)], args=args)
        for i in range(0, len(answer), 2):
            field, back = as_text(answer[i]), as_text(answer[i + 1]) == "1"
            seq = _seq(by_field[field])
            if seq is not None:
                tally.add(seq, "held", -1)
                if not back:
                    tally.add(seq, "superseded", 1)
            released += back
            superseded += not back
    tally.write(redis)
    return released, superseded


def _seq(held_value: str) -> int | None:
    try:
        return int(held_value.split("|", 3)[2])
    except (IndexError, ValueError):
        return None


def tidy(redis: Redis, kind: str) -> int:
    """Remove the dead letters whose held updates are all gone (newer values replaced them); how many.

    Run by the flush once it is done, so ``bridge failed list`` never shows a reason nothing waits for.
    """
    letters_key = keys.UPDATES_HELD_LETTERS.format(kind=kind)
    letters = {as_text(d): as_text(j) for d, j in redis.hgetall(letters_key).items()}
    if not letters:
        return 0
    waiting = {as_text(v).split("|", 1)[0] for _, v in redis.hscan_iter(held_key(kind), count=1000)}
    registry = FailedJobRegistry(hold_work(kind, "").queue, connection=redis)
    removed = 0
    for reason_digest, job_id in letters.items():
        if reason_digest in waiting:
            continue
        if redis.zscore(registry.key, job_id) is not None:  # a letter being retried is left to its job
            registry.remove(job_id, delete_job=True)
            removed += 1
        redis.hdel(letters_key, reason_digest)
        redis.hdel(keys.UPDATES_HELD_REASONS.format(kind=kind), reason_digest)
    return removed


def counts(redis: Redis, kinds: Sequence[str]) -> dict[str, int]:
    """Held entries per kind (only kinds with some)."""
    pipe = redis.pipeline(transaction=False)
    for kind in kinds:
        pipe.hlen(held_key(kind))
    return {kind: int(n) for kind, n in zip(kinds, pipe.execute(), strict=True) if n}


def reasons(redis: Redis, kind: str) -> list[dict[str, object]]:
    """Each reason entries of ``kind`` are held for, with how many (for /readyz and the dead letters)."""
    per: Counter[str] = Counter()
    for _, value in redis.hscan_iter(held_key(kind), count=1000):
        per[as_text(value).split("|", 1)[0]] += 1
    if not per:
        return []
    stored = redis.hmget(keys.UPDATES_HELD_REASONS.format(kind=kind), sorted(per))
    out: list[dict[str, object]] = []
    for d, raw in zip(sorted(per), stored, strict=True):
        info = json.loads(as_text(raw)) if raw is not None else {"reason": "unknown", "class": "unknown"}
        out.append({"reason": info["reason"], "class": info["class"], "count": per[d]})
    return out
