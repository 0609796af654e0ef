"""Accepted 1C bodies waiting to be split into pending updates: the intake keeps a body whole, the flush splits it.

1C waits for the answer to a push, and splitting 50,000 items into coalescing keys costs ~0.2 s of Python.
So the intake (``bridge.web.onec_inbound``) only checks the body and appends it as it came to the list
``bridge:inbox:<kind>``, each body just after its batch number. The flush job, holding the kind's lock, splits the
bodies oldest first into ``bridge:pending:<kind>`` (``bridge.sync.pending``) before it sends anything, so
"the latest value wins" follows the order in which the bodies were accepted, exactly as if the intake had
split them itself.

A body leaves the inbox only after all its items are pending. A worker killed in between leaves it
there, and the next flush splits it again: the same items give the same pending values, and no newer body
has been split yet (they go strictly in order), so nothing newer is overwritten.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bridge import keys
from bridge.inbound.validation import InvalidPayload, validate
from bridge.sync import pending

log = logging.getLogger("bridge.sync.inbox")


def inbox_key(kind: str) -> str:
    return keys.UPDATES_INBOX.format(kind=kind)


async def put(redis: AsyncRedis, kind: str, body: bytes) -> int:
    """Store an accepted body at the end of the kind's inbox; its sequence number, which names the batch.

    Plain commands rather than a script: a script copies its 3 MB argument into Lua and again into Redis,
    three times the cost of ``RPUSH``. The number goes in as an element of its own, just before the body
    (one ``RPUSH`` of both, so they stay together): putting it in front of the body would copy 3 MB too.
    The inbox's order is the order of acceptance, whatever the numbers of two bodies accepted at once.
    """
    seq = int(await redis.incr(keys.SEQUENCE))
    await redis.rpush(inbox_key(kind), seq, body)
    return seq


def split(redis: Redis, kind: str) -> int:
    """Split every waiting body into pending entries, oldest first. Returns how many bodies were split.

    The caller holds the kind's flush lock, so no other worker splits or sends the same kind meanwhile, and
    the intake only appends: the head of the inbox is the body just split.
    """
    done = 0
    while head := redis.lrange(inbox_key(kind), 0, 1):
        batch, body = head if len(head) == 2 and head[0].isdigit() else (b"?", head[0])
        # A fresh number, taken now: bodies are split strictly in order, so the entries' numbers keep the
        # order in which their bodies were accepted (a body split again after a crash gets a newer one).
        seq = int(redis.incr(keys.SEQUENCE))
        _split_one(redis, kind, f"{kind}-{batch.decode()}", seq, body.decode("utf-8", errors="replace"))
        redis.lpop(inbox_key(kind), 2 if batch != b"?" else 1)
        done += 1
    return done


def _split_one(redis: Redis, kind: str, batch: str, seq: int, text: str) -> None:
    try:
        accepted = validate(kind, text)
    except InvalidPayload as exc:  # the intake checked it; only a body stored by another version can fail
        first = exc.problems[0]
        log.error(
            "1C %s batch %s dropped: it no longer passes validation (%s: %s)", kind, batch, first.path, first.message
        )
        return
    entries = pending.entries(kind, accepted)
    stale = pending.stage(redis, kind, entries, seq)
    log.info(
        "1C %s batch %s: %d items, %d keys pending, %d older than known dropped",
        kind, batch, len(accepted.items), len(entries) - stale, stale,
    )  # fmt: skip


def count(redis: Redis, kind: str) -> int:
    """Bodies waiting (each is two elements: its number, then the body)."""
    return int(redis.llen(inbox_key(kind))) // 2
