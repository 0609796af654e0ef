"""``GET /metrics``.

The figures come from Redis (see ``bridge.ops.metrics``), so this endpoint shows what every web process,
worker and clock did, whichever web process is scraped. Reading them uses the sync Redis client in a
thread, because prometheus-client's collectors are synchronous. Shop events are counted by
``bridge.web.event_accounting``. With Redis unreachable it still answers 200, with ``bridge_redis_up 0``
(``bridge.ops.metrics.exposition``).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bridge.ops import metrics


async def metrics_endpoint(request: Request) -> Response:
    accounting = getattr(request.app.state, "event_accounting", None)
    if accounting is not None:
        await accounting.flushed()  # this process's own counts first, so a scrape right after an event shows it
    body = await run_in_threadpool(metrics.exposition, request.app.state.sync_redis)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
