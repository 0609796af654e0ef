"""The Starlette application: routes, and the Redis clients they share."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.heap import settled_heap
from bridge.queue import QUEUES
from bridge.queue.enqueue import Enqueuer
from bridge.settings import Settings
from bridge.web import admin, console, exchange, exchange_sale, onec_batches, onec_pushes
from bridge.web.event_accounting import EventAccounting
from bridge.web.health import healthz, readyz
from bridge.web.metrics import metrics_endpoint
from bridge.web.not_found import not_found
from bridge.web.openapi import openapi_json
from bridge.web.responses import problem
from bridge.web.shop_events import shop_events

log = logging.getLogger("bridge.web")

# How ``bridge web`` and ``bridge serve`` run uvicorn; bench/bare_app.py serves its bare endpoint with the very
# same options, so the intake benchmark's ratio compares request handlers, not server settings.
# proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and hand the bridge a
# forged client address; who is a trusted proxy is BRIDGE_TRUSTED_PROXIES' business (bridge.web.clientip).
UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False, "proxy_headers": False}


_SALE_SIDE = exchange_sale  # imported for its registrations into the exchange's dispatch


def routes() -> list[Route]:
    return [
        Route("/shop/events", shop_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *admin.routes(),
        *onec_pushes.routes(),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *exchange.routes(),  # type=sale's handlers are registered by importing exchange_sale
        *onec_batches.routes(),
        *console.routes(),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = problem(exc.status_code, "http_error", str(exc.detail))
    response.headers.update(exc.headers or {})  # a 405 must say which methods are allowed (Allow, RFC 9110)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, not the client's fault; the answer says so without details that could leak anything.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal", "message": "the bridge failed unexpectedly; see its log"}, 500)


def create_app(settings: Settings, *, redis_url: str | None = None) -> Starlette:
    """Build the app; ``redis_url`` overrides the settings (embedded mode passes its in-memory server)."""
    url = redis_url or (settings.redis_url.get_secret_value() if settings.redis_url else None)
    if url is None:
        raise ValueError("the web server needs BRIDGE_REDIS_URL")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.redis = AsyncRedis.from_url(url)
        sync = Redis.from_url(url)
        app.state.sync_redis = sync  # for RQ and prometheus-client, which are synchronous (run in threads)
        app.state.enqueuer = Enqueuer(sync, job_timeout=settings.job_timeout)
        # built in the serving process, so its sync-log entries carry this process's name
        app.state.event_accounting = EventAccounting(app.state.redis, max_entries=settings.sync_log_max)
        try:
            for name in QUEUES:
                app.state.enqueuer.queue(name)
        except Exception:
            log.warning("Redis is not reachable yet; the bridge will answer 503 until it is")
        try:
            with settled_heap():
                yield
        finally:
            await app.state.event_accounting.aclose()  # the shop-event counts not yet written
            await app.state.redis.aclose()
            sync.close()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={404: not_found, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.settings = settings
    app.state.shop_tokens = [t.get_secret_value() for t in settings.shop_app_tokens]
    app.state.shop_events_missing = settings.missing_for("shop events")  # settings do not change while it runs
    return app
