"""``/healthz`` (the process runs) and ``/readyz`` (it can do its work: Redis answers; what waits and why)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse

from bridge import keys
from bridge.queue import QUEUES

READY_TIMEOUT = 5.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def _oldest_age(redis: Any, queue: str) -> float | None:
    job_id = await redis.lindex(f"rq:queue:{queue}", 0)
    if job_id is None:
        return None
    enqueued = _text(await redis.hget(f"rq:job:{_text(job_id)}", "enqueued_at"))
    if not enqueued:
        return None
    try:
        stamp = datetime.fromisoformat(enqueued.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return round(max(0.0, time.time() - stamp), 3)


async def readiness(redis: Any) -> dict[str, Any]:
    """The readiness document; raises RedisError when Redis cannot be reached."""
    await redis.ping()
    queues: dict[str, Any] = {}
    for name in QUEUES:
        scheduled = await redis.zcard(f"rq:scheduled:{name}")
        queues[name] = {
            "waiting": await redis.llen(f"rq:queue:{name}"),
            "scheduled": scheduled,
            "failed": await redis.zcard(f"rq:failed:{name}"),
            "oldest_waiting_seconds": await _oldest_age(redis, name),
        }
    circuit = {(_text(k) or ""): _text(v) for k, v in (await redis.hgetall(keys.ONEC_CIRCUIT)).items()}
    onec = {
        "circuit": circuit.get("state") or "closed",
        "since": circuit.get("since"),
        "reason": circuit.get("reason"),
    }
    bucket = {(_text(k) or ""): _text(v) for k, v in (await redis.hgetall(keys.SHOP_BUCKET)).items()}
    paused = _text(await redis.get(keys.SHOP_PAUSE_ALL))
    paused_until = float(paused) if paused and float(paused) > time.time() else None
    shop = {
        "rate_limit": bucket,
        "paused_until": datetime.fromtimestamp(paused_until, UTC).isoformat() if paused_until else None,
    }
    # Open alert incidents (bridge.ops.alerts): what the people on call have been told about.
    alerts = {(_text(k) or ""): json.loads(v) for k, v in (await redis.hgetall(keys.ALERT_INCIDENTS)).items()}
    return {"redis": "ok", "queues": queues, "onec": onec, "shop": shop, "alerts": alerts}


async def readyz(request: Request) -> JSONResponse:
    try:
        # A Redis host that does not answer at all must not hang the probe (TimeoutError is an OSError).
        body = await asyncio.wait_for(readiness(request.app.state.redis), READY_TIMEOUT)
    except (RedisError, OSError) as exc:
        return JSONResponse({"status": "unready", "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
    return JSONResponse({"status": "ready", **body})
