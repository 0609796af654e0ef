"""The order side of ``/1c/exchange`` (``type=sale``): ``query``, ``success``, ``info``, and 1C's documents
back through ``file`` + ``import``. Registered into the exchange's dispatch (``bridge.web.exchange``), which
has already checked the address, the session's cookie and ``sessid`` when a handler runs.

- ``query`` streams the waiting orders (``bridge.exchange.sale.query``): the first 50 are fetched before the
  reply starts, so a shop that cannot be reached is a ``failure`` 1C can show, not a broken document.
- ``success`` confirms what this session's last ``query`` offered (``bridge.exchange.sale.offers``).
- ``import`` answers from the import's state, like the catalogue's, and queues one job per file
  (``bridge.exchange.sale.importing``). 1C's old protocol (no ``version`` at ``init``) never calls ``import``:
  1C-Bitrix reads the documents during ``file``, so here a ``file`` of such a session starts the import at once.
- ``info`` lists the shop's statuses, payment systems and delivery services (``bridge.exchange.sale.info``).

The shop is reached through a runtime on the web's synchronous Redis client, in a worker thread: the
exchange's protocol gives 1C no way to come back later for these replies.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.responses import Response, StreamingResponse

from bridge import keys
from bridge.errors import BridgeError
from bridge.exchange import importing, sessions, uploads
from bridge.exchange.protocol import failure, progress, success
from bridge.exchange.sale import info, offers, query
from bridge.queue.work import sale_import_work
from bridge.runtime import Runtime
from bridge.texts import as_text
from bridge.web.exchange import Call, register, upload

log = logging.getLogger("bridge.web.exchange_sale")


def _runtime(call: Call) -> Runtime:
    """One runtime per app (its shop client and telemetry are built once), on the web's sync Redis."""
    state = call.request.app.state
    current: Runtime | None = getattr(state, "sale_runtime", None)
    if current is None:
        current = Runtime(settings=call.settings, redis=state.sync_redis)
        state.sale_runtime = current
    return current


async def sale_query(call: Call) -> Response:
    session = call.needs_session()
    rt = _runtime(call)
    version = session.version or call.param("version") or None
    try:
        answer = await asyncio.to_thread(query.reply, rt, session.sid, version)
    except BridgeError as exc:
        log.warning("exchange %s: query not answered: %s", session.sid, exc)
        return failure(f"Заказы не выгружены: магазин не ответил мосту ({exc}). Повторите обмен позже")
    return StreamingResponse(answer.chunks, media_type=answer.content_type)


async def sale_success(call: Call) -> Response:
    session = call.needs_session()
    rt = _runtime(call)
    confirmation = await asyncio.to_thread(offers.confirm, rt.redis, session.sid)
    await asyncio.to_thread(query.note_success, rt, session.sid, confirmation)
    if confirmation.offered is None:
        if confirmation.repeated:
            return success("Заказы этой выгрузки уже подтверждены")
        return failure("В этом сеансе обмена не было выгрузки заказов (mode=query): подтверждать нечего")
    return success(
        f"Подтверждено заказов: {len(confirmation.confirmed)}; изменились после выгрузки и будут выгружены "
        f"снова: {confirmation.changed}"
    )


async def sale_info(call: Call) -> Response:
    rt = _runtime(call)
    try:
        body = await asyncio.to_thread(info.info_xml, rt)
    except BridgeError as exc:
        return failure(f"Справочники не выгружены: магазин не ответил мосту ({exc}). Повторите обмен позже")
    return Response(body, media_type=query.content_type(rt.settings.exchange_sale_encoding))


async def sale_file(call: Call) -> Response:
    """Store the upload as for any type; in a session of 1C's old protocol, import it right away."""
    answer = await upload(call)
    session = call.needs_session()
    if session.version or not bytes(answer.body).startswith(b"success"):
        return answer
    name = uploads.safe_name(call.request.query_params.get("filename"))
    await _start(call, name)
    return answer


async def sale_import(call: Call) -> Response:
    session = call.needs_session()
    try:
        name = uploads.safe_name(call.request.query_params.get("filename"))
    except uploads.UnsafeName as exc:
        return failure(f"Загрузка не начата: {exc}")
    entity = importing.entity_of(session.sid, name)
    state = {as_text(k): as_text(v) for k, v in (await call.redis.hgetall(importing.import_key(entity))).items()}
    if not state:
        stored = {as_text(k) for k in await call.redis.hgetall(uploads.files_key(session.sid))}
        if name not in stored and not any(n.lower().endswith(".zip") for n in stored):
            return failure(
                f"Файл {name} не был загружен в этом сеансе обмена: 1С должна отправить его (mode=file) "
                "перед загрузкой (mode=import)"
            )
        state = await _start(call, name)
    message = state.get("message") or f"Файл {name} в очереди на загрузку"
    if state.get("state") == importing.DONE:
        return success(message)
    if state.get("state") == importing.FAILED:
        return failure(message)
    return progress(message)


async def _start(call: Call, name: str) -> dict[str, str]:
    """The import's state and its job, once however many calls of 1C race for it."""
    session = call.needs_session()
    redis = call.redis
    entity = importing.entity_of(session.sid, name)
    key = importing.import_key(entity)
    ttl = call.settings.exchange_session_ttl
    if await redis.hsetnx(key, "state", importing.QUEUED):
        seq = int(await redis.incr(keys.SEQUENCE))
        batch = f"exchange-{seq}"
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "sid": session.sid,
                    "name": name,
                    "batch": batch,
                    "message": f"Файл {name} в очереди на загрузку",
                    "session_key": sessions.session_key(call.cookie),
                },
            )
            pipe.expire(key, ttl)
            pipe.sadd(keys.EXCHANGE_IMPORTS.format(sid=session.sid), entity)
            pipe.expire(keys.EXCHANGE_IMPORTS.format(sid=session.sid), ttl)
            pipe.set(keys.SALE_IMPORT_PENDING.format(entity=entity), f"import:{seq}")
            await pipe.execute()
        work = sale_import_work(entity)
        enqueuer = call.request.app.state.enqueuer
        await asyncio.to_thread(work.put, enqueuer.queue(work.queue), timeout=call.settings.exchange_import_timeout)
        log.info("exchange %s: import of documents %s queued as batch %s", session.sid, name, batch)
    return {as_text(k): as_text(v) for k, v in (await redis.hgetall(key)).items()}


register("sale", "query")(sale_query)
register("sale", "success")(sale_success)
register("sale", "info")(sale_info)
register("sale", "file")(sale_file)
register("sale", "import")(sale_import)
