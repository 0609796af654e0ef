"""Webhook intake: ``POST /shop/events`` requests/s of the bridge ÷ those of a bare Starlette endpoint.

Both servers run side by side for the whole benchmark, as separate processes with the same uvicorn options
(``bench/bare_app.py``); wrk (1 thread, 32 connections) drives one and then the other for ``--duration``
seconds, the order alternating between rounds so that a slow spell of the shared machine does not always
fall on the same side. Every request carries a distinct order id (``bench/wrk/shop_events.lua``), so every
one of them creates its own RQ job: the expensive path, not the collapsing one.

The bridge answers 200 only after its Lua script has written the marker and the job, so after each bridge
round the script checks that the queue holds at least one job per answered request. Redis runs with AOF on
(``appendfsync everysec``), as the README asks of production. No worker runs: the jobs pile up.

    python -m bench.intake [--rounds 5] [--duration 8] [--connections 32]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from redis import Redis

from bench.common import (
    ROOT,
    RssSampler,
    base_parser,
    bridge,
    bridge_env,
    cpu_seconds,
    emit,
    event_body_parts,
    extra_env,
    free_port,
    median,
    peers,
    run_load,
    table,
    wait_for,
    workdir,
)
from bridge.queue import ORDERS_QUEUE

TARGET_RATIO = 0.35
TARGET_P99_MS = 20.0


def start_bare(port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / "bare.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_app", "--port", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    import httpx

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the bare endpoint exited; see {log_dir / 'bare.log'}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, what="the bare endpoint")
    return process


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per side and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk per side before the rounds")
    parser.add_argument(
        "--client", choices=("auto", "wrk", "python"), default="auto", help="load generator (auto: wrk if installed)"
    )
    args = parser.parse_args(argv)

    if args.client == "python" or (args.client == "auto" and shutil.which("wrk") is None):
        print("load from the Python client (wrk is not installed): the figures only show that the script works")
    rounds: list[dict[str, Any]] = []
    with workdir(args.keep) as work, peers(work) as p:
        prefix, suffix = event_body_parts(p.shop)
        wrk_env = {"BENCH_BODY_PREFIX": prefix, "BENCH_BODY_SUFFIX": suffix}
        redis = Redis.from_url(p.redis.url)
        rss = RssSampler()
        bare_port = free_port()
        bare = start_bare(bare_port, work)
        rss.watch("bare", bare.pid)
        try:
            with bridge(bridge_env(p, free_port(), **extra_env(args.env)), work, rss) as b:
                b.start("web")
                targets = {"bare": f"http://127.0.0.1:{bare_port}/shop/events", "bridge": f"{b.url}/shop/events"}
                pids = {"bare": bare.pid, "bridge": b.processes["web"].proc.pid}
                assert p.redis.process is not None
                redis_pid = p.redis.process.pid
                for url in targets.values():  # warm both: imports, connection pools, Lua script cache
                    run_load(url, duration=args.warmup, connections=args.connections, env=wrk_env, client=args.client)
                for number in range(args.rounds):
                    order = ["bare", "bridge"] if number % 2 == 0 else ["bridge", "bare"]
                    runs: dict[str, dict[str, Any]] = {}
                    for name in order:
                        redis.flushall()
                        cpu_before = cpu_seconds(pids[name]), cpu_seconds(redis_pid)
                        runs[name] = run_load(
                            targets[name],
                            duration=args.duration,
                            connections=args.connections,
                            env=wrk_env,
                            client=args.client,
                        )
                        runs[name]["cpu_us"] = (cpu_seconds(pids[name]) - cpu_before[0]) / runs[name]["requests"] * 1e6
                        runs[name]["redis_cpu_us"] = (
                            (cpu_seconds(redis_pid) - cpu_before[1]) / runs[name]["requests"] * 1e6
                        )
                        if name == "bridge":
                            runs[name]["jobs"] = int(redis.llen(f"rq:queue:{ORDERS_QUEUE}"))
                    bare_run, bridge_run = runs["bare"], runs["bridge"]
                    answered = bridge_run["requests"] - bridge_run["errors_status"]
                    if bridge_run["jobs"] < answered or bridge_run["errors_status"]:
                        raise SystemExit(
                            f"round {number + 1}: {answered} answers but {bridge_run['jobs']} jobs in Redis, "
                            f"{bridge_run['errors_status']} non-2xx answers; see {work}"
                        )
                    rounds.append(
                        {
                            "round": number + 1,
                            "bare_rps": bare_run["rps"],
                            "bridge_rps": bridge_run["rps"],
                            "ratio": bridge_run["rps"] / bare_run["rps"],
                            "bare_p99_ms": bare_run["p99_ms"],
                            "bridge_p50_ms": bridge_run["p50_ms"],
                            "bridge_p99_ms": bridge_run["p99_ms"],
                            "bare_cpu_us": bare_run["cpu_us"],
                            "bridge_cpu_us": bridge_run["cpu_us"],
                            "redis_cpu_us": bridge_run["redis_cpu_us"],
                            "jobs": bridge_run["jobs"],
                        }
                    )
                    print(table(rounds[-1:], list(rounds[-1])), flush=True)
        finally:
            bare.terminate()
            bare.wait(10)
            rss.stop()

    figures = {
        "ratio": median([r["ratio"] for r in rounds]),
        "bridge_p99_ms": median([r["bridge_p99_ms"] for r in rounds]),
        "bridge_p50_ms": median([r["bridge_p50_ms"] for r in rounds]),
        "bridge_rps": median([r["bridge_rps"] for r in rounds]),
        "bare_rps": median([r["bare_rps"] for r in rounds]),
        "bare_cpu_us": median([r["bare_cpu_us"] for r in rounds]),
        "bridge_cpu_us": median([r["bridge_cpu_us"] for r in rounds]),
        "redis_cpu_us": median([r["redis_cpu_us"] for r in rounds]),
        "web_peak_rss_mb": rss.peak_mb("web"),
        "target_ratio": TARGET_RATIO,
        "target_p99_ms": TARGET_P99_MS,
    }
    print()
    print(table(rounds, list(rounds[0])))
    print(
        f"\nmedian over {len(rounds)} rounds: ratio {figures['ratio']:.3f} (target ≥ {TARGET_RATIO}), "
        f"bridge p99 {figures['bridge_p99_ms']:.1f} ms (target ≤ {TARGET_P99_MS:g}), "
        f"web peak RSS {figures['web_peak_rss_mb']:.0f} MB"
    )
    emit("intake", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
