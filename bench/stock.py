"""1C → shop: a big ``/1c/stock`` push, how fast it is answered and how few shop requests it costs.

**Big push.** One body of ``--items`` (50,000) stock items, ~2.6 MB of JSON, is POSTed to ``bridge web``'s
``/1c/stock`` and to a bare Starlette endpoint that only reads the body (``bench/bare_app.py``, the same
uvicorn options), alternately, ``--pushes`` times each. The figure is the median of (time to the bridge's
202) ÷ (time to the bare endpoint's answer). No worker runs meanwhile, so the flush does not compete.

**Shop requests.** Then one worker flushes what was pushed. The push has ``--repeated`` (30 %) of its items
repeating a key that came earlier in it (1C's periodic uploads do), and ``--unchanged`` (30 %) of the
distinct keys carry the amount the shop already holds. Every product has a stock record in every store,
and the bridge starts cold (no lookups cached). The figure is the shop HTTP requests the flush used ÷ the
least any client could use::

    ⌈distinct writes / 50⌉ + lookups,   lookups = 1 + ⌈products / 2500⌉ + ⌈distinct keys / 2500⌉

(a ``batch`` carries 50 commands, a list command answers 50 rows, so one request can read 2,500 rows; the
1 is the store list). Distinct writes are the distinct keys whose final amount differs from the shop's.
The shop emulator has no rate limit here and ``BRIDGE_SHOP_RATE`` is high: this counts requests, the rate
is ``bench.ratelimit``'s business. At the end every amount in the shop is checked against the push.

    python -m bench.stock [--rounds 3] [--items 50000]
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from bench.common import (
    ROOT,
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
    wait_for,
    workdir,
)
from bridge.queue import SHOP_QUEUE

TARGET_REQUESTS = 1.05
TARGET_PUSH = 5.0
TOKEN = "bench-inbound-token-0001"
STORES = 5
FIRST_PRODUCT = 100_000
FAST_SHOP = {"BRIDGE_SHOP_RATE": "1000", "BRIDGE_SHOP_BURST": "1000", "BRIDGE_INBOUND_TOKEN": TOKEN}


def make_catalog(p: Peers, products: int) -> None:
    for store in range(1, STORES + 1):
        p.shop.add_store(store_id=store, title=f"S{store}")
    for n in range(products):
        p.shop.add_product(product_id=FIRST_PRODUCT + n, xml_id=f"guid-{n:06d}")


def reset_amounts(p: Peers, products: int, rng: random.Random) -> dict[tuple[int, int], int]:
    """Every (product, store) record back to a known amount; returns the amounts."""
    current: dict[tuple[int, int], int] = {}
    for n in range(products):
        for store in range(1, STORES + 1):
            amount = rng.randrange(0, 100)
            p.shop.set_amount(FIRST_PRODUCT + n, store, amount)
            current[(FIRST_PRODUCT + n, store)] = amount
    p.shop.clear_records()
    return current


def make_push(
    items: int, repeated: float, unchanged: float, current: dict[tuple[int, int], int], rng: random.Random
) -> tuple[list[dict[str, Any]], dict[tuple[int, int], int]]:
    """The push's items (in order) and the final amount per key."""
    distinct = items - round(items * repeated)
    pairs = list(current)[:distinct]
    rng.shuffle(pairs)
    final: dict[tuple[int, int], int] = {}
    for index, pair in enumerate(pairs):  # the first `unchanged` share keeps the shop's amount
        final[pair] = current[pair] if index < round(distinct * unchanged) else current[pair] + 1 + rng.randrange(50)
    order = pairs + [rng.choice(pairs) for _ in range(items - distinct)]
    # A repeated key's earlier occurrences carry other values; only its last occurrence holds the final one.
    last = {pair: index for index, pair in enumerate(order)}
    body = []
    for index, pair in enumerate(order):
        amount = final[pair] if last[pair] == index else rng.randrange(0, 1000)
        body.append({"xml_id": f"guid-{pair[0] - FIRST_PRODUCT:06d}", "store_id": pair[1], "amount": amount})
    return body, final


def start_bare(port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / "bare.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_app", "--port", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the bare endpoint exited; see {log_dir / 'bare.log'}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, what="the bare endpoint")
    return process


def timed_post(client: httpx.Client, url: str, body: bytes, expected: int) -> float:
    headers = {"Content-Type": "application/json", "X-Api-Token": TOKEN}
    started = time.perf_counter()
    answer = client.post(url, content=body, headers=headers)
    took = time.perf_counter() - started
    if answer.status_code != expected:
        raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:300]}")
    return took


