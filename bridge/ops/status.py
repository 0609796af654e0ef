"""What waits and why: the one reader of the queues, the 1C circuit, the shop's pause and the open alerts.

``/readyz`` (``bridge.web.health``), ``/metrics`` (``bridge.ops.metrics``) and the alerts (``bridge.ops.alerts``)
show the same facts, so they take them from here; two readers of one fact drift apart (the age of the oldest
waiting job was once computed twice, differently). This module knows what to fetch together, not how the
owners store it: RQ's keys come from RQ's own names (``Queue``'s prefix, the registries' ``key_template``,
``Job.key_for``), the circuit hash is read by ``CircuitState.from_hash`` and the shop's pause by
``bridge.shop.ratelimit.pause_end``.

A snapshot costs two pipelined round trips, the same in both forms: ``read`` for the collector and the alerts
(sync clients, in threads and the clock), ``read_async`` for ``/readyz`` on the event loop. The first trip
asks for everything, the second for the enqueue time of each queue's next job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bridge import keys
from bridge.onec.circuit import CircuitState
from bridge.queue import FAILURE_TTL, QUEUES
from bridge.shop.ratelimit import pause_end
from bridge.texts import as_text


@dataclass(frozen=True)
class QueueKeys:
    """Where RQ keeps one queue: the list of waiting job ids and the registries of the other states."""

    waiting: str
    scheduled: str
    started: str
    failed: str

    @classmethod
    def of(cls, queue: str) -> QueueKeys:
        return cls(
            waiting=Queue.redis_queue_namespace_prefix + queue,  # what ``Queue(queue).key`` is
            scheduled=ScheduledJobRegistry.key_template.format(queue),
            started=StartedJobRegistry.key_template.format(queue),
            failed=FailedJobRegistry.key_template.format(queue),
        )


@dataclass(frozen=True)
class QueueStatus:
    """One queue's jobs by state. ``oldest_waiting_seconds``: None when nothing waits (or its age is unknown)."""

    name: str
    waiting: int
    scheduled: int
    started: int
    failed: int
    oldest_waiting_seconds: float | None


@dataclass(frozen=True)
class ShopStatus:
    """The shared leaky bucket (its stored hash and the waits it caused) and the pause of every call."""

    rate_limit: dict[str, str]
    paused_until: float | None  # unix time, while the shop blocks every call (OVERLOAD_LIMIT)
    waits: int
    wait_seconds: float


@dataclass(frozen=True)
class Status:
    """Everything at one moment, ``at`` (unix time), from which the ages are counted."""

    at: float
    queues: tuple[QueueStatus, ...]
    circuit: CircuitState
    shop: ShopStatus
    alerts: dict[str, dict[str, Any]]  # alert name → the open incident (``since``, ``title``)

    @property
    def circuit_open_seconds(self) -> float:
        """How long the 1C circuit has been open; 0 while it is closed."""
        opened = open_since(self.circuit)
        return max(0.0, self.at - opened) if opened is not None else 0.0


def read(redis: Redis, queues: Sequence[str] = QUEUES) -> Status:
    """A snapshot through a sync client; raises what Redis raises."""
    pipe = redis.pipeline(transaction=False)
    _ask(pipe, queues)
    answers = pipe.execute()
    heads = _heads(answers, len(queues))
    stamps: list[Any] = []
    if any(heads):
        pipe = redis.pipeline(transaction=False)
        _ask_stamps(pipe, heads)
        stamps = pipe.execute()
    return _snapshot(queues, answers, heads, stamps, time.time())


async def read_async(redis: Any, queues: Sequence[str] = QUEUES) -> Status:
    """The same through a ``redis.asyncio`` client, as the web process holds."""
    pipe = redis.pipeline(transaction=False)
    _ask(pipe, queues)
    answers = await pipe.execute()
    heads = _heads(answers, len(queues))
    stamps: list[Any] = []
    if any(heads):
        pipe = redis.pipeline(transaction=False)
        _ask_stamps(pipe, heads)
        stamps = await pipe.execute()
    return _snapshot(queues, answers, heads, stamps, time.time())


