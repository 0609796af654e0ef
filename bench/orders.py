"""The order path, shop event → 1C: latency with one worker, and the drain after a 1C outage.

**Order latency.** 1C answers in ``--latency-onec`` (10 ms); one ``bridge worker``. The shop fires events for
new orders at a steady pace (``--latency-gap`` apart, so each finds the worker idle); each is timed from the
moment the event is sent until the order *arrives* at 1C. The figure is the p50 and p95 of those times.

**Outage drain.** 1C is locked (maintenance: every call answers the session-start refusal), the shop fires
``--drain-orders`` events, and the bridge tries each once, opens its 1C circuit and parks them all as
scheduled retries. Then the lock lifts. Once a probe finds 1C back, the bridge brings every parked order
forward; from the first delivery to the last, ``orders delivered / s`` is compared with what the emulated 1C
can take: ``BRIDGE_ONEC_CONCURRENCY`` calls in flight, each ``--drain-onec-latency`` long. How soon the probe
comes after the lock lifts depends on the retry back-off, not on the drain speed, and is reported apart.

The shop emulator has no rate limit here and ``BRIDGE_SHOP_RATE`` is set high: every order costs one
``sale.order.get``, so at the shop's real 2 requests/s the drain would measure the shop (see BENCHMARKS.md);
the shop's limit is measured by ``bench.ratelimit``. Peak RSS of the web process and of the workers (work-
horses included) is reported for both phases.

**Drain at the shop's limit.** The same drain with the shop's real default: the emulated shop refuses
requests beyond a leaky bucket of 50 draining at 2/s, and ``BRIDGE_SHOP_RATE=2``. 1C's capacity is still
20 orders/s and the shop's budget fetches 50 × 2 = 100 orders/s in ``batch`` calls of 50, so the drain's
orders/s is compared with the smaller of the two; and the shop requests spent per drained order (from the
unlock to the last arrival) show the batching: 1/50 at best, 1 were every order fetched on its own.

Retries wait 10–20 s while 1C is locked (``BRIDGE_RETRY_MIN_DELAY`` / ``_MAX_DELAY``), so the probe comes
soon after the lock lifts. ``--phases drain`` runs the drain alone, ``--workers`` sets how many workers drain.

    python -m bench.orders [--rounds 3] [--latency-events 100] [--drain-orders 500] [--workers 3]
                           [--phases latency,drain,limit]
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from bench.common import (
    Peers,
    RssSampler,
    base_parser,
    bridge,
    bridge_env,
    emit,
    extra_env,
    free_port,
    median,
    peers,
    poll,
    table,
    workdir,
)
from bridge.shop import phpquery

TARGET_P50_MS = 100.0
TARGET_P95_MS = 300.0
TARGET_DRAIN = 0.8
TARGET_LIMIT_DRAIN = 0.8
TARGET_REQUESTS_PER_ORDER = 0.05
SHOP_LIMIT = {"BRIDGE_SHOP_RATE": "2", "BRIDGE_SHOP_BURST": "50"}  # the shop's defaults
FAST_SHOP = {"BRIDGE_SHOP_RATE": "1000", "BRIDGE_SHOP_BURST": "1000"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def event_body(p: Peers, order_id: int) -> bytes:
    return phpquery.build(p.shop.event_payload("ONSALEORDERSAVED", order_id)).encode()


def arrivals(p: Peers, numbers: set[str]) -> dict[str, float]:
    """When each of ``numbers`` first reached 1C and was taken (created or updated)."""
    found: dict[str, float] = {}
    with p.onec._mutex:
        calls = list(p.onec.calls)
    for call in calls:
        number = call.get("number")
        if number in numbers and call.get("status") in (200, 201) and "arrived" in call and number not in found:
            found[number] = call["arrived"]
    return found


def all_arrived(p: Peers, numbers: set[str]) -> dict[str, float] | None:
    found = arrivals(p, numbers)
    return found if len(found) == len(numbers) else None


def measure_latency(p: Peers, url: str, events: int, gap: float, warmup: int = 3) -> dict[str, Any]:
    """The first ``warmup`` events are not counted: they pay for first connections and first forks."""
    orders = [p.shop.add_order() for _ in range(events + warmup)]
    sent: dict[str, float] = {}
    with httpx.Client(timeout=30) as client:
        for order in orders:
            body = event_body(p, order["id"])
            started = time.time()
            answer = client.post(url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer.raise_for_status()
            sent[order["accountNumber"]] = started
            time.sleep(gap)
    numbers = {order["accountNumber"] for order in orders[warmup:]}
    got = poll(lambda: all_arrived(p, numbers), timeout=120, what="the orders in 1C")
    latencies = [(got[n] - sent[n]) * 1000 for n in numbers]
    return {"p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95), "max_ms": max(latencies)}


async def _fire(url: str, bodies: list[bytes], concurrency: int = 16) -> None:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(body: bytes) -> None:
            async with limit:
                answer = await client.post(
                    url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
                )
                answer.raise_for_status()

        await asyncio.gather(*(one(body) for body in bodies))


def measure_drain(p: Peers, url: str, redis: Redis, n: int, concurrency: int, latency: float) -> dict[str, Any]:
    p.onec.latency = latency
    p.onec.lock("Ведутся технические работы")
    orders = [p.shop.add_order() for _ in range(n)]
    numbers = {order["accountNumber"] for order in orders}
    asyncio.run(_fire(url, [event_body(p, order["id"]) for order in orders]))

    def all_tried() -> bool:
        # Every order's job ran at least once (each run files a line in the order's sync log). Retries keep
        # coming round while 1C stays locked, so the queue itself need not be empty at any moment.
        return sum(1 for _ in redis.scan_iter("bridge:log:order:*", count=1000)) >= n

    poll(all_tried, timeout=600, what="every order to be tried once and parked", interval=0.2)
    with p.shop.lock:
        requests_before = len(p.shop.requests)
    unlocked = time.time()
    p.onec.unlock()
    got = poll(lambda: all_arrived(p, numbers), timeout=900, what="the drain", interval=0.1)
    with p.shop.lock:
        shop_requests = len(p.shop.requests) - requests_before
    first, last = min(got.values()), max(got.values())
    rate = (n - 1) / (last - first) if last > first else float("inf")
    capacity = concurrency / latency
    return {
        "shop_requests_per_order": shop_requests / n,
        "drain_rate": rate,
        "capacity": capacity,
        "drain_ratio": rate / capacity,
        "probe_wait_s": first - unlocked,
        "drain_s": last - first,
        "max_in_flight": p.onec.max_in_flight,
    }


def measure_limit_drain(p: Peers, redis: Redis, args: Any, log_dir: Path, rss: RssSampler) -> dict[str, Any]:
    """The drain with the shop's real rate limit, on the shop's side as well as the bridge's."""
    env = bridge_env(
        p,
        free_port(),
        BRIDGE_ONEC_CONCURRENCY=str(args.concurrency),
        BRIDGE_RETRY_MIN_DELAY="10",
        BRIDGE_RETRY_MAX_DELAY="20",
        **SHOP_LIMIT,
        **extra_env(args.env),
    )
    (log_dir / "limit").mkdir()
    p.shop.set_rate_limit(float(SHOP_LIMIT["BRIDGE_SHOP_RATE"]), int(SHOP_LIMIT["BRIDGE_SHOP_BURST"]))
    try:
        with bridge(env, log_dir / "limit", rss) as b:
            b.start("web")
            for index in range(args.workers):
                b.start("worker", f"worker-{index + 1}" if index else "worker")
            drain = measure_drain(
                p, f"{b.url}/shop/events", redis, args.drain_orders, args.concurrency, args.drain_onec_latency
            )
    finally:
        p.shop.set_rate_limit(None)
    bound = min(drain["capacity"], 50 * float(SHOP_LIMIT["BRIDGE_SHOP_RATE"]))
    return {
        "limit_drain_rate": drain["drain_rate"],
        "limit_drain_ratio": drain["drain_rate"] / bound,
        "limit_requests_per_order": drain["shop_requests_per_order"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--latency-gap", type=float, default=0.2, help="seconds between latency events")
    parser.add_argument("--latency-onec", type=float, default=0.01, help="1C's answer time in the latency phase")
    parser.add_argument("--drain-orders", type=int, default=500)
    parser.add_argument("--drain-onec-latency", type=float, default=0.1, help="1C's answer time in the drain")
    parser.add_argument("--concurrency", type=int, default=2, help="BRIDGE_ONEC_CONCURRENCY in the drain")
    parser.add_argument("--workers", type=int, default=3, help="bridge workers in the drain")
    parser.add_argument("--phases", default="latency,drain,limit", help="which phases to run (comma-separated)")
    args = parser.parse_args(argv)

    rounds: list[dict[str, Any]] = []
    rss = RssSampler()
    with workdir(args.keep) as work, peers(work) as p:
        redis = Redis.from_url(p.redis.url)
        for number in range(args.rounds):
            row: dict[str, Any] = {"round": number + 1}
            redis.flushall()
            p.onec.unlock()
            p.onec.latency = args.latency_onec
            log_dir = Path(work) / f"round-{number + 1}"
            log_dir.mkdir()
            (log_dir / "latency").mkdir()
            phases = args.phases.split(",")
            if "latency" in phases:
                with bridge(
                    bridge_env(p, free_port(), **FAST_SHOP, **extra_env(args.env)), log_dir / "latency", rss
                ) as b:
                    b.start("web")
                    b.start("worker")
                    row.update(measure_latency(p, f"{b.url}/shop/events", args.latency_events, args.latency_gap))
                redis.flushall()
            if "drain" in phases:
                env = bridge_env(
                    p,
                    free_port(),
                    BRIDGE_ONEC_CONCURRENCY=str(args.concurrency),
                    BRIDGE_RETRY_MIN_DELAY="10",
                    BRIDGE_RETRY_MAX_DELAY="20",
                    **FAST_SHOP,
                    **extra_env(args.env),
                )
                (log_dir / "drain").mkdir()
                with bridge(env, log_dir / "drain", rss) as b:
                    b.start("web")
                    for index in range(args.workers):
                        b.start("worker", f"worker-{index + 1}" if index else "worker")
                    drain = measure_drain(
                        p, f"{b.url}/shop/events", redis, args.drain_orders, args.concurrency, args.drain_onec_latency
                    )
                    row.update({k: v for k, v in drain.items() if k in ("drain_rate", "drain_ratio", "probe_wait_s")})
                    row["capacity"] = drain["capacity"]
                redis.flushall()
                p.onec.unlock()
            if "limit" in phases:
                row.update(measure_limit_drain(p, redis, args, log_dir, rss))
                redis.flushall()
                p.onec.unlock()
            rounds.append(row)
            print(table(rounds[-1:], list(rounds[-1])), flush=True)
    rss.stop()
    workers = [name for name in rss.peak_kb if name.startswith("worker")]
    figures = {
        "p50_ms": median([r["p50_ms"] for r in rounds if "p50_ms" in r]),
        "p95_ms": median([r["p95_ms"] for r in rounds if "p95_ms" in r]),
        "drain_ratio": median([r["drain_ratio"] for r in rounds if "drain_ratio" in r]),
        "drain_rate": median([r["drain_rate"] for r in rounds if "drain_rate" in r]),
        "capacity": rounds[0].get("capacity", float("nan")) if rounds else float("nan"),
        "limit_drain_ratio": median([r["limit_drain_ratio"] for r in rounds if "limit_drain_ratio" in r]),
        "limit_drain_rate": median([r["limit_drain_rate"] for r in rounds if "limit_drain_rate" in r]),
        "limit_requests_per_order": median(
            [r["limit_requests_per_order"] for r in rounds if "limit_requests_per_order" in r]
        ),
        "web_peak_rss_mb": rss.peak_mb("web"),
        "worker_peak_rss_mb": max((rss.peak_mb(name) for name in workers), default=0.0),
        "target_p50_ms": TARGET_P50_MS,
        "target_p95_ms": TARGET_P95_MS,
        "target_drain_ratio": TARGET_DRAIN,
        "target_limit_drain_ratio": TARGET_LIMIT_DRAIN,
        "target_requests_per_order": TARGET_REQUESTS_PER_ORDER,
    }
    print()
    print(table(rounds, list(rounds[0])))
    print(
        f"\nmedian over {len(rounds)} rounds: order latency p50 {figures['p50_ms']:.0f} ms (target ≤ {TARGET_P50_MS:g}),"
        f" p95 {figures['p95_ms']:.0f} ms (target ≤ {TARGET_P95_MS:g}); drain {figures['drain_rate']:.1f} orders/s ="
        f" {figures['drain_ratio']:.2f} of 1C's capacity (target ≥ {TARGET_DRAIN}); at the shop's limit"
        f" {figures['limit_drain_rate']:.1f} orders/s = {figures['limit_drain_ratio']:.2f} of min(1C, 50 × shop rate)"
        f" (target ≥ {TARGET_LIMIT_DRAIN}), {figures['limit_requests_per_order']:.3f} shop requests per order"
        f" (target ≤ {TARGET_REQUESTS_PER_ORDER}); peak RSS web"
        f" {figures['web_peak_rss_mb']:.0f} MB, worker {figures['worker_peak_rss_mb']:.0f} MB"
    )
    emit("orders", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