def request_kinds(requests: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """How many of the shop's requests wrote (a ``batch`` of adds/updates) and how many looked up."""
    counts = {"write": 0, "lookup": 0}
    for method, params in requests:
        commands = params.get("cmd") or {}
        values = commands.values() if isinstance(commands, dict) else commands
        writes = method == "batch" and any(".add" in str(c) or ".update" in str(c) for c in values)
        counts["write" if writes else "lookup"] += 1
    return counts


def flushed(redis: Redis) -> bool:
    return (
        not redis.exists("bridge:pending:stock")
        and not redis.exists("bridge:flush:pending:stock")
        and redis.llen(f"rq:queue:{SHOP_QUEUE}") == 0
    )


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rounds=3)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeated", type=float, default=0.3)
    parser.add_argument("--unchanged", type=float, default=0.3)
    parser.add_argument("--pushes", type=int, default=5, help="timed pushes per side and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed pushes per side first (see BENCHMARKS.md)")
    args = parser.parse_args(argv)

    distinct = args.items - round(args.items * args.repeated)
    products = math.ceil(distinct / STORES)
    rounds: list[dict[str, Any]] = []
    rss = RssSampler()
    with workdir(args.keep) as work, peers(work) as p:
        redis = Redis.from_url(p.redis.url)
        make_catalog(p, products)
        bare_port = free_port()
        bare = start_bare(bare_port, work)
        try:
            for number in range(args.rounds):
                rng = random.Random(20261122 + number)
                redis.flushall()
                current = reset_amounts(p, products, rng)
                items, final = make_push(args.items, args.repeated, args.unchanged, current, rng)
                body = json.dumps({"items": items}).encode()
                log_dir = Path(work) / f"round-{number + 1}"
                log_dir.mkdir()
                row: dict[str, Any] = {"round": number + 1, "body_mb": len(body) / 1e6}
                with (
                    bridge(bridge_env(p, free_port(), **FAST_SHOP, **extra_env(args.env)), log_dir, rss) as b,
                    httpx.Client(timeout=120) as c,
                ):
                    b.start("web")
                    bare_url, bridge_url = f"http://127.0.0.1:{bare_port}/1c/stock", f"{b.url}/1c/stock"
                    for _ in range(args.warmup):  # warm: connections, first-request imports, buffers, heaps
                        for url in (bare_url, bridge_url):
                            timed_post(c, url, body, 202)
                    ratios, bare_s, bridge_s = [], [], []
                    for push in range(args.pushes):
                        order = [(bare_url, bare_s), (bridge_url, bridge_s)]
                        for url, times in order if push % 2 == 0 else reversed(order):
                            times.append(timed_post(c, url, body, 202))
                        ratios.append(bridge_s[-1] / bare_s[-1])
                    row.update(push_ratio=median(ratios), bridge_push_s=median(bridge_s), bare_push_s=median(bare_s))
                    p.shop.clear_records()
                    started = time.monotonic()
                    b.start("worker")
                    poll(lambda: flushed(redis), timeout=3600, what="the flush to finish", interval=0.2)
                    row["flush_s"] = time.monotonic() - started
                wrong = [pair for pair, amount in final.items() if p.shop.amount(*pair) != amount]
                if wrong:
                    raise SystemExit(f"round {number + 1}: {len(wrong)} amounts differ from the push, e.g. {wrong[:3]}")
                writes = sum(1 for pair, amount in final.items() if amount != current[pair])
                lookups = 1 + math.ceil(products / 2500) + math.ceil(len(final) / 2500)
                bound = math.ceil(writes / 50) + lookups
                used = len(p.shop.requests)
                kinds = request_kinds(p.shop.requests)
                row.update(requests=used, bound=bound, request_ratio=used / bound, refused=p.shop.status_counts[503])
                row.update(write_requests=kinds["write"], lookup_requests=kinds["lookup"], writes=writes)
                rounds.append(row)
                print(table(rounds[-1:], list(rounds[-1])), flush=True)
        finally:
            bare.terminate()
            bare.wait(10)
    rss.stop()
    figures = {
        "push_ratio": median([r["push_ratio"] for r in rounds]),
        "bridge_push_s": median([r["bridge_push_s"] for r in rounds]),
        "bare_push_s": median([r["bare_push_s"] for r in rounds]),
        "request_ratio": median([r["request_ratio"] for r in rounds]),
        "requests": median([r["requests"] for r in rounds]),
        "bound": median([r["bound"] for r in rounds]),
        "web_peak_rss_mb": rss.peak_mb("web"),
        "worker_peak_rss_mb": rss.peak_mb("worker"),
        "target_push_ratio": TARGET_PUSH,
        "target_request_ratio": TARGET_REQUESTS,
    }
    print()
    print(table(rounds, list(rounds[0])))
    print(
        f"\nmedian over {len(rounds)} rounds: big push {figures['push_ratio']:.1f}× the bare read (target ≤ "
        f"{TARGET_PUSH:g}); shop requests {figures['request_ratio']:.3f}× the least possible (target ≤ "
        f"{TARGET_REQUESTS}); peak RSS web {figures['web_peak_rss_mb']:.0f} MB, worker "
        f"{figures['worker_peak_rss_mb']:.0f} MB"
    )
    emit("stock", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
