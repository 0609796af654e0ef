"""The files 1C uploads in a session (``mode=file``), kept in Redis in parts of ``PART`` bytes.

Redis, not the web process's disk: the import runs in a worker that may be on another host, and a web or
worker restart mid-exchange must lose nothing already answered ``success``. A file is a run of string keys
(``keys.EXCHANGE_PART``), each exactly ``PART`` bytes but the last; one script appends a chunk (filling the
last part, then opening new ones), counts it against the session's cap and moves the expiry on, so a chunk
is stored whole or not at all. Equal parts make the file seekable (a zip's directory is at its end), and the
worker reads it part by part (``open_file``): never a whole file in memory.

Names are 1C's (``import0_1.xml``, ``import_files/ab/cd.jpg``) after ``safe_name``: no absolute path, no
``..``, no backslash or NUL, no empty segment. They never become paths on a disk; they are checked so that
what the shop and the logs see is a plain relative name, and a zip member cannot pose as another file.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from redis import Redis

from bridge import keys
from bridge.texts import as_text

PART = 1024 * 1024
MAX_NAME = 255
IMAGE_LIMIT = 32 * 1024 * 1024  # a picture larger than this is not read into memory for the shop
# 1C on Linux sends some names with its own temporary folder in front (the shop's import strips these too).
_PREFIXES = ("tmp/", "upload/1c/webdata/")
_BAD = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")

# KEYS[1] files hash, KEYS[2] session hash. ARGV: name, part key prefix, data, part size, session cap, ttl.
# Returns the file's size after the append, or -1 when the session's cap would be passed (nothing written).
_APPEND = """
local size = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local total = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local data = ARGV[3]
local n = #data
if total + n > tonumber(ARGV[5]) then return -1 end
local psize = tonumber(ARGV[4])
local ttl = tonumber(ARGV[6])
local pos = 1
while pos <= n do
  local part = math.floor(size / psize)
  local room = psize - (size % psize)
  local piece = string.sub(data, pos, pos + room - 1)
  local key = ARGV[2] .. part
  redis.call('APPEND', key, piece)
  redis.call('EXPIRE', key, ttl)
  size = size + #piece
  pos = pos + #piece
end
redis.call('HSET', KEYS[1], ARGV[1], size)
redis.call('EXPIRE', KEYS[1], ttl)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'bytes', n) end
return size
"""


class UnsafeName(ValueError):
    """A file name that cannot be stored; str() says why, for 1C's operator."""


def safe_name(name: str | None) -> str:
    """1C's file name as a plain relative path (``a/b.jpg``), or ``UnsafeName``."""
    if not name or not name.strip():
        raise UnsafeName("не указано имя файла (параметр filename)")
    if "\x00" in name:
        raise UnsafeName("недопустимый символ NUL в имени файла")
    text = name.strip().replace("\\", "/")  # 1C on Windows may send import_files\\ab\\cd.jpg
    if _BAD.search(text):
        raise UnsafeName(f"недопустимые символы в имени файла {text[:80]!r}")
    if text.startswith("/"):
        text = text.lstrip("/")
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix) :]
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise UnsafeName(f"недопустимое имя файла {name[:80]!r}: путь выходит за папку обмена")
    clean = "/".join(parts)
    if len(clean.encode()) > MAX_NAME:
        raise UnsafeName(f"слишком длинное имя файла ({len(clean.encode())} байт, можно {MAX_NAME})")
    return clean


def file_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:24]


def files_key(sid: str) -> str:
    return keys.EXCHANGE_FILES.format(sid=sid)


def part_prefix(sid: str, name: str) -> str:
    return keys.EXCHANGE_PART.format(sid=sid, fid=file_id(name), n="")


def append_args(sid: str, session_key: str, name: str, data: bytes, cap: int, ttl: int) -> list[Any]:
    """The arguments of the append script (``eval(APPEND, *append_args(...))``), for a sync or async client."""
    return [2, files_key(sid), session_key, name, part_prefix(sid, name), data, PART, cap, ttl]


APPEND = _APPEND


def append(redis: Redis, sid: str, session_key: str, name: str, data: bytes, *, cap: int, ttl: int) -> int:
    """Append ``data`` to ``name``; the file's new size, or -1 when the session cap would be passed."""
    return int(redis.eval(_APPEND, *append_args(sid, session_key, name, data, cap, ttl)))


def sizes(redis: Redis, sid: str) -> dict[str, int]:
    """Every file of the session → its size."""
    return {as_text(k): int(v) for k, v in redis.hgetall(files_key(sid)).items()}


def size_of(redis: Redis, sid: str, name: str) -> int | None:
    raw = redis.hget(files_key(sid), name)
    return None if raw is None else int(raw)


def clear_keys(sid: str, stored: dict[str, int]) -> list[str]:
    """Every key holding the session's files (for ``init``, which starts the uploads afresh)."""
    found = [files_key(sid), keys.EXCHANGE_UNZIPPED.format(sid=sid)]
    for name, size in stored.items():
        prefix = part_prefix(sid, name)
        found.extend(f"{prefix}{n}" for n in range(max(1, -(-size // PART))))
    return found


class PartsReader(io.RawIOBase):
    """A stored file as a seekable, read-only binary stream that holds at most one part in memory."""

    def __init__(self, redis: Redis, sid: str, name: str, size: int) -> None:
        super().__init__()
        self.redis = redis
        self.prefix = part_prefix(sid, name)
        self.size = size
        self.position = 0
        self._part_no = -1
        self._part = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.size:
            return 0
        number, offset = divmod(self.position, PART)
        if number != self._part_no:
            raw = self.redis.get(f"{self.prefix}{number}")
            if raw is None:
                raise OSError("a part of the uploaded file is gone from Redis (expired or Redis was emptied)")
            self._part, self._part_no = raw if isinstance(raw, bytes) else raw.encode(), number
        chunk = self._part[offset : offset + len(buffer)]
        if not chunk:
            raise OSError("an uploaded file is shorter in Redis than its recorded size")
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def open_file(redis: Redis, sid: str, name: str) -> io.BufferedReader | None:
    """The stored file as a buffered stream, or None when the session has no such file."""
    size = size_of(redis, sid, name)
    if size is None:
        return None
    return io.BufferedReader(PartsReader(redis, sid, name, size), buffer_size=256 * 1024)


class SessionImages:
    """The pictures of a goods file, as the session uploaded them (``import_files/…``, loose or from a zip)."""

    def __init__(self, redis: Redis, sid: str) -> None:
        self.redis = redis
        self.sid = sid

    def read(self, path: str) -> bytes | None:
        try:
            name = safe_name(path)
        except UnsafeName:
            return None
        size = size_of(self.redis, self.sid, name)
        if size is None or size > IMAGE_LIMIT:
            return None
        stream = open_file(self.redis, self.sid, name)
        if stream is None:
            return None
        with stream:
            try:
                return stream.read()
            except OSError:
                return None
