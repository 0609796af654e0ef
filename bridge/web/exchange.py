"""``/1c/exchange`` (and ``/bitrix/admin/1c_exchange.php``): 1C's standard CommerceML "exchange with website".

1C's exchange node calls one URL with ``type`` and ``mode`` in the query string; each (type, mode) has its
handler in ``HANDLERS``, which other parts of the bridge extend with ``register`` (the order side adds
``type=sale``'s ``query``, ``success``, ``import``, …) without touching the dispatch. Sessions, uploads and the
import's state live in Redis (``bridge.exchange``); the import itself runs in a job, so every call is answered
within moments, whatever the size of the file.

What 1C sees is always HTTP 200 and a body whose first line is ``success``, ``progress`` or ``failure``
(``bridge.exchange.protocol``): a refusal, Redis being down and a bug in the bridge alike answer ``failure``
with a sentence for 1C's operator, never a 5xx, an empty body or an HTML page, which 1C cannot read.

Order of checks: the exchange is configured, the caller's address (``BRIDGE_INBOUND_ALLOWED_IPS``), the
command is known, then the credentials (HTTP Basic on ``checkauth``) or the session's cookie on every other
call, and a ``sessid`` if 1C sends one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge import keys
from bridge.exchange import importing, sessions, unzip, uploads
from bridge.exchange.protocol import failure, lines, progress, success
from bridge.exchange.sessions import COOKIE_NAME, Session
from bridge.ops import metrics, synclog
from bridge.ops.synclog import Entry
from bridge.queue.work import exchange_import_work
from bridge.settings import Settings
from bridge.texts import as_text
from bridge.web.auth import exchange_login
from bridge.web.clientip import allowed, client_ip

log = logging.getLogger("bridge.web.exchange")

PATHS = ("/1c/exchange", "/bitrix/admin/1c_exchange.php")
TYPES = ("catalog", "sale")


@dataclass
class Call:
    """One call of 1C: its request, parameters, and (after ``checkauth``) its session and cookie."""

    request: Request
    exchange_type: str
    mode: str
    session: Session | None
    cookie: str

    @property
    def settings(self) -> Settings:
        settings: Settings = self.request.app.state.settings
        return settings

    @property
    def redis(self) -> Any:
        return self.request.app.state.redis

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value.strip() if value is not None else None

    def needs_session(self) -> Session:
        assert self.session is not None  # the dispatch looked it up for every mode but checkauth
        return self.session


Handler = Callable[[Call], Awaitable[Response]]
HANDLERS: dict[tuple[str, str], Handler] = {}
OPEN_MODES = {"checkauth"}  # the modes that run without a session


def register(exchange_type: str, mode: str, *, open_mode: bool = False) -> Callable[[Handler], Handler]:
    """Make ``handler`` answer ``type=exchange_type&mode=mode`` (a later registration replaces an earlier one)."""

    def add(handler: Handler) -> Handler:
        HANDLERS[(exchange_type, mode)] = handler
        if open_mode:
            OPEN_MODES.add(mode)
        return handler

    return add


async def exchange(request: Request) -> Response:
    """Every call of 1C's exchange; whatever happens, a reply 1C can read."""
    try:
        try:
            return await _dispatch(request)
        except RedisConnectionError:
            # A pooled connection Redis closed (it restarted): every mode but an append is safe to run again
            # on a fresh one; a chunk that may have been written is not sent twice, 1C gets the failure.
            if (request.query_params.get("mode") or "").strip().lower() == "file":
                raise
            return await _dispatch(request)
    except (RedisError, OSError) as exc:
        log.error("exchange call not served: Redis unavailable (%s)", type(exc).__name__)
        return failure("Хранилище моста (Redis) недоступно; повторите обмен позже. Сообщите администратору моста")
    except Exception:
        log.exception("exchange call failed unexpectedly")
        return failure("Внутренняя ошибка моста; подробности в журнале моста. Повторите обмен позже")


