"""Unpacking the zip 1C sends when ``init`` offered ``zip=yes`` (also its own ``v8_XXXX_XXXXX.zip``).

1C uploads one archive in chunks, then calls ``import`` for the files inside it by name (``import0_1.xml``), so
every zip of the session is unpacked, once, before the first import of that session runs. It is done by the
import job, never by the web: a big archive takes longer than 1C waits for an answer.

An archive is hostile until proven otherwise. Its members are read as streams and their bytes counted as
they come out (the sizes the archive claims are not believed): a member that unpacks to more than
``BRIDGE_EXCHANGE_ZIP_RATIO`` times its packed size, more members than ``BRIDGE_EXCHANGE_ZIP_ENTRIES``, or
more in all than the session may hold (``BRIDGE_EXCHANGE_SESSION_BYTES``) stops the unpacking; a member
whose name leaves the exchange folder (``../``, an absolute path) refuses the archive. Members are stored as
uploads of their own under their sanitised names, so an import finds them as if 1C had sent them loose.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass

from redis import Redis

from bridge import keys
from bridge.exchange import uploads

READ = 256 * 1024


class ZipRefused(Exception):
    """An archive that cannot be unpacked; str() is the sentence for 1C's operator (Russian)."""


@dataclass(frozen=True)
class Limits:
    session_bytes: int
    ratio: int
    entries: int
    ttl: int


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def unpack_all(redis: Redis, sid: str, session_key: str, limits: Limits) -> list[str]:
    """Unpack every zip of the session not yet unpacked; the names of the members stored.

    A zip is marked unpacked only after all its members are stored, so a job killed halfway unpacks it again
    (the members are cleared first, so nothing is appended twice).
    """
    done_key = keys.EXCHANGE_UNZIPPED.format(sid=sid)
    stored: list[str] = []
    for name in sorted(uploads.sizes(redis, sid)):
        if not is_zip(name) or redis.sismember(done_key, name):
            continue
        stored.extend(_unpack(redis, sid, session_key, name, limits))
        redis.sadd(done_key, name)
        redis.expire(done_key, limits.ttl)
    return stored


def _unpack(redis: Redis, sid: str, session_key: str, name: str, limits: Limits) -> list[str]:
    stream = uploads.open_file(redis, sid, name)
    if stream is None:
        return []
    with stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ZipRefused(f"Архив {name} повреждён или загружен не полностью ({exc})") from exc
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > limits.entries:
                raise ZipRefused(
                    f"В архиве {name} {len(members)} файлов, больше допустимого "
                    f"(BRIDGE_EXCHANGE_ZIP_ENTRIES = {limits.entries})"
                )
            targets = []
            for member in members:
                try:
                    targets.append(uploads.safe_name(member.filename))
                except uploads.UnsafeName as exc:
                    raise ZipRefused(f"Архив {name} отклонён: {exc}") from exc
            _clear(redis, sid, session_key, targets)
            for member, target in zip(members, targets, strict=True):
                _copy(redis, sid, session_key, archive, member, target, name, limits)
    return targets


def _clear(redis: Redis, sid: str, session_key: str, names: list[str]) -> None:
    """Members left by an unpacking that was cut short: removed, and their bytes given back to the session."""
    stored = uploads.sizes(redis, sid)
    again = {n: stored[n] for n in names if n in stored}
    if not again:
        return
    part_keys = [k for k in uploads.clear_keys(sid, again) if k.startswith(keys.PREFIX + "exchange:part:")]
    with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*part_keys)
        pipe.hdel(uploads.files_key(sid), *again)
        pipe.hincrby(session_key, "bytes", -sum(again.values()))
        pipe.execute()


def _copy(
    redis: Redis,
    sid: str,
    session_key: str,
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    target: str,
    name: str,
    limits: Limits,
) -> None:
    allowed = max(member.compress_size, 1) * limits.ratio
    written = 0
    try:
        with archive.open(member) as source:
            while True:
                chunk = source.read(READ)
                if not chunk:
                    break
                written += len(chunk)
                if written > allowed:
                    raise ZipRefused(
                        f"Архив {name} отклонён: файл {target} распаковывается более чем в {limits.ratio} раз "
                        "(BRIDGE_EXCHANGE_ZIP_RATIO); похоже на zip-бомбу"
                    )
                if uploads.append(redis, sid, session_key, target, chunk, cap=limits.session_bytes, ttl=limits.ttl) < 0:
                    raise ZipRefused(
                        f"Архив {name} отклонён: распакованные файлы больше допустимого объёма сеанса "
                        f"(BRIDGE_EXCHANGE_SESSION_BYTES = {limits.session_bytes})"
                    )
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, ValueError) as exc:
        raise ZipRefused(f"Архив {name}: файл {target} не читается ({exc})") from exc
    if written == 0:
        uploads.append(redis, sid, session_key, target, b"", cap=limits.session_bytes, ttl=limits.ttl)
