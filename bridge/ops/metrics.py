"""Prometheus figures shared by every bridge process, kept in Redis.

The web process answers ``/metrics``, but most of the work happens in workers and the clock, possibly on
other hosts. prometheus-client's multiprocess mode only joins processes of one host that share a
directory, so counters and histograms live in Redis instead: each process adds to them in the same
pipeline it already sends, and ``BridgeCollector`` reads them back at scrape time, together with gauges
taken straight from the live state (queue depths, the 1C circuit, open alerts).

Storage is one hash per metric. A counter field is the label values joined by ``\\x1f``; a histogram
stores, per label set, a count for the one bucket an observation falls in (``<labels>\\x1e<index>``,
made cumulative when read) and the running sum (``<labels>\\x1esum``): two cheap commands per observation.

Label values come from the bridge's own vocabulary (method names, outcome words, event names the shop
sent after its token was checked), never from secrets, and are cut to ``MAX_LABEL`` characters.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from bridge import keys
from bridge.queue import QUEUES

LABEL_SEP = "\x1f"
FIELD_SEP = "\x1e"
MAX_LABEL = 80
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Spec:
    """One metric the bridge writes: its kind, help text, label names and (histograms) bucket bounds."""

    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


SPECS: dict[str, Spec] = {
    "bridge_shop_events": Spec("counter", "Shop webhook events received, by event and outcome.", ("event", "outcome")),
    "bridge_onec_items": Spec("counter", "Items accepted from 1C on /1c/*, by kind.", ("kind",)),
    "bridge_peer_calls": Spec(
        "counter", "Calls to the shop and to 1C, by peer, operation and outcome.", ("peer", "operation", "outcome")
    ),
    "bridge_peer_call_duration_seconds": Spec(
        "histogram", "Duration of calls to the shop and to 1C.", ("peer", "operation"), LATENCY_BUCKETS
    ),
    "bridge_jobs": Spec("counter", "Job runs, by job and outcome.", ("job", "outcome")),
    "bridge_poll_orders_queued": Spec("counter", "Orders queued by polling that no webhook had brought.", ()),
    "bridge_dead_letters_retried": Spec("counter", "Failed jobs put back on their queue by an operator.", ()),
    "bridge_alert_notices": Spec(
        "counter", "Alert notices sent, by alert, channel and outcome.", ("alert", "channel", "outcome")
    ),
}


def label_value(value: object) -> str:
    text = str(value).replace(LABEL_SEP, " ").replace(FIELD_SEP, " ")
    return text[:MAX_LABEL]


def _labels_field(name: str, values: Sequence[object]) -> str:
    spec = SPECS[name]
    if len(values) != len(spec.labels):
        raise ValueError(f"{name} takes labels {spec.labels}, got {len(values)} values")
    return LABEL_SEP.join(label_value(v) for v in values)


def counter_slot(name: str, labels: Sequence[object] = ()) -> tuple[str, str]:
    """(hash key, field) of a counter's label set: where ``inc`` adds, for a script that counts by itself."""
    return keys.METRIC_COUNTER.format(name=name), _labels_field(name, labels)


def inc(pipe: Any, name: str, labels: Sequence[object] = (), amount: float = 1) -> None:
    """Add ``amount`` to a counter. ``pipe`` is a Redis client or pipeline, sync or async (queued there)."""
    key, field = counter_slot(name, labels)
    if float(amount).is_integer():
        pipe.hincrby(key, field, int(amount))
    else:
        pipe.hincrbyfloat(key, field, float(amount))


def observe(pipe: Any, name: str, labels: Sequence[object], value: float) -> None:
    """Record one observation of a histogram: its bucket's count and the sum."""
    spec = SPECS[name]
    field = _labels_field(name, labels)
    index = bisect.bisect_left(spec.buckets, value)  # index len(buckets) is +Inf
    key = keys.METRIC_HISTOGRAM.format(name=name)
    pipe.hincrby(key, f"{field}{FIELD_SEP}{index}", 1)
    pipe.hincrbyfloat(key, f"{field}{FIELD_SEP}sum", float(value))


def count_items(redis: Redis, kind: str, n: int) -> None:
    """Count ``n`` items accepted from 1C (``kind``: stock, prices, order-status). Sync clients.

    Never raises: the items are already accepted, and a lost count is not worth failing the answer.
    """
    if n:
        with contextlib.suppress(RedisError, OSError):
            inc(redis, "bridge_onec_items", (kind,), n)


async def count_items_async(redis: Any, kind: str, n: int) -> None:
    """The same for ``redis.asyncio`` clients, as the web handlers hold."""
    if n:
        key = keys.METRIC_COUNTER.format(name="bridge_onec_items")
        with contextlib.suppress(RedisError, OSError):
            await redis.hincrby(key, _labels_field("bridge_onec_items", (kind,)), n)


# -- reading back --------------------------------------------------------------------------------------------


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _split(field: str, size: int) -> list[str]:
    return field.split(LABEL_SEP) if size else []


def _counter(name: str, raw: dict[Any, Any]) -> Metric:
    spec = SPECS[name]
    family = CounterMetricFamily(name, spec.help, labels=list(spec.labels))
    for field, value in sorted((_text(k), float(_text(v))) for k, v in raw.items()):
        values = _split(field, len(spec.labels))
        if len(values) == len(spec.labels):
            family.add_metric(values, value)
    return family


