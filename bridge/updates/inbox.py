"""Accepted 1C bodies waiting to be split into pending updates: the intake keeps a body whole, the flush splits it.

1C waits for the answer to a push, and splitting 50,000 items into coalescing keys costs ~0.2 s of Python.
So the intake (``bridge.web.onec_pushes``) only checks the body and stores it as it came, under a key of its
own, and appends its batch number and that key to the list ``bridge:inbox:<kind>``
(``bridge.updates.intake.staging``, the intake's half). The flush job, holding the kind's lock, splits the
bodies oldest first into ``bridge:pending:<kind>`` (``bridge.updates.pending``) before it sends anything, so "the latest value wins" follows the order in which the bodies were accepted,
exactly as if the intake had split them itself.

A body leaves the inbox only after all its items are pending. A worker killed in between leaves it
there, and the next flush splits it again: the same items give the same pending values, and no newer body
has been split yet (they go strictly in order), so nothing newer is overwritten.
"""

from __future__ import annotations

import logging

from redis import Redis

from bridge import keys
from bridge.texts import as_text
from bridge.updates import pending
from bridge.updates.intake.validation import InvalidPayload, validate
from bridge.updates.kinds import KINDS

log = logging.getLogger("bridge.updates.inbox")


def inbox_key(kind: str) -> str:
    return keys.UPDATES_INBOX.format(kind=kind)


def split(redis: Redis, kind: str) -> int:
    """Split every waiting body into pending entries, oldest first. Returns how many bodies were split.

    The caller holds the kind's flush lock, so no other worker splits or sends the same kind meanwhile, and
    the intake only appends: the head of the inbox is the body just split.
    """
    done = 0
    while head := redis.lrange(inbox_key(kind), 0, 1):
        batch, ref = head  # the intake pushes both in one command, so the head is never half an entry
        body = redis.get(ref)
        name = f"{kind}-{as_text(batch)}"
        if body is None:
            log.error("1C %s batch %s lost: its body is no longer in Redis (evicted?)", kind, name)
        else:
            _split_one(redis, kind, name, as_text(body))
        with redis.pipeline() as pipe:  # MULTI: the entry and its body leave together
            pipe.lpop(inbox_key(kind), 2)
            pipe.unlink(ref)
            pipe.execute()
        done += 1
    return done


def _split_one(redis: Redis, kind: str, batch: str, text: str) -> None:
    try:
        accepted = validate(KINDS[kind], text)
    except InvalidPayload as exc:  # the intake checked it; only a body stored by another version can fail
        first = exc.problems[0]
        log.error(
            "1C %s batch %s dropped: it no longer passes validation (%s: %s)", kind, batch, first.path, first.message
        )
        return
    # Bodies are split strictly in order and each takes a fresh number (``stage_items``), so the entries'
    # numbers keep the order in which their bodies were accepted (a body split again after a crash gets a
    # newer one).
    staged = pending.stage_items(redis, kind, accepted.items, accepted.stamps, batch=batch, count_accepted=False)
    log.info(
        "1C %s batch %s: %d items, %d keys pending, %d older than known dropped",
        kind, batch, staged.items, staged.pending, staged.stale,
    )  # fmt: skip


def count(redis: Redis, kind: str) -> int:
    """Bodies waiting (each is two elements: its number, then the key of the body)."""
    return int(redis.llen(inbox_key(kind))) // 2
