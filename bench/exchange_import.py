"""The CommerceML import job's own work, in one process: reader and staging against the bare parse.

``bench.exchange`` measures the whole exchange (web, worker, queue, polling); this one takes the job apart so
a change to the reader or to the staging can be judged in seconds. The same synthetic export
(``tests/exchange_files.synthetic_export``) is read, in each round and one right after the other:

- **bare**: the yardstick of ``bench.exchange`` (lxml ``iterparse``, every element cleared);
- **read**: ``read_records`` of both files, the records thrown away;
- **first**: ``read_records`` + ``apply_file`` into an empty real redis-server (what a first export, or the
  first one after a change of the fingerprints, does: every entry staged);
- **again**: the same files once more on top of the first (nothing changed: nothing staged).

Each is reported as its seconds and as a ratio to the bare parse of the same round (the faster of one taken
before and one after), also by CPU seconds (this process's and redis-server's, which move less when other
work shares the cores); the summary gives the medians. ``--profile`` runs one more first import under cProfile and prints where its time went. Price
types and warehouses resolve by xmlId against the shop emulator, as in ``bench.exchange``.

    python -m bench.exchange_import [--offers 20000] [--rounds 3] [--profile]
"""

from __future__ import annotations

import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from bench.common import base_parser, emit, median, peers, table, workdir
from bench.exchange import bare_parse, make_shop
from bridge import runtime
from bridge.exchange.catalog_import import apply_file
from bridge.exchange.parse import read_records
from bridge.mappings import DEFAULTS_DIR
from bridge.runtime import Runtime
from bridge.settings import Settings
from tests.exchange_files import SyntheticExport, synthetic_export

TARGET = 3.0  # the end-to-end target of bench.exchange; the job alone has to stay well under it


def bare_only(export: SyntheticExport) -> None:
    bare_parse([export.import_path, export.offers_path])


def read_only(export: SyntheticExport) -> None:
    for path in (export.import_path, export.offers_path):
        for _record in read_records(str(path), name=path.name):
            pass


def imported(rt: Runtime, export: SyntheticExport) -> None:
    for path in (export.import_path, export.offers_path):
        apply_file(rt, read_records(str(path), name=path.name), batch=f"bench-{path.stem}", images=None,
                   progress=lambda _text: None)  # fmt: skip


def timed(work: Callable[[], None], redis: Redis | None = None) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process plus redis-server's (steadier when the cores are shared)."""

    def server() -> float:
        info = redis.info("cpu") if redis is not None else {}
        return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))

    before = server()
    started, cpu = time.perf_counter(), time.process_time()
    work()
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    return wall, used + server() - before


def profile(work: Callable[[], None], lines: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(work)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rounds=3)
    parser.add_argument("--offers", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true", help="profile one more first import (cProfile)")
    parser.add_argument("--profile-lines", type=int, default=40)
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    with workdir(args.keep) as work, peers(work, appendonly=False) as p, tempfile.TemporaryDirectory() as files:
        export = synthetic_export(args.offers, directory=Path(files))
        make_shop(p, export)
        size_mb = (export.import_path.stat().st_size + export.offers_path.stat().st_size) / 1e6
        redis = Redis.from_url(p.redis.url)
        settings = Settings(redis_url=p.redis.url, shop_url=p.shop.url, mappings_dir=DEFAULTS_DIR)
        rt = Runtime.from_settings(settings, redis)
        runtime.install(rt)
        bare_parse([export.import_path, export.offers_path])  # warm the page cache and lxml
        for number in range(args.rounds):
            redis.flushall()
            row: dict[str, Any] = {"round": number + 1}
            phases = {
                "bare": lambda: bare_only(export),
                "read": lambda: read_only(export),
                "first": lambda: imported(rt, export),
                "again": lambda: imported(rt, export),
            }
            for name, phase in phases.items():
                row[f"{name}_s"], row[f"{name}_cpu"] = timed(phase, redis)
            bare_s, bare_cpu = timed(lambda: bare_only(export), redis)
            row["bare_s"], row["bare_cpu"] = min(row["bare_s"], bare_s), min(row["bare_cpu"], bare_cpu)
            for name in ("read", "first", "again"):
                row[f"{name}_ratio"] = row[f"{name}_s"] / row["bare_s"]
                row[f"{name}_cpu_ratio"] = row[f"{name}_cpu"] / row["bare_cpu"]
            rows.append(row)
            print(table(rows[-1:], list(rows[-1])), flush=True)
        if args.profile:
            redis.flushall()
            print(profile(lambda: imported(rt, export), args.profile_lines), flush=True)
        runtime.install(None)
    figures = {"offers": args.offers, "files_mb": size_mb, "target_ratio": TARGET}
    for name in rows[0]:
        if name != "round":
            figures[name] = median([row[name] for row in rows])
    print(
        f"\n{args.offers} offers ({size_mb:.0f} MB), medians of {len(rows)} rounds: bare parse {figures['bare_s']:.2f} s; "
        f"read_records {figures['read_s']:.2f} s = {figures['read_ratio']:.2f}×; first import "
        f"{figures['first_s']:.2f} s = {figures['first_ratio']:.2f}×; the same again {figures['again_s']:.2f} s = "
        f"{figures['again_ratio']:.2f}×; by CPU (this process and redis-server): read {figures['read_cpu_ratio']:.2f}×, "
        f"first {figures['first_cpu_ratio']:.2f}×, again {figures['again_cpu_ratio']:.2f}×"
    )
    emit("exchange_import", figures, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
