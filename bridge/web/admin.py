"""``/admin/*``: the sync log and the dead letters for people and their tools, behind a Bearer token.

The same functions as ``bridge log`` and ``bridge failed …`` (``bridge.ops.synclog``, ``bridge.queue.deadletters``),
so the answers match what the command line shows. Without ``BRIDGE_ADMIN_TOKEN`` the admin API is off and
says so (503), rather than being open.
"""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.ops import synclog
from bridge.queue import deadletters
from bridge.web.auth import admin_bearer, guarded
from bridge.web.bodies import BodyError, load_json, read_body
from bridge.web.responses import problem, redis_down

MAX_RETRY_BODY = 1024 * 1024
ENTITY = r"^[a-z][a-z0-9_-]{0,31}$"
JOB_ID = r"^[A-Za-z0-9_-]{1,200}$"  # what RQ allows in a job id; anything else cannot be one


def _limit(request: Request, default: int = 100, most: int = 1000) -> int | Response:
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        return problem(400, "bad_limit", f"limit must be a whole number from 1 to {most}")
    return int(raw)


@guarded(admin_bearer)
async def failed_list(request: Request) -> Response:
    limit = _limit(request, 1000, 10_000)
    if isinstance(limit, Response):
        return limit
    try:
        letters = await run_in_threadpool(deadletters.list_failed, request.app.state.sync_redis, limit=limit)
    except (RedisError, OSError):
        return redis_down()
    return JSONResponse({"count": len(letters), "failed": [d.as_dict() for d in letters]})


async def _retried(request: Request, ids: list[str] | None) -> deadletters.RetryReport | None:
    """Requeue ``ids`` (all when None): what was requeued and what was missing; None when Redis is away."""
    redis = request.app.state.sync_redis
    try:
        if ids is None:
            return await run_in_threadpool(deadletters.retry_all, redis)
        return await run_in_threadpool(deadletters.retry, redis, ids)
    except (RedisError, OSError):
        return None


async def _retry(request: Request, ids: list[str] | None) -> Response:
    report = await _retried(request, ids)
    return redis_down() if report is None else JSONResponse(report.as_dict())


@guarded(admin_bearer)
async def failed_retry(request: Request) -> Response:
    """Body ``{"ids": ["order-300-…", …]}`` or ``{"all": true}``."""
    try:
        body = await read_body(request, MAX_RETRY_BODY)
    except BodyError as exc:
        return problem(exc.status, exc.error, exc.message)
    try:
        data: Any = load_json(body or b"{}")
    except BodyError as exc:
        return problem(400, exc.error, f'{exc.message}: send {{"ids": ["<job id>", ...]}} or {{"all": true}}')
    if isinstance(data, dict) and data.get("all") is True and "ids" not in data:
        return await _retry(request, None)
    ids = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return problem(400, "bad_request", 'send {"ids": ["<job id>", ...]} (non-empty) or {"all": true}')
    bad = [i for i in ids if not re.match(JOB_ID, i)]
    if bad:  # refused in words, not echoed back as "missing" at whatever length they came
        return problem(
            400, "bad_request", f"{len(bad)} of the ids cannot be job ids (letters, digits, - and _; at most 200)"
        )
    return await _retry(request, ids)


@guarded(admin_bearer)
async def failed_retry_one(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    report = await _retried(request, [job_id])
    if report is None:
        return redis_down()
    if report.missing:
        return problem(404, "not_found", f"no failed job {job_id!r} (already retried, or never failed)")
    return JSONResponse(report.as_dict())


@guarded(admin_bearer)
async def failed_discard(request: Request) -> Response:
    """Body ``{"ids": [...], "reason": "..."}`` or ``{"all": true, "reason": "..."}``; the reason is required."""
    hint = 'send {"ids": ["<job id>", ...], "reason": "<why>"} or {"all": true, "reason": "<why>"}'
    data = await _json_body(request, hint)
    return data if isinstance(data, Response) else await _discard(request, data, hint, None)


@guarded(admin_bearer)
async def failed_discard_one(request: Request) -> Response:
    hint = 'send {"reason": "<why>"}'
    data = await _json_body(request, hint)
    return data if isinstance(data, Response) else await _discard(request, data, hint, request.path_params["job_id"])


async def _json_body(request: Request, hint: str) -> Any:
    """The JSON body, or the refusal to answer with."""
    try:
        body = await read_body(request, MAX_RETRY_BODY)
    except BodyError as exc:
        return problem(exc.status, exc.error, exc.message)
    try:
        return load_json(body or b"{}")
    except BodyError as exc:
        return problem(400, exc.error, f"{exc.message}: {hint}")


async def _discard(request: Request, data: Any, hint: str, one: str | None) -> Response:
    reason = data.get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return problem(400, "bad_request", f"say why in reason (it is kept in the sync log): {hint}")
    if one is not None:
        ids: list[str] | None = [one]
    elif isinstance(data, dict) and data.get("all") is True and "ids" not in data:
        ids = None
    else:
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and re.match(JOB_ID, i) for i in ids):
            return problem(400, "bad_request", f"ids must be a non-empty list of job ids: {hint}")
    redis = request.app.state.sync_redis
    try:
        if ids is None:
            report = await run_in_threadpool(deadletters.discard_all, redis, reason)
        else:
            report = await run_in_threadpool(deadletters.discard, redis, ids, reason)
    except (RedisError, OSError):
        return redis_down()
    if one is not None and report.missing:
        return problem(404, "not_found", f"no failed job {one!r} (already retried or discarded, or never failed)")
    return JSONResponse(report.as_dict())


@guarded(admin_bearer)
async def sync_log(request: Request) -> Response:
    """``?entity=order&id=300&limit=100``: newest first; ``entity`` alone filters the recent global log."""
    entity = request.query_params.get("entity") or None
    entity_id = request.query_params.get("id") or None
    if entity is not None and not re.match(ENTITY, entity):
        return problem(400, "bad_entity", "entity is a short lower-case word such as 'order'")
    if entity_id is not None and (entity is None or len(entity_id) > 128):
        return problem(400, "bad_id", "id needs an entity (e.g. ?entity=order&id=300) and at most 128 characters")
    limit = _limit(request)
    if isinstance(limit, Response):
        return limit
    try:
        entries = await run_in_threadpool(
            synclog.read, request.app.state.sync_redis, entity=entity, entity_id=entity_id, limit=limit
        )
    except (RedisError, OSError):
        return redis_down()
    return JSONResponse({"count": len(entries), "entries": [e.as_dict() for e in entries]})


def routes() -> list[Route]:
    return [
        Route("/admin/failed", failed_list, methods=["GET"]),
        Route("/admin/failed/retry", failed_retry, methods=["POST"]),
        Route("/admin/failed/{job_id}/retry", failed_retry_one, methods=["POST"]),
        Route("/admin/log", sync_log, methods=["GET"]),
        Route("/admin/failed/discard", failed_discard, methods=["POST"]),
        Route("/admin/failed/{job_id}/discard", failed_discard_one, methods=["POST"]),
    ]
