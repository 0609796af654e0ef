"""``GET /metrics`` and the counting of shop events.

The figures come from Redis (see ``bridge.ops.metrics``), so this endpoint shows what every web process,
worker and clock did, whichever web process is scraped. Reading them uses the sync Redis client in a
thread, because prometheus-client's collectors are synchronous.

Shop events are counted by wrapping the handler. An accepted event is counted and filed in the sync log by
the very script call that queues its job (``bridge.ops.telemetry.EventNotes``). Every other answer's count (and,
for an ignored event, its sync-log entry) is added to an in-process tally that one task writes to Redis
(``bridge.web.tally``), so the shop never waits for a metric, and a burst pays one pipeline rather than one
per event (that round trip was a tenth of the intake's CPU; see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge.ops import metrics
from bridge.ops.synclog import Entry
from bridge.web.responses import redis_down
from bridge.web.tally import EventTally

log = logging.getLogger("bridge.web.shop")
Handler = Callable[[Request], Awaitable[Response]]
_EVENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


async def metrics_endpoint(request: Request) -> Response:
    tally = getattr(request.app.state, "event_tally", None)
    if tally is not None:
        await tally.flushed()  # this process's own counts first, so a scrape right after an event shows it
    try:
        body = await run_in_threadpool(metrics.exposition, request.app.state.sync_redis)
    except (RedisError, OSError):
        return redis_down()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _body(response: Response) -> dict[str, Any]:
    known = getattr(response, "content_data", None)  # answers that carry their data (shop_events.AcceptedResponse)
    if isinstance(known, dict):
        return known
    if isinstance(response, JSONResponse):
        try:
            data = json.loads(bytes(response.body))
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def event_labels(response: Response) -> tuple[str, str]:
    """(event, outcome) of an answer of ``/shop/events``, as metric labels.

    The event name is taken only from answers given after the token was checked (200), and only when it
    looks like an event name, so a stranger cannot invent label values.
    """
    status = response.status_code
    data = _body(response)
    if status == 200 and data:
        event = str(data.get("event", ""))
        return (event if _EVENT_NAME.match(event) else "other"), str(data.get("status", "accepted"))
    if status == 401:
        return "unknown", "unauthorized"
    if status == 503:
        return "unknown", "unavailable"
    if status >= 500:
        return "unknown", "error"
    return "unknown", "rejected"


def event_tally(request: Request) -> EventTally:
    """This web process's tally, created on first use inside the running event loop."""
    state = request.app.state
    tally = getattr(state, "event_tally", None)
    if tally is None:
        tally = state.event_tally = EventTally(state.redis, max_entries=state.settings.sync_log_max)
    return tally


def counted_events(handler: Handler) -> Handler:
    """Wrap the ``/shop/events`` handler: every answer is counted by event and outcome, and an accepted or
    ignored event gets its sync-log entry. Refusals are only counted (the handler logs them), so
    unauthenticated noise cannot push history out of the capped sync log.

    An accepted event (``recorded``) was counted and filed by the script that queued its job, which also logs
    one INFO line per write naming every order in it (``bridge.ops.telemetry.EventNotes``); here it only gets a
    DEBUG line. An ignored event is rare and gets its INFO line and its tally entry here.
    """

    async def wrapped(request: Request) -> Response:
        response = await handler(request)
        if getattr(response, "recorded", False):
            if log.isEnabledFor(logging.DEBUG):
                data = _body(response)
                event, order_id = data.get("event"), data.get("order_id")
                fields = {"peer": "shop", "operation": "event", "event": event, "outcome": "accepted"}
                fields |= {"entity": "order", "entity_id": order_id}
                log.debug("shop event %s order %s: accepted", event, order_id, extra={"extra_fields": fields})
            return response
        event, outcome = event_labels(response)
        entry = None
        if outcome == "ignored":
            entry = Entry("shop", "event", outcome, detail=event)
            fields = {"peer": "shop", "operation": "event", "event": event, "outcome": outcome}
            log.info("shop event %s: %s", event, outcome, extra={"extra_fields": fields})
        event_tally(request).add(event, outcome, entry)
        return response

    wrapped.__name__ = getattr(handler, "__name__", "shop_events")
    wrapped.__doc__ = handler.__doc__
    return wrapped
