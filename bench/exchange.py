"""1C's standard exchange (CommerceML): a big catalogue export through ``/1c/exchange``, end to end.

A synthetic export (``tests/exchange_files.synthetic_export``: ``--offers`` offers, half of the goods with
three variants, 5 warehouses, 2 price types) is sent the way 1C's exchange node sends it: ``checkauth``,
``init``, ``import.xml`` and ``offers.xml`` in ``file_limit`` chunks, then ``mode=import`` for each file,
repeated while the bridge answers ``progress``. ``bridge web``, ``bridge worker`` and ``bridge clock`` run
against a real redis-server and the shop emulator.

Figures:

- **import ratio**: seconds from the last chunk sent to the final ``success`` of the last file ÷ a bare
  streaming parse of the same bytes in this process (lxml ``iterparse``, every element cleared after its
  end, nothing done with it). With one worker this includes the flush of the goods file, which the worker
  runs between the two imports; the **jobs ratio** is the import jobs' own time (from the sync log) ÷ the
  same bare parse;
- **peak RSS** of web and worker (the worker's work-horses included) through the whole run;
- **same export again** (after the first one was flushed into the shop): the shop writes it caused (the
  target is none);
- **1 % changed** (the prices of ``--changed`` of the offers raised): the shop requests its flush used ÷
  (⌈writes ÷ 50⌉ + lookups), writes being the changed prices (offers × price types); the lookups a client
  needs are none here, since the first export taught it the shop ids of every product and price record;
- **per item**: the requests an integration that makes one REST call per offer needs for the same export,
  and how long each of the two takes at the shop's documented rate (2 requests/s).

    python -m bench.exchange [--offers 100000] [--changed 0.01]
"""

from __future__ import annotations

import base64
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from lxml import etree
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
    peers,
    poll,
    table,
    workdir,
)
from bridge.ops import synclog
from bridge.queue import SHOP_QUEUE
from tests.exchange_files import SyntheticExport, synthetic_export

TARGET_IMPORT = 3.0
TARGET_REQUESTS = 1.05
TARGET_RSS_MB = 200.0
SHOP_RATE = 2.0  # requests/s: the shop's documented leaky bucket
USER, PASSWORD = "exchange-bench", "exchange-bench-password-0001"
FAST_SHOP = {
    "BRIDGE_SHOP_RATE": "1000",
    "BRIDGE_SHOP_BURST": "1000",
    "BRIDGE_EXCHANGE_USER": USER,
    "BRIDGE_EXCHANGE_PASSWORD": PASSWORD,
}
KINDS = ("sections", "products", "prices", "stock")


