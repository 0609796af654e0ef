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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from bridge import keys
from bridge.ops import status
from bridge.queue import QUEUES
from bridge.texts import as_text

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
    "bridge_exchange_sessions": Spec("counter", "1C exchange sessions opened (checkauth), by type.", ("type",)),
    "bridge_exchange_files": Spec("counter", "Files 1C began uploading in its exchange, by type.", ("type",)),
    "bridge_exchange_bytes": Spec("counter", "Bytes 1C uploaded in its exchange, by type.", ("type",)),
    "bridge_exchange_imports": Spec("counter", "Imports of 1C exchange files, by outcome.", ("outcome",)),
    "bridge_update_problems": Spec(
        "counter",
        "Updates from 1C refused at the intake, dropped, held or applied with a warning, by kind, outcome and reason.",
        ("kind", "outcome", "reason"),
    ),
    "bridge_dead_letters_discarded": Spec("counter", "Failed jobs dropped for good by an operator.", ()),
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


# -- reading back --------------------------------------------------------------------------------------------


def _split(field: str, size: int) -> list[str]:
    return field.split(LABEL_SEP) if size else []


def _counter(name: str, raw: dict[Any, Any]) -> Metric:
    spec = SPECS[name]
    family = CounterMetricFamily(name, spec.help, labels=list(spec.labels))
    for field, value in sorted((as_text(k), float(as_text(v))) for k, v in raw.items()):
        values = _split(field, len(spec.labels))
        if len(values) == len(spec.labels):
            family.add_metric(values, value)
    return family


def _histogram(name: str, raw: dict[Any, Any]) -> Metric:
    spec = SPECS[name]
    series: dict[str, tuple[list[float], list[float]]] = {}
    for key, value in raw.items():
        labels, _, part = as_text(key).rpartition(FIELD_SEP)
        counts, total = series.setdefault(labels, ([0.0] * (len(spec.buckets) + 1), [0.0]))
        if part == "sum":
            total[0] = float(as_text(value))
        elif part.isdigit() and int(part) < len(counts):
            counts[int(part)] += float(as_text(value))
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


class BridgeCollector(Collector):
    """Reads every figure from Redis at scrape time, in three pipelined round trips: the counters and
    histograms, then the live state (``bridge.ops.status``, the snapshot ``/readyz`` shows too)."""

    def __init__(self, redis: Redis, queues: Iterable[str] = QUEUES) -> None:
        self.redis = redis
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        pipe = self.redis.pipeline(transaction=False)
        for name, spec in SPECS.items():
            key = keys.METRIC_COUNTER if spec.kind == "counter" else keys.METRIC_HISTOGRAM
            pipe.hgetall(key.format(name=name))
        results = pipe.execute()
        for (name, spec), raw in zip(SPECS.items(), results, strict=True):
            yield _counter(name, raw) if spec.kind == "counter" else _histogram(name, raw)

        snapshot = status.read(self.redis, self.queues)
        depth = GaugeMetricFamily("bridge_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"])
        age = GaugeMetricFamily(
            "bridge_queue_oldest_job_age_seconds", "Age of the oldest job waiting in each queue.", labels=["queue"]
        )
        for queue in snapshot.queues:
            for state, count in (
                ("waiting", queue.waiting),
                ("scheduled", queue.scheduled),
                ("started", queue.started),
                ("failed", queue.failed),
            ):
                depth.add_metric([queue.name, state], float(count))
            age.add_metric([queue.name], queue.oldest_waiting_seconds or 0.0)
        yield depth
        yield age

        yield GaugeMetricFamily(
            "bridge_onec_circuit_open",
            "1 while the 1C circuit is open (1C unavailable).",
            value=1.0 if snapshot.circuit.is_open else 0.0,
        )
        yield GaugeMetricFamily(
            "bridge_onec_circuit_open_seconds",
            "How long the 1C circuit has been open; 0 while closed.",
            value=snapshot.circuit_open_seconds,
        )
        yield CounterMetricFamily(
            "bridge_shop_ratelimit_waits",
            "Shop calls that waited for the shared leaky bucket.",
            value=float(snapshot.shop.waits),
        )
        yield CounterMetricFamily(
            "bridge_shop_ratelimit_wait_seconds",
            "Seconds spent waiting for the shared leaky bucket.",
            value=snapshot.shop.wait_seconds,
        )
        yield GaugeMetricFamily(
            "bridge_shop_paused",
            "1 while all shop calls are paused (OVERLOAD_LIMIT).",
            value=1.0 if snapshot.shop.paused_until is not None else 0.0,
        )
        open_alerts = GaugeMetricFamily(
            "bridge_alert_open", "1 for each alert incident open snapshot.", labels=["alert"]
        )
        for name in sorted(snapshot.alerts):
            open_alerts.add_metric([label_value(name)], 1.0)
        yield open_alerts


class _Collected(Collector):
    """Families gathered beforehand, so that Redis failing halfway leaves no half-written exposition."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def redis_up(up: bool) -> Metric:
    return GaugeMetricFamily(
        "bridge_redis_up",
        "1 when this scrape could read Redis; 0 when it could not, and every figure kept in Redis is missing.",
        value=1.0 if up else 0.0,
    )


def exposition(redis: Redis) -> bytes:
    """The Prometheus text for ``/metrics``; a fresh registry each time, so nothing is cached per process.

    Redis unreachable still gives an answer: ``bridge_redis_up 0`` and no figure that lives in Redis. A 503
    instead would make Prometheus mark the target down and lose every series exactly during the outage, and
    an exporter is expected to report what it cannot reach rather than fail.
    """
    try:
        families = [*BridgeCollector(redis).collect(), redis_up(True)]
    except (RedisError, OSError):
        families = [redis_up(False)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(families))
    return generate_latest(registry)