async def _dispatch(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    missing = settings.missing_for("1C exchange")
    if missing:
        return failure(f"Обмен с сайтом выключен на стороне моста: задайте {' и '.join(missing)} в его настройках")
    address = client_ip(request, settings.trusted_proxy_networks)
    if not allowed(address, settings.allowed_networks):
        log.warning("exchange call from %s refused: not in BRIDGE_INBOUND_ALLOWED_IPS", address or "an unknown address")
        return failure(f"Адрес {address or 'клиента'} не входит в BRIDGE_INBOUND_ALLOWED_IPS моста")
    exchange_type = (request.query_params.get("type") or "").strip().lower()
    mode = (request.query_params.get("mode") or "").strip().lower()
    handler = HANDLERS.get((exchange_type, mode))
    if handler is None:
        shown_type, shown_mode = exchange_type[:20] or "(не указан)", mode[:20] or "(не указан)"
        return failure(f"Неизвестная команда обмена: type={shown_type}, mode={shown_mode}")
    cookie = request.cookies.get(COOKIE_NAME, "")
    session = None
    if mode not in OPEN_MODES:
        session = await sessions.find_session(request.app.state.redis, cookie, settings.exchange_session_ttl)
        if session is None:
            log.warning(
                "exchange %s&%s from %s refused: %s session cookie",
                exchange_type,
                mode,
                address,
                "unknown" if cookie else "no",
            )
            return failure("Сеанс обмена не найден или истёк: начните обмен заново (mode=checkauth)")
        offered = request.query_params.get("sessid") or request.headers.get("x-bitrix-csrf-token")
        if not sessions.same_sessid(offered, session):
            return failure("Неверный sessid: начните обмен заново (mode=checkauth)")
    return await handler(Call(request, exchange_type, mode, session, cookie))


# -- checkauth, init, file: the same for both types ---------------------------------------------------------


async def checkauth(call: Call) -> Response:
    settings = call.settings
    refused = exchange_login(call.request)
    if refused is not None:
        log.warning("exchange checkauth refused: %s", refused)
        return failure(
            "1С не передала имя пользователя и пароль (HTTP Basic): укажите их в настройках узла обмена"
            if refused.startswith("no ")
            else "Неверное имя пользователя или пароль обмена (BRIDGE_EXCHANGE_USER / BRIDGE_EXCHANGE_PASSWORD моста)"
        )
    redis = call.redis
    cookie, session = await sessions.open_session(redis, call.exchange_type, settings.exchange_session_ttl)
    await _record(
        call,
        Entry(peer="1c", operation="exchange session", outcome="ok", entity="exchange", entity_id=session.sid,
              detail=f"type={call.exchange_type}: session opened"),
        ("bridge_exchange_sessions", (call.exchange_type,), 1),
    )  # fmt: skip
    log.info("exchange session %s opened (type=%s)", session.sid, call.exchange_type)
    return success(COOKIE_NAME, cookie, f"sessid={session.sessid}", f"timestamp={session.timestamp}")


async def init(call: Call) -> Response:
    session = call.needs_session()
    redis = call.redis
    settings = call.settings
    await _clear_uploads(redis, session, sessions.session_key(call.cookie))
    version = call.param("version")
    answer = [("zip", "yes" if settings.exchange_zip else "no"), ("file_limit", str(settings.exchange_file_limit))]
    if version:
        version = version[:16]
        await sessions.remember_version(redis, call.cookie, version)
        answer += [("sessid", session.sessid), ("version", version)]
    return lines(*answer)


async def _clear_uploads(redis: Any, session: Session, session_key: str) -> None:
    """``init`` starts the session's uploads afresh: its files, unpacked zips and imports go."""
    raw = await redis.hgetall(uploads.files_key(session.sid))
    stored = {as_text(k): int(v) for k, v in raw.items()}
    imports_key = keys.EXCHANGE_IMPORTS.format(sid=session.sid)
    entities = [as_text(e) for e in await redis.smembers(imports_key)]
    doomed = uploads.clear_keys(session.sid, stored) + [importing.import_key(e) for e in entities] + [imports_key]
    async with redis.pipeline(transaction=True) as pipe:
        for start in range(0, len(doomed), 1000):
            pipe.delete(*doomed[start : start + 1000])
        pipe.hset(session_key, "bytes", 0)
        await pipe.execute()


async def upload(call: Call) -> Response:
    session = call.needs_session()
    settings = call.settings
    try:
        name = uploads.safe_name(call.request.query_params.get("filename"))
    except uploads.UnsafeName as exc:
        return failure(f"Файл не принят: {exc}")
    limit = settings.exchange_file_limit
    declared = call.request.headers.get("content-length", "")
    if declared.strip().isdecimal() and int(declared) > limit:
        return failure(_too_big(name, int(declared), limit))
    body = bytearray()
    async for chunk in call.request.stream():
        body += chunk
        if len(body) > limit:
            return failure(_too_big(name, len(body), limit))
    data = bytes(body)
    del body
    args = uploads.append_args(
        session.sid, sessions.session_key(call.cookie), name, data, settings.exchange_session_bytes,
        settings.exchange_session_ttl,
    )  # fmt: skip
    size = int(await call.redis.eval(uploads.APPEND, *args))
    if size < 0:
        return failure(
            f"Файл {name} не принят: загрузки сеанса превысили бы BRIDGE_EXCHANGE_SESSION_BYTES = "
            f"{settings.exchange_session_bytes} байт"
        )
    counters: list[tuple[str, tuple[str, ...], float]] = [("bridge_exchange_bytes", (call.exchange_type,), len(data))]
    if size == len(data):
        counters.append(("bridge_exchange_files", (call.exchange_type,), 1))
    await _count(call, counters)
    return success(f"Файл {name} принят ({size} байт)")


def _too_big(name: str, size: int, limit: int) -> str:
    return (
        f"Часть файла {name} ({size} байт) больше file_limit = {limit} байт, объявленного в mode=init "
        "(BRIDGE_EXCHANGE_FILE_LIMIT): 1С должна делить файл на части не больше этого размера"
    )


# -- the catalogue ---------------------------------------------------------------------------------------------


async def catalog_import(call: Call) -> Response:
    session = call.needs_session()
    try:
        name = uploads.safe_name(call.request.query_params.get("filename"))
    except uploads.UnsafeName as exc:
        return failure(f"Загрузка не начата: {exc}")
    redis = call.redis
    entity = importing.entity_of(session.sid, name)
    key = importing.import_key(entity)
    state = {as_text(k): as_text(v) for k, v in (await redis.hgetall(key)).items()}
    if not state:
        raw = await redis.hgetall(uploads.files_key(session.sid))
        stored = {as_text(k) for k in raw}
        unpacked = {as_text(z) for z in await redis.smembers(keys.EXCHANGE_UNZIPPED.format(sid=session.sid))}
        zips_waiting = any(unzip.is_zip(n) and n not in unpacked for n in stored)
        if name not in stored and not zips_waiting:
            return failure(
                f"Файл {name} не был загружен в этом сеансе обмена: 1С должна отправить его (mode=file) "
                "перед загрузкой (mode=import)"
            )
        if unzip.is_zip(name):
            return success(f"Архив {name} распаковывается при загрузке входящих в него файлов")
        state = await _start(call, session, name, entity, zips_waiting)
    if state.get("state") in (importing.QUEUED, importing.RUNNING) and call.settings.exchange_import_wait > 0:
        state = await _wait(redis, key, state, call.settings.exchange_import_wait)
    status = state.get("state")
    message = state.get("message") or f"Файл {name} в очереди на загрузку"
    if status == importing.DONE:
        return success(message)
    if status == importing.FAILED:
        return failure(message)
    return progress(message)


IMPORT_POLL = 0.02  # seconds between two looks at a running import's state while a call waits for it


async def _wait(redis: Any, key: str, state: dict[str, str], seconds: float) -> dict[str, str]:
    """The import's state once its job ended, or as it is after ``seconds``.

    1C repeats ``mode=import`` as soon as it reads ``progress``: answered at once, it would ask many times a
    second for as long as the job runs; answered after the wait, it asks every ``seconds``, and its
    ``success`` comes within ``IMPORT_POLL`` of the job's end. Each reply still comes within a few seconds, as
    1C's exchange expects of every call.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(IMPORT_POLL)
        now = {as_text(k): as_text(v) for k, v in (await redis.hgetall(key)).items()}
        if not now:  # init started the session afresh meanwhile: answer with what was read
            return state
        state = now
        if state.get("state") not in (importing.QUEUED, importing.RUNNING):
            break
    return state


async def _start(call: Call, session: Session, name: str, entity: str, zips_waiting: bool) -> dict[str, str]:
    """Create the import's state and queue its job, once however many calls of 1C race for it."""
    redis = call.redis
    key = importing.import_key(entity)
    ttl = call.settings.exchange_session_ttl
    seq = int(await redis.incr(keys.SEQUENCE))
    batch = f"exchange-{seq}"
    message = "Идет распаковка архива." if zips_waiting else f"Файл {name} в очереди на загрузку"
    created = bool(await redis.hsetnx(key, "state", importing.QUEUED))
    if created:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "sid": session.sid,
                    "name": name,
                    "batch": batch,
                    "message": message,
                    "session_key": sessions.session_key(call.cookie),
                },
            )
            pipe.expire(key, ttl)
            pipe.sadd(keys.EXCHANGE_IMPORTS.format(sid=session.sid), entity)
            pipe.expire(keys.EXCHANGE_IMPORTS.format(sid=session.sid), ttl)
            pipe.set(importing.marker_key(entity), f"import:{seq}")  # the orphan sweep queues it again if lost
            await pipe.execute()
        work = exchange_import_work(entity)
        enqueuer = call.request.app.state.enqueuer
        timeout = call.settings.exchange_import_timeout
        await asyncio.to_thread(work.put, enqueuer.queue(work.queue), timeout=timeout)
        log.info("exchange %s: import of %s queued as batch %s", session.sid, name, batch)
    return {as_text(k): as_text(v) for k, v in (await redis.hgetall(key)).items()}