class ExchangeClient:
    """The calls of 1C's exchange node, as it makes them (one session: the cookie of ``checkauth``)."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/1c/exchange"
        self.client = httpx.Client(timeout=120)
        self.file_limit = 0

    def call(self, mode: str, *, method: str = "GET", content: bytes | None = None, **params: str) -> list[str]:
        headers = {"User-Agent": "1C+Enterprise/8.3"}
        if mode == "checkauth":
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        answer = self.client.request(
            method, self.url, params={"type": "catalog", "mode": mode, **params}, content=content, headers=headers
        )
        lines = answer.content.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
        if answer.status_code != 200 or (mode != "init" and lines[0] not in ("success", "progress")):
            raise RuntimeError(f"mode={mode}: HTTP {answer.status_code}: {answer.text[:500]}")
        return lines

    def start(self) -> None:
        lines = self.call("checkauth")
        self.client.cookies.set(lines[1], lines[2])
        answer = dict(line.split("=", 1) for line in self.call("init", version="2.08") if "=" in line)
        self.file_limit = int(answer.get("file_limit", "0")) or 1_000_000

    def upload(self, path: Path) -> None:
        with path.open("rb") as source:
            while chunk := source.read(self.file_limit):
                self.call("file", method="POST", content=chunk, filename=path.name)

    def import_file(self, name: str, timeout: float = 3600) -> str:
        """``mode=import`` until ``success``, asked again at once after each ``progress``, as 1C does (the
        bridge's reply waits for the job up to ``BRIDGE_EXCHANGE_IMPORT_WAIT``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.call("import", filename=name)
            if lines[0] == "success":
                return "\n".join(lines[1:]).strip()
        raise TimeoutError(f"{name}: no success within {timeout:.0f} s")

    def close(self) -> None:
        self.client.close()


def bare_parse(paths: list[Path]) -> float:
    """The yardstick: a streaming parse of the same bytes that does nothing with what it reads."""
    started = time.perf_counter()
    for path in paths:
        for _event, element in etree.iterparse(str(path), events=("end",)):
            element.clear()
    return time.perf_counter() - started


def exchange(b: Any, export: SyntheticExport, redis: Redis) -> dict[str, Any]:
    """One exchange of both files; the wall time 1C waits, and the import jobs' own time (from the sync log)."""
    client = ExchangeClient(b.url)
    try:
        client.start()
        for path in (export.import_path, export.offers_path):
            client.upload(path)
        since = time.time()
        started = time.perf_counter()
        summaries = [client.import_file(path.name) for path in (export.import_path, export.offers_path)]
        took = time.perf_counter() - started
    finally:
        client.close()
    jobs = [
        e.duration or 0.0
        for e in synclog.read(redis, entity="exchange", limit=50)
        if e.operation == "exchange import" and (e.at or 0) >= since
    ]
    return {"import_s": took, "jobs_s": sum(jobs), "summary": summaries[-1][:200]}


def flushed(redis: Redis) -> bool:
    if redis.llen(f"rq:queue:{SHOP_QUEUE}"):
        return False
    return not any(redis.exists(f"bridge:pending:{k}") or redis.exists(f"bridge:flush:pending:{k}") for k in KINDS)


def request_kinds(requests: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Shop requests that wrote (a batch with an add or update, or a single add/update) and the rest."""
    counts = {"write": 0, "lookup": 0}
    for method, params in requests:
        commands = params.get("cmd") or {}
        values = commands.values() if isinstance(commands, dict) else commands
        writes = (method == "batch" and any(".add" in str(c) or ".update" in str(c) for c in values)) or (
            method != "batch" and (".add" in method or ".update" in method)
        )
        counts["write" if writes else "lookup"] += 1
    return counts


def request_methods(requests: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """How many requests of each method (a batch by the methods of its commands), to tell writes from lookups."""
    counts: dict[str, int] = {}
    for method, params in requests:
        if method == "batch":
            commands = params.get("cmd") or {}
            values = commands.values() if isinstance(commands, dict) else commands
            method = "batch(" + ",".join(sorted({str(c).split("?")[0] for c in values})) + ")"
        counts[method] = counts.get(method, 0) + 1
    return counts


def written_commands(requests: list[tuple[str, dict[str, Any]]]) -> int:
    total = 0
    for method, params in requests:
        if method == "batch":
            commands = params.get("cmd") or {}
            values = commands.values() if isinstance(commands, dict) else commands
            total += sum(1 for c in values if ".add" in str(c) or ".update" in str(c))
        elif ".add" in method or ".update" in method:
            total += 1
    return total


def make_shop(p: Peers, export: SyntheticExport) -> None:
    for number, store in enumerate(export.warehouses, start=1):
        p.shop.add_store(store_id=number, title=store.name, xml_id=store.id)
    for number, price_type in enumerate(export.price_types, start=1):
        p.shop.add_price_type(price_type_id=number, name=price_type.name, xml_id=price_type.id)


def missing_after_first(p: Peers, export: SyntheticExport) -> int:
    """Products, variants, prices and stock records of the export that the shop lacks once the flushes ended."""
    expected = (
        export.products + export.variants,
        export.offers * len(export.price_types),
        export.offers * len(export.warehouses),
    )
    with p.shop.lock:
        landed = (len(p.shop.products), len(p.shop.prices), len(p.shop.store_products))
    return sum(max(0, want - got) for want, got in zip(expected, landed, strict=True))


def settle(p: Peers, redis: Redis, timeout: float) -> float:
    started = time.monotonic()
    poll(lambda: flushed(redis), timeout=timeout, what="the flushes to finish", interval=0.5)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rounds=1)
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--flush-timeout", type=float, default=3600)
    parser.add_argument("--workers", type=int, default=1, help="bridge worker processes")
    args = parser.parse_args(argv)

    rounds: list[dict[str, Any]] = []
    rss = RssSampler()
    with workdir(args.keep) as work, peers(work) as p, tempfile.TemporaryDirectory() as files:
        redis = Redis.from_url(p.redis.url)
        first = synthetic_export(args.offers, directory=Path(files) / "full")
        changed = synthetic_export(args.offers, directory=Path(files) / "changed", changed_share=args.changed)
        make_shop(p, first)
        size_mb = (first.import_path.stat().st_size + first.offers_path.stat().st_size) / 1e6
        for number in range(args.rounds):
            redis.flushall()
            log_dir = Path(work) / f"round-{number + 1}"
            log_dir.mkdir()
            row: dict[str, Any] = {"round": number + 1, "offers": first.offers, "files_mb": size_mb}
            env = bridge_env(p, free_port(), **FAST_SHOP, **extra_env(args.env))
            with bridge(env, log_dir, rss) as b:
                b.start("web")
                for index in range(args.workers):
                    b.start("worker", f"worker-{index + 1}" if index else "worker")
                b.start("clock")
                bare_s = bare_parse([first.import_path, first.offers_path])
                done = exchange(b, first, redis)
                row.update(import_s=done["import_s"], bare_s=bare_s, import_ratio=done["import_s"] / bare_s)
                row.update(jobs_s=done["jobs_s"], jobs_ratio=done["jobs_s"] / bare_s)
                row["first_flush_s"] = settle(p, redis, args.flush_timeout)
                row["first_requests"] = len(p.shop.requests)
                row["first_missing"] = missing_after_first(p, first)

                p.shop.clear_records()
                again = exchange(b, first, redis)
                settle(p, redis, args.flush_timeout)
                kinds = request_kinds(p.shop.requests)
                row.update(again_import_s=again["import_s"], again_writes=kinds["write"])
                row["again_requests"] = len(p.shop.requests)

                p.shop.clear_records()
                exchange(b, changed, redis)
                settle(p, redis, args.flush_timeout)
                writes = changed.changed * len(changed.price_types)
                bound = math.ceil(writes / 50)  # no lookup is needed: the first export taught the shop ids
                used = len(p.shop.requests)
                print("1 % changed, shop requests:", request_methods(p.shop.requests), flush=True)
                row.update(
                    changed_offers=changed.changed,
                    changed_writes=written_commands(p.shop.requests),
                    changed_requests=used,
                    changed_bound=bound,
                    request_ratio=used / bound if bound else float("nan"),
                )
            per_item = first.offers
            row.update(
                per_item_requests=per_item,
                per_item_hours=per_item / SHOP_RATE / 3600,
                bridge_changed_minutes=row["changed_requests"] / SHOP_RATE / 60,
            )
            rounds.append(row)
            print(table(rounds[-1:], list(rounds[-1])), flush=True)
    rss.stop()
    last = rounds[-1]
    figures = {
        **{k: v for k, v in last.items() if k != "round"},
        "web_peak_rss_mb": rss.peak_mb("web"),
        "worker_peak_rss_mb": max(rss.peak_mb(f"worker-{i + 1}" if i else "worker") for i in range(args.workers)),
        "target_import_ratio": TARGET_IMPORT,
        "target_request_ratio": TARGET_REQUESTS,
        "target_rss_mb": TARGET_RSS_MB,
    }
    print(
        f"\n{first.offers} offers ({size_mb:.0f} MB): import {last['import_s']:.1f} s = {last['import_ratio']:.2f}× the "
        f"bare parse (target ≤ {TARGET_IMPORT:g}); missing in the shop after the first flush: {last['first_missing']} "
        f"(target 0); the same export again: {last['again_writes']} write requests "
        f"(target 0); {args.changed:.0%} changed: {last['changed_requests']} requests = {last['request_ratio']:.3f}× "
        f"the least possible (target ≤ {TARGET_REQUESTS}); per item: {last['per_item_requests']} requests, "
        f"{last['per_item_hours']:.1f} h at {SHOP_RATE:g}/s; peak RSS web {figures['web_peak_rss_mb']:.0f} MB, "
        f"worker {figures['worker_peak_rss_mb']:.0f} MB (target ≤ {TARGET_RSS_MB:g})"
    )
    emit("exchange", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
