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

The CommerceML exchange stages its items itself, without the inbox (``stage_after_inbox``): it first splits
what waits here, then stages, both under the kind's split lock. So a body accepted before the import is split
before the import's items are pending and cannot overwrite them, and a body accepted after it is split after
them and wins, as "the latest accepted value wins" promises across both intakes. The lock is the split's own,
not the flush's: a flush holds that one through the shop's writes (seconds to minutes), while a split holds
this one for milliseconds. A holder killed mid-way frees it when its lease runs out (``SPLIT_LEASE``); what it
had split or staged stays, and the rest is split or staged again, the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from redis import Redis
from redis.exceptions import LockError

from bridge import keys
from bridge.errors import Cause, TransientError
from bridge.locks import renewed
from bridge.texts import as_text
from bridge.updates import pending
from bridge.updates.intake.validation import InvalidPayload, validate
from bridge.updates.kinds import KINDS

log = logging.getLogger("bridge.updates.inbox")

# The split lock's lease, renewed while its holder works (a killed holder frees it within this), and how long
# a splitter waits for it: a split of a long backlog holds it for its whole length, never for shop requests.
SPLIT_LEASE = 30
SPLIT_RENEW = 10.0
SPLIT_WAIT = 300.0


def inbox_key(kind: str) -> str:
    return keys.UPDATES_INBOX.format(kind=kind)


@contextmanager
def splitting(redis: Redis, kind: str) -> Iterator[None]:
    """Hold the kind's split lock for the block: one worker at a time splits its inbox or stages past it.

    Two splitters at once would each split the head body and then pop one body each, so one of the bodies
    would leave the inbox unsplit. Raises a "busy" ``TransientError`` when the lock is not free within
    ``SPLIT_WAIT`` seconds (the flush then retries shortly).
    """
    lock = redis.lock(keys.UPDATES_SPLIT_LOCK.format(kind=kind), timeout=SPLIT_LEASE, thread_local=False)
    if not lock.acquire(blocking=SPLIT_WAIT > 0, blocking_timeout=SPLIT_WAIT if SPLIT_WAIT > 0 else None):
        raise TransientError(f"the {kind} inbox is being split by another worker", cause=Cause.BUSY)
    try:
        with renewed(lock, SPLIT_RENEW):
            yield
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the %s split lock expired before its holder finished", kind)


def split(redis: Redis, kind: str) -> int:
    """Split every waiting body into pending entries, oldest first. Returns how many bodies were split."""
    with splitting(redis, kind):
        return _split_all(redis, kind)


def stage_after_inbox(
    redis: Redis, kind: str, items: Sequence[dict[str, Any]], stamps: Sequence[int | None], *, batch: str
) -> pending.Staged:
    """Stage items of an intake that does not go through the inbox, as accepted now: after every body waiting.

    The bodies accepted before are split first, under the same lock, so none of them is split after these
    items and overwrites them (``pending.stage_items`` compares ``ts`` only, and the exchange sends none).
    """
    with split_first(redis, kind):
        return pending.stage_items(redis, kind, items, stamps, batch=batch)


@contextmanager
def split_first(redis: Redis, kind: str) -> Iterator[None]:
    """Split every body waiting, then let the caller stage under the same lock (``stage_after_inbox`` for
    items, the CommerceML import for the texts it built itself)."""
    with splitting(redis, kind):
        _split_all(redis, kind)
        yield


def _split_all(redis: Redis, kind: str) -> int:
    """The split itself; the caller holds the split lock, and the intake only appends: the head of the inbox
    is the body just split."""
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
