"""The console's endpoints: each reads its view in a thread and renders one template.

Every GET page is behind ``console_viewer`` (session cookie or admin Bearer); every action is a POST whose
form carries the session's CSRF token, checked by the same guard before the endpoint runs. Actions answer
with a redirect back to a page (POST, redirect, GET), so a reload never repeats them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from bridge.queue import deadletters
from bridge.web.auth import console_viewer, guarded, same_secret
from bridge.web.console import session, views
from bridge.web.console.charts import svg
from bridge.web.console.forms import read_form
from bridge.web.console.render import HEADERS, STATIC, page
from bridge.web.responses import problem

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}


def _redis_down(request: Request) -> Response:
    return page(request, "redis_down.html", 503)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _admin_secret(request: Request) -> str:
    token = request.app.state.settings.admin_token
    return token.get_secret_value() if token is not None else ""


# -- signing in and out ----------------------------------------------------------------------------------------


async def login_form(request: Request, *, error: str = "", status: int = 200) -> Response:
    secret = _admin_secret(request)
    if not secret:
        return page(request, "off.html", 503)
    nonce, cookie = session.new_cookie(secret, "login")
    response = page(request, "login.html", status, login_csrf=session.csrf_token(secret, nonce), error=error)
    response.set_cookie(
        session.LOGIN_COOKIE,
        cookie,
        max_age=session.LOGIN_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def login(request: Request) -> Response:
    secret = _admin_secret(request)
    if not secret:
        return page(request, "off.html", 503)
    form = await read_form(request)
    nonce = session.nonce_of(secret, "login", request.cookies.get(session.LOGIN_COOKIE))
    offered_csrf = form.get("csrf")
    if (
        nonce is None
        or not isinstance(offered_csrf, str)
        or not same_secret((offered_csrf,), (session.csrf_token(secret, nonce),))
    ):
        return problem(
            403, "bad_csrf", "the login form expired or did not come from this console; open /console/login again"
        )
    token = form.get("token")
    if not isinstance(token, str) or not same_secret((token.strip(),), (secret,)):
        return await login_form(request, error="That is not the admin token (BRIDGE_ADMIN_TOKEN).", status=401)
    _, cookie = session.new_cookie(secret, "session")
    response = RedirectResponse("/console", 303)
    response.set_cookie(
        session.SESSION_COOKIE,
        cookie,
        max_age=session.SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(session.LOGIN_COOKIE, path="/console")
    return response


@guarded(console_viewer)
async def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(session.SESSION_COOKIE, path="/console")
    return response


# -- pages -------------------------------------------------------------------------------------------------------


@guarded(console_viewer)
async def overview(request: Request) -> Response:
    try:
        seen = await run_in_threadpool(views.overview, request.app.state.sync_redis)
    except (RedisError, OSError):
        return _redis_down(request)
    return page(
        request,
        "overview.html",
        view=seen,
        s=seen.snapshot,
        throughput=svg(seen.throughput, stacked=True),
        latency=svg(seen.latency, stacked=False),
        refresh=True,
    )


@guarded(console_viewer)
async def order(request: Request) -> Response:
    query = (request.query_params.get("q") or "").strip()
    context: dict[str, Any] = {"q": query, "order_id": None, "story": [], "message": "", "refresh": bool(query)}
    if query and not views.ORDER_QUERY.match(query):
        context["message"] = "Search by the shop's order id (e.g. 300) or its account number (e.g. 300/1)."
        return page(request, "order.html", 400, **context)
    if query:
        redis = request.app.state.sync_redis
        try:
            found = await run_in_threadpool(views.find_order, redis, query)
            if found is not None:
                context["order_id"] = found
                context["story"] = await run_in_threadpool(views.order_story, redis, found)
        except (RedisError, OSError):
            return _redis_down(request)
        if found is None:
            context["message"] = f"The sync log knows no order {query}: not received yet, or older than the log keeps."
    return page(request, "order.html", **context)


@guarded(console_viewer)
async def failed(request: Request) -> Response:
    try:
        letters = await run_in_threadpool(views.dead_letters, request.app.state.sync_redis)
    except (RedisError, OSError):
        return _redis_down(request)
    notice = request.query_params.get("notice", "")[:300]
    return page(request, "failed.html", letters=letters, notice=notice, refresh=True)


@guarded(console_viewer)
async def failed_retry(request: Request) -> Response:
    """Form fields: ``id`` (one job), or ``all`` with ``confirm`` ticked."""
    form = await read_form(request)
    job_id = form.get("id")
    redis = request.app.state.sync_redis
    try:
        if isinstance(job_id, str) and job_id:
            if not JOB_ID.match(job_id):
                return problem(400, "bad_request", "that cannot be a job id (letters, digits, - and _; at most 200)")
            report = await run_in_threadpool(deadletters.retry, redis, [job_id])
        elif form.get("all") == "1":
            if form.get("confirm") != "yes":
                return RedirectResponse("/console/failed?notice=" + quote("Tick the box to confirm retrying all."), 303)
            report = await run_in_threadpool(deadletters.retry_all, redis)
        else:
            return problem(400, "bad_request", "send id=<job id>, or all=1 with confirm=yes")
    except (RedisError, OSError):
        return _redis_down(request)
    words = f"{len(report.requeued)} put back on their queue"
    if report.missing:
        words += f"; {len(report.missing)} no longer failed (already retried?)"
    return RedirectResponse("/console/failed?notice=" + quote(words), 303)


@guarded(console_viewer)
async def failed_discard(request: Request) -> Response:
    """Form fields: ``id`` (one job) and ``reason`` (required: the sync log keeps why it was dropped)."""
    form = await read_form(request)
    job_id, reason = form.get("id"), form.get("reason")
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        return problem(400, "bad_request", "send id=<job id> (letters, digits, - and _; at most 200)")
    if not isinstance(reason, str) or not reason.strip():
        return RedirectResponse(
            "/console/failed?notice=" + quote("Say why it is discarded: the sync log keeps it."), 303
        )
    try:
        report = await run_in_threadpool(deadletters.discard, request.app.state.sync_redis, [job_id], reason)
    except (RedisError, OSError):
        return _redis_down(request)
    words = f"{len(report.discarded)} discarded for good, with the reason in the sync log"
    if report.missing:
        words = "no longer failed (already retried or discarded?)"
    return RedirectResponse("/console/failed?notice=" + quote(words), 303)


@guarded(console_viewer)
async def exchange(request: Request) -> Response:
    try:
        seen = await run_in_threadpool(views.exchanges, request.app.state.sync_redis)
    except (RedisError, OSError):
        return _redis_down(request)
    return page(request, "exchange.html", view=seen, refresh=True)


@guarded(console_viewer)
async def configuration(request: Request) -> Response:
    seen = await run_in_threadpool(views.configuration, request.app.state.settings)
    return page(request, "config.html", **seen)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_FILES:
        return problem(404, "not_found", "no such console file")
    headers = {k: v for k, v in HEADERS.items() if k != "Cache-Control"}
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers=headers)


def routes() -> list[Route]:
    return [
        Route("/console", overview, methods=["GET"]),
        Route("/console/login", login_form, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console/order", order, methods=["GET"]),
        Route("/console/failed", failed, methods=["GET"]),
        Route("/console/failed/retry", failed_retry, methods=["POST"]),
        Route("/console/failed/discard", failed_discard, methods=["POST"]),
        Route("/console/exchange", exchange, methods=["GET"]),
        Route("/console/config", configuration, methods=["GET"]),
        Route("/console/static/{name}", static, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
    ]


async def no_icon(request: Request) -> Response:
    """A browser asks every origin for ``/favicon.ico``, also after showing one of the bridge's JSON answers
    (a refused console form, ``/readyz``): "no content" keeps a 404 out of its console and the bridge's log."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})
