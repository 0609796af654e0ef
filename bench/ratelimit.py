"""Rate-limit use: shop requests/s the bridge achieves during a long drain ÷ ``BRIDGE_SHOP_RATE``.

The shop emulator enforces a leaky bucket of ``--rate`` (10) requests/s with a burst of ``--burst`` (20) and
answers 503 ``QUERY_LIMIT_EXCEEDED`` past it; the bridge is told the same figures (``BRIDGE_SHOP_RATE``,
``BRIDGE_SHOP_BURST``) and runs ``--workers`` workers. A first stock push of ``--keys`` keys warms the
bridge's lookup caches; the second, changing every amount, is the measured drain: nothing but
``batch`` writes of 50, for about ``keys / 50 / rate`` seconds. The figure is the requests the shop accepted
per second over the drain, leaving out its first ``--skip`` seconds (the burst the shop grants up front
would otherwise count as speed), ÷ ``--rate``; and the share of requests the shop refused with 503.

    python -m bench.ratelimit [--rounds 3] [--keys 20000]
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from bench.common import (
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
from bench.stock import FIRST_PRODUCT, STORES, TOKEN, flushed, make_catalog, reset_amounts

TARGET_USE = 0.9
TARGET_REFUSED = 0.01


def push(client: httpx.Client, url: str, amounts: dict[tuple[int, int], int]) -> None:
    items = [
        {"xml_id": f"guid-{product - FIRST_PRODUCT:06d}", "store_id": store, "amount": amount}
        for (product, store), amount in amounts.items()
    ]
    body = json.dumps({"items": items}).encode()
    answer = client.post(url, content=body, headers={"Content-Type": "application/json", "X-Api-Token": TOKEN})
    if answer.status_code != 202:
        raise RuntimeError(f"/1c/stock answered {answer.status_code}: {answer.text[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rounds=3)
    parser.add_argument("--keys", type=int, default=20_000, help="stock keys per push (products × 5 stores)")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", type=float, default=5.0, help="seconds at the start of the drain not counted")
    args = parser.parse_args(argv)

    products = math.ceil(args.keys / STORES)
    rounds: list[dict[str, Any]] = []
    with workdir(args.keep) as work, peers(work) as p:
        redis = Redis.from_url(p.redis.url)
        make_catalog(p, products)
        for number in range(args.rounds):
            rng = random.Random(7 + number)
            redis.flushall()
            current = reset_amounts(p, products, rng)
            env = bridge_env(
                p,
                free_port(),
                BRIDGE_SHOP_RATE=repr(args.rate),
                BRIDGE_SHOP_BURST=str(args.burst),
                BRIDGE_INBOUND_TOKEN=TOKEN,
                **extra_env(args.env),
            )
            log_dir = Path(work) / f"round-{number + 1}"
            log_dir.mkdir()
            with bridge(env, log_dir) as b, httpx.Client(timeout=120) as client:
                b.start("web")
                for index in range(args.workers):
                    b.start("worker", f"worker-{index + 1}")
                url = f"{b.url}/1c/stock"
                p.shop.set_rate_limit(args.rate, burst=args.burst)
                push(client, url, {pair: amount + 1 for pair, amount in current.items()})  # warm the caches
                poll(lambda: flushed(redis), timeout=3600, what="the warm-up flush", interval=0.2)
                p.shop.clear_records()
                p.shop.times.clear()
                push(client, url, {pair: amount + 2 for pair, amount in current.items()})
                poll(lambda: flushed(redis), timeout=3600, what="the measured flush", interval=0.2)
            times = sorted(p.shop.times)
            accepted = [t for t, status in times if status != 503]
            refused = sum(1 for _, status in times if status == 503)
            start, end = accepted[0] + args.skip, accepted[-1]
            in_window = sum(1 for t in accepted if start <= t <= end)
            achieved = (in_window - 1) / (end - start) if end > start else float("nan")
            rounds.append(
                {
                    "round": number + 1,
                    "requests": len(times),
                    "drain_s": accepted[-1] - accepted[0],
                    "achieved_rps": achieved,
                    "use": achieved / args.rate,
                    "refused_share": refused / len(times) if times else 0.0,
                }
            )
            print(table(rounds[-1:], list(rounds[-1])), flush=True)
    figures = {
        "use": median([r["use"] for r in rounds]),
        "achieved_rps": median([r["achieved_rps"] for r in rounds]),
        "refused_share": median([r["refused_share"] for r in rounds]),
        "rate": args.rate,
        "target_use": TARGET_USE,
        "target_refused_share": TARGET_REFUSED,
    }
    print()
    print(table(rounds, list(rounds[0])))
    print(
        f"\nmedian over {len(rounds)} rounds: {figures['achieved_rps']:.2f} requests/s = {figures['use']:.3f} of "
        f"BRIDGE_SHOP_RATE (target ≥ {TARGET_USE}); 503s {figures['refused_share']:.2%} (target ≤ "
        f"{TARGET_REFUSED:.0%})"
    )
    emit("ratelimit", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
