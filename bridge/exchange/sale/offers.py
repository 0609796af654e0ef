"""Which orders wait for 1C's ``query``, and which of them a session's last query offered.

The order job (webhooks and polling feed it) notes each order it fetches here with its change stamp
(``dateUpdate`` and ``version``): ``bridge:exchange:sale:stamps`` (order id → stamp) and
``bridge:exchange:sale:waiting`` (order id → when it began to wait, so the oldest go first).

A ``query`` takes a page of the oldest waiting orders and remembers, per session, the stamp each had when it
was read (``bridge:exchange:sale:offered:<session>``). ``success`` then confirms exactly those: an order
leaves the waiting set only if its stamp is still the one offered (compare-and-delete, in one Lua call), so
an order changed in the shop after the query stays and is offered again. Without ``success`` nothing leaves:
the next query offers the same orders again, which 1C takes without harm (it matches ``Ид``/``Номер``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis

from bridge import keys
from bridge.texts import as_text

OFFERED_TTL = 7 * 24 * 3600  # 1C confirms within its exchange; a week covers a node left half-way for days

# KEYS[1] stamps, KEYS[2] waiting. ARGV: (order id, stamp) pairs, then ARGV[#] the time now.
_NOTE = """
local now = ARGV[#ARGV]
for i = 1, #ARGV - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 'NX', now, ARGV[i])
end
return 1
"""

# KEYS[1] stamps, KEYS[2] waiting, KEYS[3] the session's offered hash, KEYS[4] its confirmed marker.
# Returns {offered, confirmed id, …}; {-1} when the session has nothing to confirm.
_CONFIRM = """
local offered = redis.call('HGETALL', KEYS[3])
if #offered == 0 then return {-1} end
local answer = {#offered / 2}
for i = 1, #offered, 2 do
  local id, stamp = offered[i], offered[i + 1]
  if redis.call('HGET', KEYS[1], id) == stamp then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    answer[#answer + 1] = id
  end
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[4], #answer - 1, 'EX', ARGV[1])
return answer
"""


def stamp_of(order: Mapping[str, Any]) -> str:
    """What changes whenever the shop saves the order: its ``dateUpdate`` and ``version`` together."""
    return f"{as_text(order.get('dateUpdate')) or ''}|{as_text(order.get('version')) or ''}"


def note(redis: Redis, order_id: str, stamp: str) -> None:
    """The order (in this state) waits for 1C's query; a waiting order keeps its place in the line."""
    redis.register_script(_NOTE)(keys=[keys.SALE_STAMPS, keys.SALE_WAITING], args=[order_id, stamp, time.time()])


def waiting_count(redis: Redis) -> int:
    return int(redis.zcard(keys.SALE_WAITING))


def page(redis: Redis, size: int) -> list[tuple[str, str]]:
    """The ``size`` orders that have waited longest, with the stamp each has now."""
    ids = [as_text(raw) or "" for raw in redis.zrange(keys.SALE_WAITING, 0, max(size, 1) - 1)]  # type: ignore[arg-type]
    if not ids:
        return []
    stamps = redis.hmget(keys.SALE_STAMPS, ids)
    return [(order_id, as_text(stamp) or "") for order_id, stamp in zip(ids, stamps, strict=True)]


def begin_offer(redis: Redis, session: str) -> None:
    """A new query of this session: what an earlier one offered is no longer what ``success`` confirms."""
    pipe = redis.pipeline()
    pipe.delete(keys.SALE_OFFERED.format(session=session))
    pipe.delete(keys.SALE_CONFIRMED.format(session=session))
    pipe.execute()


def record_offered(redis: Redis, session: str, offered: Sequence[tuple[str, str]]) -> None:
    """These orders, with the stamps read before they were fetched, went out in this session's query."""
    if not offered:
        return
    key = keys.SALE_OFFERED.format(session=session)
    pipe = redis.pipeline()
    pipe.hset(key, mapping=dict(offered))
    pipe.expire(key, OFFERED_TTL)
    pipe.execute()


def drop(redis: Redis, order_ids: Sequence[str]) -> None:
    """Orders the shop no longer has: nothing to offer."""
    if order_ids:
        pipe = redis.pipeline()
        pipe.hdel(keys.SALE_STAMPS, *order_ids)
        pipe.zrem(keys.SALE_WAITING, *order_ids)
        pipe.execute()


@dataclass(frozen=True)
class Confirmation:
    """What one ``success`` did. ``offered`` is None when the session had no query to confirm; ``changed``
    counts the offered orders that changed in the shop since, which wait for the next query."""

    confirmed: tuple[str, ...]
    offered: int | None
    repeated: bool = False  # the session's query was confirmed already

    @property
    def changed(self) -> int:
        return (self.offered or 0) - len(self.confirmed)


def confirm(redis: Redis, session: str) -> Confirmation:
    """Confirm exactly what this session's last query offered, in the state it was offered."""
    script = redis.register_script(_CONFIRM)
    answer = script(
        keys=[
            keys.SALE_STAMPS,
            keys.SALE_WAITING,
            keys.SALE_OFFERED.format(session=session),
            keys.SALE_CONFIRMED.format(session=session),
        ],
        args=[OFFERED_TTL],
    )
    if int(answer[0]) == -1:
        repeated = redis.exists(keys.SALE_CONFIRMED.format(session=session)) > 0
        return Confirmation((), None, repeated=repeated)
    return Confirmation(tuple(as_text(raw) or "" for raw in answer[1:]), int(answer[0]))
