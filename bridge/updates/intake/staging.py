"""The intake's half of the inbox: a 1C body sent to Redis while it is checked, then kept or deleted.

A kept body goes on ``bridge:inbox:<kind>``; the worker's half, which splits the kept bodies into pending
updates, is ``bridge.updates.inbox``.
"""

from __future__ import annotations

import logging
import secrets
from types import TracebackType

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from bridge import keys
from bridge.updates.inbox import inbox_key

log = logging.getLogger("bridge.updates.inbox")  # one logger for the inbox, whichever side writes it

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

    async def number_only(self) -> int:
        """A sequence number for a body with no items, which is not kept: it names a batch that stays at zero.

        A nightly 1C job with nothing to send still gets its 202 and a batch it can look up; nothing goes on
        the inbox, so no flush is queued for it. The staged copy is deleted on exit, as a refused one is.
        """
        if self._failed is not None:
            raise self._failed
        await self._stored()
        return int(await self.redis.incr(keys.SEQUENCE))

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
