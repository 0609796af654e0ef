"""Accepted 1C bodies waiting to be split into pending updates: the intake keeps a body whole, the flush splits it.

1C waits for the answer to a push, and splitting 50,000 items into coalescing keys costs ~0.2 s of Python.
So the intake (``bridge.web.onec_pushes``) only checks the body and stores it as it came, under a key of its
own, and appends its batch number and that key to the list ``bridge:inbox:<kind>``. The flush job, holding
the kind's lock, splits the bodies oldest first into ``bridge:pending:<kind>`` (``bridge.updates.pending``)
before it sends anything, so "the latest value wins" follows the order in which the bodies were accepted,
exactly as if the intake had split them itself.

A body leaves the inbox only after all its items are pending. A worker killed in between leaves it
there, and the next flush splits it again: the same items give the same pending values, and no newer body
has been split yet (they go strictly in order), so nothing newer is overwritten.
"""

from __future__ import annotations

import logging
import secrets
from types import TracebackType

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from bridge import keys
from bridge.updates import pending
from bridge.updates.intake.validation import InvalidPayload, validate

log = logging.getLogger("bridge.updates.inbox")

# A staged body is kept or deleted within its request; one still there after this belongs to a request that
# died (the process was killed mid-check) and expires.
STAGED_TTL = 3600

# KEYS: the staged body, the kind's inbox, the sequence. The body keeps its key: no 3 MB copy.
_KEEP = """
if redis.call('PERSIST', KEYS[1]) == 0 then
    return redis.error_reply('the staged body is gone (expired or evicted)')
end
local seq = redis.call('INCR', KEYS[3])
redis.call('RPUSH', KEYS[2], seq, KEYS[1])
return seq
"""


def inbox_key(kind: str) -> str:
    return keys.UPDATES_INBOX.format(kind=kind)


class StagedBody:
    """A body sent to Redis as soon as it is read, while the intake checks it; then kept or deleted.

    Storing 3 MB takes Redis a few milliseconds (reading it, copying it, appending it to the AOF before it
    answers), and 1C waits for all of it. Sent first, the body is stored while this process checks it (the
    check is CPU here, Redis works on its own): the intake waits only for the send. Until it is kept the body
    sits under a key of its own with an expiry, which no flush looks at, so a refused body changes nothing:
    it is deleted at once, and one whose request died expires.

    The command goes out on a connection taken from the pool and held until its answer is read: the
    client's usual call would wait for that answer before the check could start.
    """

    def __init__(self, redis: AsyncRedis, kind: str, body: bytes) -> None:
        self.redis = redis
        self.kind = kind
        self.body = body
        self.key = keys.UPDATES_BODY.format(kind=kind, token=secrets.token_hex(8))
        self._connection: AbstractConnection | None = None
        self._kept = False
        self._failed: RedisError | OSError | None = None

    async def __aenter__(self) -> StagedBody:
        """Send the body. Redis being down is only raised by ``keep``: a bad body still gets its 400."""
        pool = self.redis.connection_pool
        try:
            connection = await pool.get_connection()
        except (RedisError, OSError) as exc:
            self._failed = exc
            return self
        try:
            await connection.send_command("SET", self.key, self.body, "EX", STAGED_TTL)
        except BaseException as exc:
            await connection.disconnect()
            await pool.release(connection)
            if not isinstance(exc, (RedisError, OSError)):
                raise
            self._failed = exc
            return self
        self._connection = connection
        return self

    async def _stored(self) -> None:
        """Read Redis's answer to the ``SET``; its error, if any, is raised here."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.read_response()
        except BaseException:
            await connection.disconnect()  # an answer may be left unread: the connection is not reusable
            raise
        finally:
            await self.redis.connection_pool.release(connection)

    async def keep(self) -> int:
        """Put the body on the kind's inbox, for the flush to split; its sequence number, which names the batch."""
        if self._failed is not None:
            raise self._failed
        await self._stored()
        seq = int(await self.redis.register_script(_KEEP)(keys=[self.key, inbox_key(self.kind), keys.SEQUENCE]))
        self._kept = True
        return seq

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._kept or self._failed is not None:
            return
        try:
            await self._stored()
            await self.redis.unlink(self.key)
        except (RedisError, OSError) as exc:  # it expires by itself; the request's own outcome matters more
            log.warning("a refused 1C %s body was not deleted (%s); it expires in %d s", self.kind, exc, STAGED_TTL)


def split(redis: Redis, kind: str) -> int:
    """Split every waiting body into pending entries, oldest first. Returns how many bodies were split.

    The caller holds the kind's flush lock, so no other worker splits or sends the same kind meanwhile, and
    the intake only appends: the head of the inbox is the body just split.
    """
    done = 0
    while head := redis.lrange(inbox_key(kind), 0, 1):
        numbered = len(head) == 2 and head[0].isdigit()
        batch, ref = head if numbered else (b"?", head[0])
        # Earlier versions stored the body itself in the list; it still splits.
        by_key = ref.startswith(keys.PREFIX.encode())
        body = redis.get(ref) if by_key else ref
        # A fresh number, taken now: bodies are split strictly in order, so the entries' numbers keep the
        # order in which their bodies were accepted (a body split again after a crash gets a newer one).
        seq = int(redis.incr(keys.SEQUENCE))
        name = f"{kind}-{batch.decode()}"
        if body is None:
            log.error("1C %s batch %s lost: its body is no longer in Redis (evicted?)", kind, name)
        else:
            _split_one(redis, kind, name, seq, body.decode("utf-8", errors="replace"))
        with redis.pipeline() as pipe:  # MULTI: the entry and its body leave together
            pipe.lpop(inbox_key(kind), 2 if numbered else 1)
            if by_key:
                pipe.unlink(ref)
            pipe.execute()
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
    """Bodies waiting (each is two elements: its number, then the key of the body)."""
    return int(redis.llen(inbox_key(kind))) // 2