async def deactivate(call: Call) -> Response:
    return success(
        "Деактивация по времени обмена не выполняется: мост отключает только товары, помеченные в 1С на удаление"
    )


async def complete(call: Call) -> Response:
    return success("Завершение процедуры импорта")


# -- the record of what happened ---------------------------------------------------------------------------------


async def _record(call: Call, entry: Entry, counter: tuple[str, tuple[str, ...], float]) -> None:
    settings = call.settings
    try:
        async with call.redis.pipeline(transaction=False) as pipe:
            synclog.append(pipe, entry, max_entries=settings.sync_log_max)
            metrics.inc(pipe, counter[0], counter[1], counter[2])
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("exchange %s not recorded: %s", entry.operation, type(exc).__name__)


async def _count(call: Call, counters: list[tuple[str, tuple[str, ...], float]]) -> None:
    try:
        async with call.redis.pipeline(transaction=False) as pipe:
            for name, labels, amount in counters:
                metrics.inc(pipe, name, labels, amount)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("exchange metrics not recorded: %s", type(exc).__name__)


for _type in TYPES:
    register(_type, "checkauth", open_mode=True)(checkauth)
    register(_type, "init")(init)
    register(_type, "file")(upload)
register("catalog", "import")(catalog_import)
register("catalog", "deactivate")(deactivate)
register("catalog", "complete")(complete)


def routes() -> list[Route]:
    return [Route(path, exchange, methods=["GET", "POST"]) for path in PATHS]
