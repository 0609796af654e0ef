"""The import of one uploaded file of 1C's order documents: the RQ job 1C's repeated ``type=sale&mode=import``
calls wait for.

It keeps the catalogue import's states (``bridge.exchange.importing``: queued, running, done, failed, in
``keys.EXCHANGE_IMPORT``), so the web answers ``progress`` / ``success`` / ``failure`` from Redis the same way;
only the work differs: the stored file is streamed through ``incoming.read_documents`` into
``changes.apply_documents``. Run again after a crash, it stages the same updates again, which the coalescing
makes harmless (a value equal to the one applied is not written twice).
"""

from __future__ import annotations

import time

from bridge import keys, runtime
from bridge.exchange import importing, unzip, uploads
from bridge.exchange.parse import ExchangeFileError
from bridge.exchange.sale.changes import apply_documents
from bridge.exchange.sale.incoming import DocumentsFileError, read_documents


def import_documents(entity: str) -> str:
    """Import one uploaded documents file of an exchange session (the state names the session and the file)."""
    rt = runtime.current()
    redis = rt.redis
    state = importing.read_state(redis, entity)
    try:
        if not state:
            return "skipped: the exchange session is gone (expired, or 1C started it again)"
        if state.get("state") in (importing.DONE, importing.FAILED):
            return f"skipped: already {state['state']}"
        key = importing.import_key(entity)
        sid, name, batch = state["sid"], state["name"], state["batch"]
        started = time.monotonic()
        redis.hset(key, mapping={"state": importing.RUNNING, "message": f"Идет загрузка документов {name}"})
        size = 0
        try:
            if any(unzip.is_zip(n) for n in uploads.sizes(redis, sid)):
                settings = rt.settings
                limits = unzip.Limits(
                    settings.exchange_session_bytes,
                    settings.exchange_zip_ratio,
                    settings.exchange_zip_entries,
                    settings.exchange_session_ttl,
                )
                unzip.unpack_all(redis, sid, state.get("session_key", ""), limits)
            stream = uploads.open_file(redis, sid, name)
            if stream is None:
                raise ExchangeFileError(
                    f"Файл {name} не был загружен в этом сеансе обмена: 1С должна отправить его (mode=file) "
                    "перед загрузкой (mode=import)"
                )
            size = uploads.size_of(redis, sid, name) or 0
            with stream:
                counts = apply_documents(rt, read_documents(stream), batch=batch)
        except (ExchangeFileError, DocumentsFileError, unzip.ZipRefused) as exc:
            message = f"Файл {name}: {exc}"
            return importing._finish(rt, entity, state, importing.FAILED, message, None, size, started)
        except OSError as exc:
            message = f"Файл {name} не удалось прочитать из хранилища моста ({exc}); повторите обмен"
            return importing._finish(rt, entity, state, importing.FAILED, message, None, size, started)
        message = f"{counts.summary()}. Пакет {batch}"
        return importing._finish(rt, entity, state, importing.DONE, message, None, size, started)
    finally:
        redis.delete(keys.SALE_IMPORT_PENDING.format(entity=entity))
