"""``POST /1c/stock``, ``/1c/prices``, ``/1c/order-status``, ``/1c/products``, …: updates pushed by 1C.

1C calls these from configurator code whose HTTP connection retries nothing and often has no timeout, so
the answer must come at once and mean exactly one thing. The handler only checks and stores: 202 once the
body is in Redis and a flush job is queued, 4xx for a body that changes nothing, 503 when the bridge cannot
take it (not configured, Redis down). An empty list is a valid push (a quiet night in 1C): 202 with
``accepted: 0`` and a batch that stays at zero, and nothing stored for a flush. The check is ``bridge.updates.intake.fast`` for uniform bodies (a 50,000-item
push in a few tens of milliseconds) and the full validation for the rest and for every refusal. The body is
sent to Redis before the check, so that Redis stores it meanwhile, and is only put on the inbox once it
passes (``bridge.updates.intake.staging``); the flush splits it into coalesced updates before it sends them.
The shop is never called inline; the slow, rate-limited work happens in the flush.

Order of checks: configured (503), caller's address (403), token (401) (the guard, ``bridge.web.auth``), then
media type (415), size (413), encoding and JSON Schema (400), then storage.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.ops import telemetry
from bridge.queue.work import flush_work
from bridge.updates import batches
from bridge.updates.intake.fast import items_if_valid
from bridge.updates.intake.staging import StagedBody
from bridge.updates.intake.validation import InvalidPayload, validate
from bridge.updates.kinds import KINDS
from bridge.web.auth import guarded, onec_pusher
from bridge.web.bodies import BodyError, decode_text, media_type, read_body
from bridge.web.responses import problem, redis_down

log = logging.getLogger("bridge.web.onec")

JSON_TYPES = {"application/json", ""}  # 1C's HTTPЗапрос sends no Content-Type unless told to


def endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    """The handler of ``POST /1c/<kind>``."""
    update = KINDS[kind]
    work = flush_work(kind)  # every push of this kind collapses into one pending flush

    async def receive(request: Request) -> Response:
        state = request.app.state

        async def refused(status: int, error: str, message: str, **extra: object) -> Response:
            """Refuse the push, and leave a trace in the sync log and the metrics (never raises)."""
            shown = message if "details" not in extra else f"{message}: {_first_problem(extra['details'])}"
            await telemetry.inbound_refused(
                state.redis,
                kind=kind,
                status=status,
                error=error,
                message=shown,
                max_entries=state.settings.sync_log_max,
            )
            return problem(status, error, message, **extra)

        media, charset = media_type(request)
        if media not in JSON_TYPES:
            return await refused(415, "unsupported_media_type", f"send the body as application/json, not {media}")
        try:
            body = await read_body(request, state.settings.max_body_bytes)
            if _plain_utf8(body, charset):  # stored as it came, and checked without decoding it first
                stored, text = body, None
            else:
                text = decode_text(body, charset)
                stored = text.encode("utf-8")
        except BodyError as exc:
            return await refused(exc.status, exc.error, exc.message)
        try:
            async with StagedBody(state.redis, kind, stored) as staged:  # Redis stores it during the check
                decoded = items_if_valid(update, body if text is None else text)
                if decoded is None:  # not a uniform body, or not a valid one: the full check lists every problem
                    checked = validate(update, decode_text(body, charset) if text is None else text).items
                    accepted = len(checked)
                    decoded = []
                else:
                    checked = decoded
                    accepted = len(decoded)
                if not accepted:  # nothing to send tonight: a batch of zeros, and nothing on the inbox
                    seq = await staged.number_only()
                else:
                    if update.keep_content is not None:
                        await update.keep_content(state.redis, checked)
                    seq = await staged.keep()
            batch = f"{kind}-{seq}"
            # Two independent writes, waited for together. Should the flush not be queued (503), the body is
            # on the inbox all the same and the sweep queues its flush, so recording it as accepted is true.
            await asyncio.gather(
                state.enqueuer.enqueue_once_async(state.redis, work) if accepted else _nothing(),
                telemetry.inbound_push(  # items counter + sync log + the batch's tally, one round trip; never raises
                    state.redis,
                    kind=kind,
                    accepted=accepted,
                    batch=batch,
                    max_entries=state.settings.sync_log_max,
                    also=lambda pipe: batches.note_accepted(pipe, batch, accepted),
                ),
            )
        except BodyError as exc:
            return await refused(exc.status, exc.error, exc.message)
        except InvalidPayload as exc:
            details = [{"path": p.path, "message": p.message} for p in exc.problems]
            message = (
                f"the body does not match the schema of /1c/{kind} ({len(details)} problem(s)); nothing was accepted"
            )
            return await refused(400, "invalid_payload", message, details=details)
        except (RedisError, OSError) as exc:
            log.error("1C %s update not stored: Redis unavailable (%s)", kind, exc)
            return redis_down()
        log.info("1C %s: %d items accepted as batch %s", kind, accepted, batch)
        return JSONResponse(
            {"accepted": accepted, "batch": batch}, status_code=202, background=BackgroundTask(_free, decoded)
        )

    receive.__name__ = f"onec_{kind.replace('-', '_')}"
    return guarded(onec_pusher)(receive)


async def _nothing() -> None:
    """No flush to queue (a push with no items)."""


def _first_problem(details: object) -> str:
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return f"{details[0].get('path')}: {details[0].get('message')}"
    return ""


async def _free(items: list[object]) -> None:
    """Free the decoded items after the answer, a slice at a time.

    Freeing 50,000 items takes a few milliseconds, which 1C need not wait for. Done in one go (``clear``)
    it would also hold up the next request that long, since no other code runs meanwhile; in slices, that
    request is read in between.
    """
    while items:
        del items[-_FREE_SLICE:]
        await asyncio.sleep(0)


_FREE_SLICE = 5000


def _plain_utf8(body: bytes, charset: str | None) -> bool:
    """The body can be stored as it came: UTF-8 without a BOM (what the flush reads)."""
    return charset in (None, "utf-8", "utf8") and not body.startswith(codecs.BOM_UTF8)


def routes() -> list[Route]:
    return [Route(f"/1c/{kind}", endpoint(kind), methods=["POST"]) for kind in KINDS]
