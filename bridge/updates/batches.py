"""What became of each push or exchange file: the tallies ``GET /1c/batches/{batch}`` answers with.

1C's code gets a ``batch`` id in the 202 and must be able to ask, later, whether its items reached the shop.
Each batch is one Redis hash (``bridge:batch:<batch>``, kept ``TTL`` seconds after its last change) of
counts, incremented where an item's fate is decided:

- ``accepted``: items the push or file brought (the intake; the exchange import when it stages);
- ``superseded``: items that lost to a newer value for their key (within the body, on staging, or in a flush);
- ``applied`` / ``unchanged``: items the shop now holds, written or already there;
- ``held`` / ``dropped``: with a count and one example reason per reason class (``held:<class>``,
  ``why:held:<class>``);
- ``waiting`` is what is left: accepted, and not yet settled;
- ``warned``: items applied (and counted there) without a part the shop lacks, per reason class like
  ``held``; not an outcome of its own, so it does not count towards settled.

The flush knows an entry only by the sequence number its body was staged with, so staging writes
``bridge:batch:seq:<seq>`` → batch once per body, and a flush round turns its entries' numbers into batches
with one ``MGET``. All of a round's increments go out in one pipeline: a few commands per batch and outcome
class, never one per item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from redis import Redis

from bridge import keys
from bridge.texts import as_text

TTL = 7 * 24 * 3600
COUNTED = ("accepted", "applied", "unchanged", "superseded", "held", "dropped")
MAX_REASON = 300


def batch_key(batch: str) -> str:
    return keys.BATCH.format(batch=batch)


def seq_key(seq: int | str) -> str:
    return keys.BATCH_OF_SEQ.format(seq=seq)


def note_staged(pipe: Any, batch: str, seq: int, *, accepted: int | None, superseded: int) -> None:
    """A body's items were staged with ``seq``: remember its batch, count what it brought and what lost at once."""
    pipe.set(seq_key(seq), batch, ex=TTL)
    key = batch_key(batch)
    if accepted is not None:
        pipe.hincrby(key, "accepted", accepted)
    if superseded:
        pipe.hincrby(key, "superseded", superseded)
    pipe.expire(key, TTL)


def note_accepted(pipe: Any, batch: str, accepted: int) -> None:
    """The intake took a body of ``accepted`` items (so the batch is known before its first flush)."""
    key = batch_key(batch)
    pipe.hincrby(key, "accepted", accepted)
    pipe.expire(key, TTL)


def batches_of(redis: Redis, seqs: Iterable[int]) -> dict[int, str]:
    """The batch of each sequence number still known (one MGET)."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    found = redis.mget([seq_key(s) for s in wanted])
    return {seq: as_text(batch) for seq, batch in zip(wanted, found, strict=True) if batch is not None}


class Tally:
    """Increments for many batches, gathered during a round and written in one pipeline."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, str]] = Counter()
        self.reasons: dict[tuple[int, str], str] = {}

    def add(self, seq: int, field: str, amount: int = 1, *, reason: str | None = None) -> None:
        self.counts[(seq, field)] += amount
        if reason is not None:
            self.reasons[(seq, field)] = reason[:MAX_REASON]

    def settle(
        self, seq: int, outcome: str, amount: int = 1, *, why: str | None = None, reason: str | None = None
    ) -> None:
        """``amount`` items of the body ``seq`` ended in ``outcome`` (with the reason's class for held and dropped)."""
        self.add(seq, outcome, amount)
        if why is not None:
            self.add(seq, f"{outcome}:{why}", amount, reason=reason)

    def write(self, redis: Redis, known: Mapping[int, str] | None = None) -> None:
        if not self.counts:
            return
        batches = dict(known) if known is not None else batches_of(redis, (seq for seq, _ in self.counts))
        pipe = redis.pipeline(transaction=False)
        touched: set[str] = set()
        for (seq, field), amount in self.counts.items():
            batch = batches.get(seq)
            if batch is None or not amount:
                continue
            pipe.hincrby(batch_key(batch), field, amount)
            reason = self.reasons.get((seq, field))
            if reason is not None:
                pipe.hset(batch_key(batch), f"why:{field}", reason)
            touched.add(batch)
        for batch in touched:
            pipe.expire(batch_key(batch), TTL)
        pipe.execute()


def read(redis: Redis, batch: str) -> dict[str, Any] | None:
    """The batch as ``GET /1c/batches/{batch}`` shows it; None for a batch unknown or expired."""
    return shown(batch, redis.hgetall(batch_key(batch)))


def shown(batch: str, stored: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The answer for a batch from its stored hash (read by a sync or an async client); None when empty."""
    raw = {as_text(k): as_text(v) for k, v in stored.items()}
    if not raw:
        return None
    counts = {name: max(int(raw.get(name, 0)), 0) for name in COUNTED}
    settled = sum(counts[name] for name in COUNTED if name != "accepted")
    answer: dict[str, Any] = {"batch": batch, **{n: counts[n] for n in COUNTED if n not in ("held", "dropped")}}
    answer["waiting"] = max(counts["accepted"] - settled, 0)
    counts["warned"] = max(int(raw.get("warned", 0)), 0)
    for outcome in ("held", "dropped", "warned"):
        reasons = []
        for field, value in sorted(raw.items()):
            if field.startswith(f"{outcome}:") and int(value) > 0:
                reasons.append(
                    {"class": field.split(":", 1)[1], "count": int(value), "example": raw.get(f"why:{field}", "")}
                )
        answer[outcome] = {"count": counts[outcome], "reasons": reasons}
    return answer
