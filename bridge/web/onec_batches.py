"""``GET /1c/batches/{batch}``: what became of one push (or exchange file), for 1C's code to poll.

A 202 only says the items are safe in Redis. Whether they reached the shop, are still waiting for its rate
limit, lost to a newer value, or are held or dropped (and why) is kept per batch for seven days
(``bridge.updates.batches``); this answers with it. Same guard as the pushes.
"""

from __future__ import annotations

import logging
import re

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.updates import batches
from bridge.web.auth import guarded, onec_pusher
from bridge.web.responses import problem, redis_down

log = logging.getLogger("bridge.web.onec")

# Batch ids are "<kind>-<number>" for pushes and the exchange's own names: letters, digits and a few marks.
_BATCH = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


@guarded(onec_pusher)
async def onec_batch(request: Request) -> Response:
    batch = str(request.path_params.get("batch", ""))
    if not _BATCH.match(batch):
        return problem(404, "unknown_batch", "no such batch: a batch id is what a 202 answered, such as stock-17")
    try:
        stored = await request.app.state.redis.hgetall(batches.batch_key(batch))
    except (RedisError, OSError) as exc:
        log.error("batch %s not read: Redis unavailable (%s)", batch, exc)
        return redis_down()
    answer = batches.shown(batch, stored)
    if answer is None:
        return problem(
            404,
            "unknown_batch",
            f"no batch {batch!r}: it was never accepted, or it is older than {batches.TTL // 86400} days",
        )
    return JSONResponse(answer)


def routes() -> list[Route]:
    return [Route("/1c/batches/{batch}", onec_batch, methods=["GET"])]
