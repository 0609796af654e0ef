"""Exchange sessions: what ``checkauth`` opens and every later call of 1C shows by its cookie.

A session lives in Redis, so any web process can answer any call of one exchange, and a restarted web
process loses none. It is found by a digest of the cookie's value, never by the value itself, so neither
Redis, the sync log nor the admin API holds anything a caller could replay. What the logs and the uploads
name is the session's public id (``sid``).

Every call moves the session's expiry on (``BRIDGE_EXCHANGE_SESSION_TTL`` from the last call): an exchange of
a big catalogue takes as long as it takes, and an abandoned one goes away by itself with its uploads.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from bridge import keys
from bridge.texts import as_text

COOKIE_NAME = "bridge_exchange"


@dataclass(frozen=True)
class Session:
    sid: str  # public: names the uploads and the sync-log entries
    sessid: str  # the extra key checkauth hands out; 1C may send it back as sessid=…
    timestamp: int  # unix time of checkauth (mode=deactivate sends it back)
    exchange_type: str  # catalog or sale, as checkauth was called
    version: str  # the CommerceML version 1C named at init ("" when it named none)


def session_key(cookie: str) -> str:
    return keys.EXCHANGE_SESSION.format(cookie_hash=hashlib.sha256(cookie.encode()).hexdigest()[:40])


async def open_session(redis: AsyncRedis, exchange_type: str, ttl: int) -> tuple[str, Session]:
    """A new session: (the cookie's value, the session)."""
    cookie = secrets.token_urlsafe(24)
    session = Session(secrets.token_hex(8), secrets.token_hex(16), int(time.time()), exchange_type, "")
    key = session_key(cookie)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "sid": session.sid,
                "sessid": session.sessid,
                "timestamp": session.timestamp,
                "type": exchange_type,
                "version": "",
            },
        )
        pipe.expire(key, ttl)
        await pipe.execute()
    return cookie, session


async def find_session(redis: AsyncRedis, cookie: str, ttl: int) -> Session | None:
    """The session of this cookie, its expiry moved on; None for a cookie that names none (forged, expired)."""
    if not cookie or len(cookie) > 200:
        return None
    key = session_key(cookie)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(key)
        pipe.expire(key, ttl)
        raw, _ = await pipe.execute()
    if not raw:
        return None
    data: dict[str, str] = {as_text(k): as_text(v) for k, v in raw.items()}
    try:
        return Session(
            data["sid"], data["sessid"], int(data["timestamp"]), data.get("type", ""), data.get("version", "")
        )
    except (KeyError, ValueError):
        return None


async def remember_version(redis: AsyncRedis, cookie: str, version: str) -> None:
    await redis.hset(session_key(cookie), "version", version)


def same_sessid(offered: str | None, session: Session) -> bool:
    """``sessid`` is accepted, not required: absent is fine, a wrong one is refused."""
    if not offered:
        return True
    return secrets.compare_digest(offered.encode(), session.sessid.encode())


def describe(session: Session) -> dict[str, Any]:
    return {"sid": session.sid, "type": session.exchange_type, "started": session.timestamp, "version": session.version}