def _histogram(name: str, raw: dict[Any, Any]) -> Metric:
    spec = SPECS[name]
    series: dict[str, tuple[list[float], list[float]]] = {}
    for key, value in raw.items():
        labels, _, part = _text(key).rpartition(FIELD_SEP)
        counts, total = series.setdefault(labels, ([0.0] * (len(spec.buckets) + 1), [0.0]))
        if part == "sum":
            total[0] = float(_text(value))
        elif part.isdigit() and int(part) < len(counts):
            counts[int(part)] += float(_text(value))
    family = HistogramMetricFamily(name, spec.help, labels=list(spec.labels))
    for labels, (counts, total) in sorted(series.items()):
        values = _split(labels, len(spec.labels))
        if len(values) != len(spec.labels):
            continue
        bounds = [*(repr(float(b)) for b in spec.buckets), "+Inf"]
        cumulative, running = [], 0.0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        family.add_metric(values, cumulative, sum_value=total[0])
    return family


def _age(enqueued_at: Any, now: float) -> float:
    if not enqueued_at:
        return 0.0
    try:
        stamp = datetime.fromisoformat(_text(enqueued_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, now - stamp)


def _iso_age(value: str | None, now: float) -> float:
    if not value:
        return 0.0
    try:
        return max(0.0, now - datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0.0


class BridgeCollector(Collector):
    """Reads every figure from Redis at scrape time, in three pipelined round trips."""

    def __init__(self, redis: Redis, queues: Iterable[str] = QUEUES) -> None:
        self.redis = redis
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for name, spec in SPECS.items():
            key = keys.METRIC_COUNTER if spec.kind == "counter" else keys.METRIC_HISTOGRAM
            pipe.hgetall(key.format(name=name))
        for queue in self.queues:
            pipe.llen(f"rq:queue:{queue}")
            pipe.zcard(f"rq:scheduled:{queue}")
            pipe.zcard(f"rq:wip:{queue}")
            pipe.zcard(f"rq:failed:{queue}")
            pipe.lindex(f"rq:queue:{queue}", 0)
        pipe.hgetall(keys.ONEC_CIRCUIT)
        pipe.mget([keys.SHOP_WAITS, keys.SHOP_WAIT_SECONDS, keys.SHOP_PAUSE_ALL])
        pipe.hkeys(keys.ALERT_INCIDENTS)
        results = pipe.execute()

        for name, spec in SPECS.items():
            raw = results.pop(0)
            yield _counter(name, raw) if spec.kind == "counter" else _histogram(name, raw)

        depth = GaugeMetricFamily("bridge_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"])
        oldest_ids: list[tuple[str, str | None]] = []
        for queue in self.queues:
            waiting, scheduled, started, failed, head = results[:5]
            del results[:5]
            for state, count in (
                ("waiting", waiting),
                ("scheduled", scheduled),
                ("started", started),
                ("failed", failed),
            ):
                depth.add_metric([queue, state], float(count))
            oldest_ids.append((queue, _text(head) if head is not None else None))
        yield depth

        circuit = {_text(k): _text(v) for k, v in results.pop(0).items()}
        waits, wait_seconds, paused_all = results.pop(0)
        alerts = sorted(_text(a) for a in results.pop(0))

        pipe = self.redis.pipeline(transaction=False)
        for _queue, job_id in oldest_ids:
            if job_id:
                pipe.hget(f"rq:job:{job_id}", "enqueued_at")
            else:
                pipe.echo("")
        stamps = pipe.execute()
        age = GaugeMetricFamily(
            "bridge_queue_oldest_job_age_seconds", "Age of the oldest job waiting in each queue.", labels=["queue"]
        )
        for (queue, _job_id), stamp in zip(oldest_ids, stamps, strict=True):
            age.add_metric([queue], _age(stamp, now))
        yield age

        is_open = circuit.get("state") == "open"
        yield GaugeMetricFamily(
            "bridge_onec_circuit_open",
            "1 while the 1C circuit is open (1C unavailable).",
            value=1.0 if is_open else 0.0,
        )
        yield GaugeMetricFamily(
            "bridge_onec_circuit_open_seconds",
            "How long the 1C circuit has been open; 0 while closed.",
            value=_iso_age(circuit.get("since"), now) if is_open else 0.0,
        )
        yield CounterMetricFamily(
            "bridge_shop_ratelimit_waits",
            "Shop calls that waited for the shared leaky bucket.",
            value=float(waits or 0),
        )
        yield CounterMetricFamily(
            "bridge_shop_ratelimit_wait_seconds",
            "Seconds spent waiting for the shared leaky bucket.",
            value=float(wait_seconds or 0),
        )
        paused = paused_all is not None and float(paused_all) > now
        yield GaugeMetricFamily(
            "bridge_shop_paused", "1 while all shop calls are paused (OVERLOAD_LIMIT).", value=1.0 if paused else 0.0
        )
        open_alerts = GaugeMetricFamily("bridge_alert_open", "1 for each alert incident open now.", labels=["alert"])
        for name in alerts:
            open_alerts.add_metric([label_value(name)], 1.0)
        yield open_alerts


def exposition(redis: Redis) -> bytes:
    """The Prometheus text for ``/metrics``; a fresh registry each time, so nothing is cached per process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(redis))
    return generate_latest(registry)
