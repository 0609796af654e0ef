"""The import of one uploaded exchange file: the RQ job 1C's repeated ``mode=import`` calls wait for.

The web answers ``import`` at once, from the import's state in Redis (``keys.EXCHANGE_IMPORT``); the first
call creates that state and queues this job, later calls read it: ``progress`` with the job's last words
(«Обработано записей: 12000»), then ``success`` with the counts and the batch, or ``failure`` with the reason.
So however often 1C asks, one file of one session starts one job.

The job unpacks the session's zips first (``bridge.exchange.unzip``), then streams the stored file
(``bridge.exchange.uploads.open_file``) through the reader into ``apply_file``, which stages only what
changed. RQ runs a job again when its worker died: a finished import is not run again, and an unfinished one
runs from the start, which stages nothing twice (``apply_file`` skips what it already staged).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from redis import Redis

from bridge import keys, runtime
from bridge.exchange import unzip, uploads
from bridge.exchange.catalog_import import ImportCounts, apply_file
from bridge.exchange.model import FileKind, Header, Record
from bridge.exchange.parse import ExchangeFileError, read_records
from bridge.ops import metrics
from bridge.ops.synclog import Entry
from bridge.runtime import Runtime
from bridge.texts import as_text

log = logging.getLogger("bridge.exchange.importing")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def entity_of(sid: str, name: str) -> str:
    return f"{sid}_{uploads.file_id(name)}"


def import_key(entity: str) -> str:
    return keys.EXCHANGE_IMPORT.format(entity=entity)


def marker_key(entity: str) -> str:
    return keys.EXCHANGE_IMPORT_PENDING.format(entity=entity)


def read_state(redis: Redis, entity: str) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in redis.hgetall(import_key(entity)).items()}


def import_file(entity: str) -> str:
    """Import one uploaded file of an exchange session (the state names the session and the file)."""
    rt = runtime.current()
    redis = rt.redis
    state = read_state(redis, entity)
    try:
        if not state:
            return "skipped: the exchange session is gone (expired, or 1C started it again)"
        if state.get("state") in (DONE, FAILED):
            return f"skipped: already {state['state']}"
        return _run(rt, entity, state)
    finally:
        redis.delete(marker_key(entity))


def _run(rt: Runtime, entity: str, state: dict[str, str]) -> str:
    redis = rt.redis
    key = import_key(entity)
    sid, name, batch = state["sid"], state["name"], state["batch"]
    session_key = state.get("session_key", "")
    settings = rt.settings
    started = time.monotonic()
    with redis.pipeline(transaction=True) as pipe:  # init may have cleared it meanwhile: it expires all the same
        pipe.hset(key, mapping={"state": RUNNING, "message": f"Идет загрузка файла {name}"})
        pipe.expire(key, settings.exchange_session_ttl)
        pipe.execute()
    counts: ImportCounts | None = None
    size = 0
    try:
        if any(unzip.is_zip(n) for n in uploads.sizes(redis, sid)):
            redis.hset(key, "message", "Идет распаковка архива.")
            limits = unzip.Limits(
                settings.exchange_session_bytes,
                settings.exchange_zip_ratio,
                settings.exchange_zip_entries,
                settings.exchange_session_ttl,
            )
            unzip.unpack_all(redis, sid, session_key, limits)
        stream = uploads.open_file(redis, sid, name)
        if stream is None:
            raise ExchangeFileError(
                f"Файл {name} не был загружен в этом сеансе обмена (ни отдельно, ни в архиве): "
                "1С должна отправить его (mode=file) перед загрузкой (mode=import)"
            )
        size = uploads.size_of(redis, sid, name) or 0
        with stream:

            def progress(text: str) -> None:
                redis.hset(key, "message", text)

            counts = apply_file(
                rt,
                _catalog_only(read_records(stream, name=name), name),
                batch=batch,
                images=uploads.SessionImages(redis, sid),
                progress=progress,
            )
    except (ExchangeFileError, unzip.ZipRefused) as exc:
        return _finish(rt, entity, state, FAILED, str(exc), None, size, started)
    except OSError as exc:
        message = f"Файл {name} не удалось прочитать из хранилища моста ({exc}); повторите обмен"
        return _finish(rt, entity, state, FAILED, message, None, size, started)
    message = f"{counts.summary()}. Пакет {batch}"
    return _finish(rt, entity, state, DONE, message, counts, size, started)


def _catalog_only(records: Iterable[Record], name: str) -> Iterator[Record]:
    """The records of a catalogue or offers file; a file of order documents is refused (it is the sale side's)."""
    for record in records:
        if isinstance(record, Header) and record.kind == FileKind.ORDERS:
            raise ExchangeFileError(
                f"Файл {name} содержит документы заказов, а не каталог: 1С загружает такие файлы с type=sale"
            )
        yield record


def _finish(
    rt: Runtime,
    entity: str,
    state: dict[str, str],
    outcome: str,
    message: str,
    counts: ImportCounts | None,
    size: int,
    started: float,
) -> str:
    fields: dict[str, str | int] = {"state": outcome, "message": message, "finished": f"{time.time():.3f}"}
    if counts is not None:
        fields["counts"] = json.dumps(counts.as_dict(), ensure_ascii=False)
        fields["records"] = counts.records
    with rt.redis.pipeline(transaction=True) as pipe:
        pipe.hset(import_key(entity), mapping={k: v for k, v in fields.items()})
        pipe.expire(import_key(entity), rt.settings.exchange_session_ttl)
        pipe.execute()
    word = "ok" if outcome == DONE else "failed"
    name = state["name"]
    entry = Entry(
        peer="1c",
        operation="exchange import",
        outcome=word,
        entity="exchange",
        entity_id=state["sid"],
        duration=time.monotonic() - started,
        detail=f"{name} ({size} bytes), batch {state['batch']}: {message}"
        if outcome == DONE
        else f"{name} ({size} bytes)",
        error=None if outcome == DONE else message,
    )

    def counters(pipe: Any) -> None:
        metrics.inc(pipe, "bridge_exchange_imports", (word,))

    rt.telemetry.record(entry, counters=counters)
    return f"{word}: {name}"


def describe(state: dict[str, str]) -> dict[str, Any]:
    """An import's state as the admin API shows it."""
    shown: dict[str, Any] = {k: state[k] for k in ("name", "state", "batch", "message") if k in state}
    if "counts" in state:
        shown["counts"] = json.loads(state["counts"])
    return shown
