"""What each console page shows, read from where the bridge already keeps it.

No new store: the queues, circuit, shop pause and alerts come from ``bridge.ops.status`` (the reader behind
``/readyz`` and ``/metrics``), an order's story and the 1C batches and exchange sessions from the sync log,
dead letters from ``bridge.queue.deadletters``, the configuration from the settings as ``bridge check``
judges them. The pages therefore say what the API and the command line say. These functions are
synchronous (redis-py) and run in a thread.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from redis import Redis

from bridge import keys
from bridge.ops import status, synclog
from bridge.ops.synclog import Entry
from bridge.queue import deadletters
from bridge.redaction import MASK, safe_url
from bridge.settings import FEATURE_REQUIREMENTS, Settings
from bridge.web.console.charts import Series, bucketed

ORDER_QUERY = re.compile(r"^[\w./#-]{1,64}$")
STORY_LIMIT = 200
SEARCH_SCAN = 20_000  # entries of the global log looked through for an account number
CHART_HOURS = 3
CHART_SCAN = 50_000
EXCHANGE_SCAN = 5_000


@dataclass(frozen=True)
class Overview:
    snapshot: status.Status
    throughput: Series
    latency: Series


def overview(redis: Redis) -> Overview:
    snapshot = status.read(redis)
    now = snapshot.at
    start_ms = int((now - CHART_HOURS * 3600) * 1000)
    rows: Any = redis.xrevrange(keys.SYNC_LOG, max="+", min=str(start_ms), count=CHART_SCAN)
    calls = [
        (e.at or 0.0, e.outcome, e.duration)
        for e in (synclog._entry(sid, raw) for sid, raw in rows)
        if e.peer == "1c" and e.entity == "order"
    ]
    throughput, latency = bucketed(calls, now, hours=CHART_HOURS)
    return Overview(snapshot, throughput, latency)


def find_order(redis: Redis, query: str) -> str | None:
    """The order id a search means: an id the sync log knows, else the order whose entries name ``query``
    (an account number appears in the words of the entries about its order)."""
    if redis.exists(synclog.entity_key("order", query)):
        return query
    pattern = re.compile(rf"(?<![\w-]){re.escape(query)}(?![\w-])")
    rows: Any = redis.xrevrange(keys.SYNC_LOG, count=SEARCH_SCAN)
    for sid, raw in rows:
        entry = synclog._entry(sid, raw)
        if entry.entity == "order" and entry.entity_id and pattern.search(f"{entry.detail or ''} {entry.error or ''}"):
            return entry.entity_id
    return None


def order_story(redis: Redis, order_id: str) -> list[Entry]:
    """Oldest first, as a story is read."""
    return list(reversed(synclog.read(redis, entity="order", entity_id=order_id, limit=STORY_LIMIT)))


def dead_letters(redis: Redis) -> list[deadletters.DeadLetter]:
    return deadletters.list_failed(redis, limit=1000)


@dataclass(frozen=True)
class Exchanges:
    sessions: list[Entry]  # entity ``exchange``: the CommerceML sessions, newest first
    pushes: list[Entry]  # 1C's pushes to /1c/*: batches and their counts
    dropped: list[Entry]  # items accepted but not applied, and why


def exchanges(redis: Redis) -> Exchanges:
    rows: Any = redis.xrevrange(keys.SYNC_LOG, count=EXCHANGE_SCAN)
    entries = [synclog._entry(sid, raw) for sid, raw in rows]
    return Exchanges(
        sessions=[e for e in entries if e.entity == "exchange"],
        pushes=[e for e in entries if e.operation.startswith("push.") or e.entity == "batch"],
        dropped=[e for e in entries if e.outcome in ("dropped", "refused", "rejected") and e.entity != "order"],
    )


@dataclass(frozen=True)
class Feature:
    name: str
    on: bool
    why: str


def features(settings: Settings) -> list[Feature]:
    found = []
    for name in FEATURE_REQUIREMENTS:
        missing = settings.missing_for(name)
        why = f"off until {', '.join(missing)} is set" if missing else "on"
        found.append(Feature(name, not missing, why))
    return found


def shown_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting by its environment name, with each secret masked: a URL keeps its host and loses its
    key and password, any other secret shows only whether it is set."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    rows = []
    for name in sorted(Settings.model_fields):
        rows.append((prefix + name.upper(), _shown(name, getattr(settings, name))))
    return rows


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, SecretStr):
        if name.endswith("_url"):
            return safe_url(value.get_secret_value())
        return f"set ({MASK})"
    if isinstance(value, list | tuple) and any(isinstance(v, SecretStr) for v in value):
        return f"{len(value)} set ({MASK})"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def configuration(settings: Settings) -> dict[str, Any]:
    from bridge.mappings import MappingError, describe, load_mappings
    from bridge.ops import notify

    problems: list[str] = []
    lines: list[str] = []
    try:
        lines = describe(load_mappings(settings.mappings_dir))
    except MappingError as exc:
        problems.append(str(exc))
    problems.extend(notify.missing_settings(settings))
    return {
        "features": features(settings),
        "settings": shown_settings(settings),
        "mappings": lines,
        "channels": list(notify.channels(settings)) or [],
        "problems": problems,
        "read_at": time.time(),
    }
