"""Absolute values kept in one shop record per (product, group): stock per store, price per price type.

Both work alike: find the record (its id cached after the first lookup), then ``update`` it, or ``add``
one when there is none. A record listed fresh that already holds the value is not written again; a cached
id that turns out stale (a manager deleted the record) is forgotten and looked up again next round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.runtime import Runtime
from bridge.shop.lists import ListCommand
from bridge.updates.catalog import find_records
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry
from bridge.updates.resolve import Pair
from bridge.updates.writes import Write, result_id, run_writes

RECORD_TTL = 24 * 3600
EPSILON = 1e-9


def number(value: float) -> int | float:
    """5.0 goes to the shop as 5: what a person typed in 1C, and what the shop shows."""
    return int(value) if float(value).is_integer() else value


def same(current: Any, wanted: float) -> bool:
    try:
        return abs(float(current) - wanted) < EPSILON
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class RecordKind:
    """How one kind of record is listed, written and compared."""

    listing: ListCommand  # the list method, its select and the name of the list in its result
    group_field: str  # "storeId" or "catalogGroupId"
    cache_key: Callable[[Pair], str]  # the Redis key remembering a record id
    update: str
    add: str
    result_key: str  # where the add method's result holds the new record
    fields: Callable[[Entry], dict[str, Any]]  # what to write, from the entry's value
    holds: Callable[[dict[str, Any], Entry], bool]  # whether a listed record already has the value


class RecordIds:
    """Record ids remembered per (product, group), so a repeated update skips the list call."""

    def __init__(self, rt: Runtime, key_of: Callable[[Pair], str]) -> None:
        self.redis = rt.redis
        self.key_of = key_of

    def get_many(self, pairs: Sequence[Pair]) -> dict[Pair, int]:
        if not pairs:
            return {}
        values = self.redis.mget([self.key_of(pair) for pair in pairs])
        return {pair: int(v) for pair, v in zip(pairs, values, strict=True) if v is not None}

    def remember(self, ids: dict[Pair, int]) -> None:
        if not ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for pair, record_id in ids.items():
            pipe.set(self.key_of(pair), record_id, ex=RECORD_TTL)
        pipe.execute()

    def forget(self, pair: Pair) -> None:
        self.redis.delete(self.key_of(pair))


def write_records(rt: Runtime, kind: RecordKind, targets: dict[Pair, Entry], outcomes: Outcomes) -> None:
    """Bring every (product, group) of ``targets`` to its entry's value."""
    ids = RecordIds(rt, kind.cache_key)
    cached = ids.get_many(list(targets))
    rows = find_records(rt, kind.listing, kind.group_field, [pair for pair in targets if pair not in cached])
    ids.remember({pair: int(row["id"]) for pair, row in rows.items()})
    writes: list[Write] = []
    for pair, entry in targets.items():
        fields = kind.fields(entry)
        if pair in cached:
            params = {"id": cached[pair], "fields": fields}
            writes.append(Write(kind.update, params, [entry], stale_on_error=_forgetter(ids, pair)))
        elif pair in rows:
            if kind.holds(rows[pair], entry):
                outcomes.apply([entry])  # already so in the shop
                continue
            writes.append(Write(kind.update, {"id": int(rows[pair]["id"]), "fields": fields}, [entry]))
        else:
            new = {"productId": pair[0], kind.group_field: pair[1], **fields}
            writes.append(Write(kind.add, {"fields": new}, [entry], on_success=_remembering(ids, pair, kind)))
    run_writes(rt.shop, writes, outcomes)


def _forgetter(ids: RecordIds, pair: Pair) -> Callable[[], None]:
    return lambda: ids.forget(pair)


def _remembering(ids: RecordIds, pair: Pair, kind: RecordKind) -> Callable[[Any], None]:
    def remember(result: Any) -> None:
        record_id = result_id(result, kind.result_key)
        if record_id is not None:
            ids.remember({pair: record_id})

    return remember