# -- single facts, for the alerts' checks ----------------------------------------------------------------------


def circuit(redis: Redis) -> CircuitState:
    return CircuitState.from_hash(redis.hgetall(keys.ONEC_CIRCUIT))


def open_since(state: CircuitState) -> float | None:
    """When the circuit opened (unix time); None while it is closed or when the moment is unreadable."""
    return _moment(state.since) if state.is_open else None


def shop_paused_until(redis: Redis, now: float) -> float | None:
    """When every shop call may go out again, if the shop blocked them (OVERLOAD_LIMIT) and ``now`` is before."""
    return pause_end(redis.get(keys.SHOP_PAUSE_ALL), now)


def failed_since(redis: Redis, moment: float, queues: Sequence[str] = QUEUES) -> int:
    """How many jobs failed for good since ``moment``. RQ scores a failed job by when it expires, which is its
    failure time plus its failure TTL, the same for every job of the bridge."""
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        pipe.zcount(QueueKeys.of(queue).failed, moment + FAILURE_TTL, "+inf")
    return sum(int(n) for n in pipe.execute())


def open_alerts(redis: Redis) -> dict[str, dict[str, Any]]:
    return _alerts(redis.hgetall(keys.ALERT_INCIDENTS))


# -- the two round trips, written once for both clients -----------------------------------------------------------

_PER_QUEUE = 5  # LLEN, three ZCARDs, and the id of the next job


def _ask(pipe: Any, queues: Sequence[str]) -> None:
    for queue in queues:
        where = QueueKeys.of(queue)
        pipe.llen(where.waiting)
        pipe.zcard(where.scheduled)
        pipe.zcard(where.started)
        pipe.zcard(where.failed)
        pipe.lindex(where.waiting, 0)
    pipe.hgetall(keys.ONEC_CIRCUIT)
    pipe.hgetall(keys.SHOP_BUCKET)
    pipe.mget([keys.SHOP_WAITS, keys.SHOP_WAIT_SECONDS, keys.SHOP_PAUSE_ALL])
    pipe.hgetall(keys.ALERT_INCIDENTS)


def _heads(answers: list[Any], queue_count: int) -> list[str | None]:
    return [as_text(answers[i * _PER_QUEUE + 4]) for i in range(queue_count)]


def _ask_stamps(pipe: Any, heads: list[str | None]) -> None:
    for job_id in heads:
        if job_id:
            pipe.hget(Job.key_for(job_id), "enqueued_at")


def _snapshot(
    queues: Sequence[str], answers: list[Any], heads: list[str | None], stamps: list[Any], now: float
) -> Status:
    found = iter(stamps)
    states = []
    for i, (name, head) in enumerate(zip(queues, heads, strict=True)):
        waiting, scheduled, started, failed, _ = answers[i * _PER_QUEUE : (i + 1) * _PER_QUEUE]
        enqueued = _moment(as_text(next(found))) if head else None
        age = round(max(0.0, now - enqueued), 3) if enqueued is not None else None
        states.append(QueueStatus(name, int(waiting), int(scheduled), int(started), int(failed), age))
    circuit_hash, bucket, (waits, wait_seconds, paused_all), incidents = answers[len(queues) * _PER_QUEUE :]
    shop = ShopStatus(
        rate_limit={as_text(k): as_text(v) for k, v in bucket.items()},
        paused_until=pause_end(paused_all, now),
        waits=int(waits or 0),
        wait_seconds=float(wait_seconds or 0),
    )
    return Status(now, tuple(states), CircuitState.from_hash(circuit_hash), shop, _alerts(incidents))


def _alerts(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return {as_text(name): json.loads(incident) for name, incident in raw.items()}


def _moment(iso_time: str | None) -> float | None:
    """Unix time of an ISO time as RQ and the circuit write it (``Z`` or an offset; none means UTC)."""
    if not iso_time:
        return None
    try:
        moment = datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
