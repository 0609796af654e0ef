"""RQ's own enqueue of a job, recorded once per (queue, function) and replayed with each job's values.

The RQ job itself is built by RQ (``Queue.enqueue_job`` into a pipeline that is never executed); the enqueue
script replays the recorded commands inside Redis. RQ's storage format stays RQ's business.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rq import Queue
from rq.utils import get_call_string, utcparse

from bridge.queue.work import create_job
from bridge.scripts import pack_blob


def recorded_enqueue(
    queue: Queue,
    func: str,
    args: Sequence[Any],
    *,
    job_id: str,
    timeout: int,
    kwargs: dict[str, Any] | None = None,
) -> list[list[Any]]:
    """The Redis commands RQ would run to enqueue this job, recorded instead of run."""
    pipe = queue.connection.pipeline(transaction=False)
    job = create_job(queue, func, tuple(args), job_id=job_id, timeout=timeout, kwargs=kwargs)
    queue.enqueue_job(job, pipeline=pipe)
    return [list(cmd_args) for cmd_args, _options in pipe.command_stack]


def flatten(commands: list[list[Any]]) -> list[Any]:
    flat: list[Any] = []
    for command in commands:
        flat.append(len(command))
        flat.extend(command)
    return flat


class JobTemplate:
    """RQ's own enqueue of a job for one (queue, function), recorded once, with the values that change from
    job to job left as holes.

    Building an RQ ``Job`` per webhook (and sending its ~45 recorded arguments) was most of the intake's cost
    (profile in BENCHMARKS.md). Jobs of one function differ only in their id, their arguments (the ``data``
    and ``description`` fields) and their timestamps; everything else (retry policy, TTLs, origin, status) is
    the same every time. So RQ records two probe jobs, the positions where they differ become holes, and each
    hole gets a kind that says how to fill it. ``derive`` refuses (returns None, and every job is built by RQ
    as before) unless every difference is explained and a third job filled in from the template matches what
    RQ records for it, so a change in RQ's storage format falls back instead of writing jobs RQ cannot read.
    """

    PROBE_ARGS = (("\x01probe-a", "a"), ("\x02probe-b", "bb"))

    def __init__(self, queue: Queue, func: str, parts: list[bytes], holes: list[tuple[int, str, bytes, bytes]]):
        self.queue = queue
        self.func = func
        self.parts = parts
        self.holes = holes  # (0-based position in parts, kind, prefix, suffix)
        self.header = [pack_blob(parts), pack_blob(b"%d" % (position + 1) for position, *_ in holes)]

    @staticmethod
    def _record(queue: Queue, func: str, args: Sequence[Any], job_id: str, timeout: int) -> list[bytes]:
        encoder = queue.connection.get_encoder()
        commands = recorded_enqueue(queue, func, args, job_id=job_id, timeout=timeout)
        return [encoder.encode(value) for value in flatten(commands)]

    @staticmethod
    def _payload(queue: Queue, func: str, args: Sequence[Any]) -> bytes:
        """What RQ's ``data`` field holds once decompressed: its serializer's dump of (func, instance, args,
        kwargs)."""
        return bytes(queue.serializer.dumps((func, None, tuple(args), {})))

    @staticmethod
    def _compress(payload: bytes) -> bytes:
        """A zlib stream that RQ's ``zlib.decompress`` reads back as ``payload``: one stored (uncompressed)
        deflate block, written directly. ``zlib.compress`` sets up ~256 KB of state per call, which on the
        benchmark machine took longer than everything else about a job (BENCHMARKS.md); a job's payload is a
        hundred bytes, so there is nothing to gain from compressing it anyway."""
        size = len(payload)
        if size > 0xFFFF:  # more than one stored block holds
            return zlib.compress(payload)
        return (
            b"\x78\x01\x01"
            + struct.pack("<HH", size, size ^ 0xFFFF)
            + payload
            + struct.pack(">I", zlib.adler32(payload))
        )

    @staticmethod
    def _inflates_to(value: bytes, payload: bytes) -> bool:
        try:
            return zlib.decompress(value) == payload
        except zlib.error:
            return False

    @staticmethod
    def _description(func: str, args: Sequence[Any]) -> bytes:
        return (get_call_string(func, tuple(args), {}, max_length=75) or "").encode()

    @staticmethod
    def _is_time(value: bytes) -> bool:
        try:
            utcparse(value.decode())
        except (ValueError, UnicodeDecodeError):
            return False
        return True

    @classmethod
    def derive(cls, queue: Queue, func: str, *, timeout: int) -> JobTemplate | None:
        (args_a, args_b), ids = cls.PROBE_ARGS, ("template-probe-aaaaaaaa", "template-probe-bbbbbbbbbbbb")
        first = cls._record(queue, func, args_a, ids[0], timeout)
        second = cls._record(queue, func, args_b, ids[1], timeout)
        if len(first) != len(second):
            return None
        id_a, id_b = ids[0].encode(), ids[1].encode()
        holes: list[tuple[int, str, bytes, bytes]] = []
        for position, (a, b) in enumerate(zip(first, second, strict=True)):
            if cls._is_time(a) and cls._is_time(b):
                holes.append((position, "now", b"", b""))
            elif a == b:
                continue
            elif a.count(id_a) == 1 and a.replace(id_a, id_b) == b:
                prefix, suffix = a.split(id_a)
                holes.append((position, "id", prefix, suffix))
            elif cls._inflates_to(a, cls._payload(queue, func, args_a)) and cls._inflates_to(
                b, cls._payload(queue, func, args_b)
            ):
                holes.append((position, "data", b"", b""))
            elif a == cls._description(func, args_a) and b == cls._description(func, args_b):
                holes.append((position, "description", b"", b""))
            else:
                return None  # a difference we cannot explain: let RQ build every job
        template = cls(queue, func, first, holes)
        check_id, check_args = "template-check-cccccccc", ("300", "save")
        expected = cls._record(queue, func, check_args, check_id, timeout)
        filled = template.fill(check_id, check_args)
        if len(filled) != len(expected):
            return None
        for position, (got, wanted) in enumerate(zip(filled, expected, strict=True)):
            kind = next((k for p, k, _, _ in holes if p == position), None)
            if kind == "now":
                ok = cls._is_time(got)
            elif kind == "data":
                ok = zlib.decompress(got) == zlib.decompress(wanted)
            else:
                ok = got == wanted
            if not ok:
                return None
        return template

    def values(self, job_id: str, args: Sequence[Any]) -> list[bytes]:
        """The hole values of one job, in hole order."""
        # RQ's timestamp format, '%Y-%m-%dT%H:%M:%S.%fZ', written by isoformat (a fifth of strftime's cost).
        stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds").encode() + b"Z"
        job = job_id.encode()
        data = self._compress(self._payload(self.queue, self.func, args))
        description = self._description(self.func, args)
        return [
            prefix + job + suffix
            if kind == "id"
            else stamp
            if kind == "now"
            else data
            if kind == "data"
            else description
            for _position, kind, prefix, suffix in self.holes
        ]

    def fill(self, job_id: str, args: Sequence[Any]) -> list[bytes]:
        """The whole recorded command list for one job (what the Lua script builds from the holes)."""
        filled = list(self.parts)
        for (position, *_), value in zip(self.holes, self.values(job_id, args), strict=True):
            filled[position] = value
        return filled
