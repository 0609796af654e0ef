"""The 1C circuit: one shared memory, across all workers, that 1C is unavailable.

During a backup, a configuration update or month closing, 1C refuses every call for minutes or hours. Without
a circuit every queued order would knock, wait for its timeout and back off on its own; with it, the first
``UNAVAILABLE`` answer opens the circuit and everyone else waits, while exactly one caller at a time probes
1C when a retry is due. The delay between probes doubles (``min_delay`` … ``max_delay``) while 1C stays
down, and the first answer that shows 1C is up again closes the circuit so the caller can bring the waiting
work forward instead of letting it sleep out its back-off.

State lives in the hash ``keys.ONEC_CIRCUIT`` (``state``, ``since`` as ISO UTC, ``reason`` in the peer's
words, ``retry_at`` as unix time, ``failures`` = failed probes) so ``/readyz`` can show it; every change is
one Lua script, so concurrent workers never interleave a read and a write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from redis import Redis

from bridge import keys
from bridge.onec.answers import Answer, Outcome
from bridge.texts import as_text

CLOSED: Final = "closed"
OPEN: Final = "open"

# KEYS[1] circuit hash, KEYS[2] probe key.  ARGV[1] now (unix s), ARGV[2] probe ttl (ms).
# Returns 1 when the caller may call 1C (closed, or open and this caller won the due probe), else 0.
_ALLOW = """
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then
  return 1
end
local retry_at = tonumber(redis.call('HGET', KEYS[1], 'retry_at') or '0') or 0
if tonumber(ARGV[1]) < retry_at then
  return 0
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

# KEYS[1] circuit hash, KEYS[2] probe key.
# ARGV[1] '1' when 1C was unavailable, else '0'; ARGV[2] now (unix s); ARGV[3] now as ISO text;
# ARGV[4] reason; ARGV[5] min_delay; ARGV[6] max_delay.
# Returns 1 when this call closed an open circuit, else 0.
_RECORD = """
redis.call('DEL', KEYS[2])
local now = tonumber(ARGV[2])
local is_open = redis.call('HGET', KEYS[1], 'state') == 'open'
if ARGV[1] == '1' then
  if not is_open then
    redis.call('HSET', KEYS[1], 'state', 'open', 'since', ARGV[3], 'reason', ARGV[4],
               'retry_at', tostring(now + tonumber(ARGV[5])), 'failures', '0')
    return 0
  end
  local retry_at = tonumber(redis.call('HGET', KEYS[1], 'retry_at') or '0') or 0
  redis.call('HSET', KEYS[1], 'reason', ARGV[4])
  if now >= retry_at then
    -- a due probe failed: wait twice as long as last time (calls that were already in flight when the
    -- circuit opened report before retry_at and must not push the next probe further out)
    local failures = tonumber(redis.call('HINCRBY', KEYS[1], 'failures', 1))
    local delay = math.min(tonumber(ARGV[5]) * math.pow(2, failures), tonumber(ARGV[6]))
    redis.call('HSET', KEYS[1], 'retry_at', tostring(now + delay))
  end
  return 0
end
if is_open then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'state', 'closed', 'since', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class CircuitState:
    """What ``/readyz`` and error messages show. ``since``: when the current state began (ISO UTC)."""

    state: Literal["closed", "open"]
    since: str | None
    reason: str | None
    retry_at: float | None

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> CircuitState:
        """The state stored in ``keys.ONEC_CIRCUIT`` (``HGETALL``, bytes or text); an empty hash is closed.

        The one reader of the hash's layout: ``Circuit.state`` and the status readers of ``/readyz``,
        ``/metrics`` and the alerts (``bridge.ops.status``), which fetch it in their own pipelines.
        """
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        if fields.get("state") != OPEN:
            return cls(CLOSED, fields.get("since") or None, None, None)
        retry_at = fields.get("retry_at")
        return cls(
            OPEN, fields.get("since") or None, fields.get("reason") or None, float(retry_at) if retry_at else None
        )


class Circuit:
    """The shared open/closed state of 1C, with one prober at a time and doubling probe delays.

    ``probe_ttl`` bounds how long a prober that died (killed worker) keeps everyone else from probing; it
    should outlast one call to 1C including the wait for a concurrency slot.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        min_delay: float = 5.0,
        max_delay: float = 300.0,
        probe_ttl: float = 180.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min_delay <= 0 or max_delay < min_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        self.redis = redis
        self.min_delay = float(min_delay)
        self.max_delay = float(max_delay)
        self.probe_ttl = probe_ttl
        self.clock = clock
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)

    def state(self) -> CircuitState:
        return CircuitState.from_hash(self.redis.hgetall(keys.ONEC_CIRCUIT))

    def allow(self) -> bool:
        """True when the caller may call 1C: the circuit is closed, or open and this caller won the due probe.

        Only one caller across all processes wins a probe (SET NX on ``keys.ONEC_PROBE``, inside the same
        script that checks ``retry_at``); it must report the answer with ``record``, which frees the probe.
        """
        allowed = self._allow(
            keys=[keys.ONEC_CIRCUIT, keys.ONEC_PROBE], args=[repr(self.clock()), max(1, int(self.probe_ttl * 1000))]
        )
        return int(allowed) == 1

    def record(self, answer: Answer) -> bool:
        """Note what 1C answered; True when this answer closed an open circuit (bring waiting work forward).

        Any answer at all (delivered, permanent, busy) proves 1C is up; only UNAVAILABLE opens the circuit.
        """
        now = self.clock()
        closed = self._record(
            keys=[keys.ONEC_CIRCUIT, keys.ONEC_PROBE],
            args=[
                "1" if answer.outcome is Outcome.UNAVAILABLE else "0",
                repr(now),
                datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                answer.reason,
                repr(self.min_delay),
                repr(self.max_delay),
            ],
        )
        return int(closed) == 1

    def release_probe(self) -> None:
        """Give back a probe won by ``allow`` when 1C was not called after all (no concurrency slot came), so
        that the next due caller probes at once rather than when the probe's ``probe_ttl`` runs out."""
        self.redis.delete(keys.ONEC_PROBE)

    def retry_in(self) -> float:
        """Seconds until the next probe is due (0 when closed or already due)."""
        current = self.state()
        if not current.is_open or current.retry_at is None:
            return 0.0
        return max(0.0, current.retry_at - self.clock())
