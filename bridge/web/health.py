"""``/healthz`` (the process runs) and ``/readyz`` (it can do its work: Redis answers, a worker and a clock run;
what waits and why)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bridge import keys
from bridge.ops import liveness, status
from bridge.texts import as_text
from bridge.updates.kinds import KINDS

READY_TIMEOUT = 5.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readiness(redis: Any) -> dict[str, Any]:
    """The readiness document (``bridge.ops.status``, as ``/metrics`` shows it); raises RedisError when Redis
    cannot be reached."""
    snapshot = await status.read_async(redis)
    queues = {
        queue.name: {
            "waiting": queue.waiting,
            "scheduled": queue.scheduled,
            "failed": queue.failed,
            "oldest_waiting_seconds": queue.oldest_waiting_seconds,
        }
        for queue in snapshot.queues
    }
    onec = {"circuit": snapshot.circuit.state, "since": snapshot.circuit.since, "reason": snapshot.circuit.reason}
    paused_until = snapshot.shop.paused_until
    shop = {
        "rate_limit": snapshot.shop.rate_limit,
        "paused_until": datetime.fromtimestamp(paused_until, UTC).isoformat() if paused_until else None,
    }
    alive = await liveness.read_async(redis)
    # Open alert incidents (bridge.ops.alerts): what the people on call have been told about.
    return {
        "redis": "ok",
        "queues": queues,
        "onec": onec,
        "shop": shop,
        "alerts": snapshot.alerts,
        "held": await held_updates(redis),
        **alive.as_dict(),
        "problems": alive.problems(),
    }


async def held_updates(redis: Any) -> dict[str, Any]:
    """Updates held until the mappings are fixed, per kind with their reasons (``bridge.updates.holds``)."""
    kinds = list(KINDS)
    pipe = redis.pipeline(transaction=False)
    for kind in kinds:
        pipe.hlen(keys.UPDATES_HELD.format(kind=kind))
        pipe.hvals(keys.UPDATES_HELD_REASONS.format(kind=kind))
    answers = await pipe.execute()
    held: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        count, reasons = int(answers[2 * i]), answers[2 * i + 1]
        if count:
            words = sorted(json.loads(as_text(r)).get("reason", "") for r in reasons)
            held[kind] = {"count": count, "reasons": words}
    return held


async def readyz(request: Request) -> JSONResponse:
    try:
        # A Redis host that does not answer at all must not hang the probe (TimeoutError is an OSError).
        body = await asyncio.wait_for(readiness(request.app.state.redis), READY_TIMEOUT)
    except (RedisError, OSError) as exc:
        return JSONResponse({"status": "unready", "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
    # No worker or no clock is "degraded", still 200: this web process accepts and queues work, and a load
    # balancer that took every web instance out for a stopped worker would lose the shop's webhooks too.
    return JSONResponse({"status": "degraded" if body["problems"] else "ready", **body})
