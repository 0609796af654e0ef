"""The exchange's order side: one ``type=sale&mode=query`` reply for many waiting orders, and 1C's documents back.

Query: ``--orders`` (5,000) orders wait; one query with ``BRIDGE_EXCHANGE_SALE_PAGE`` = ``--orders`` is
streamed to the end in a child process (``--child``) that reads its own RSS before and its high-water mark
after, so the emulators' memory is not counted. Figures: the reply's time ÷ the time of the same shop
fetches alone (``batch`` of 50 ``sale.order.get``, no XML), the shop requests the reply spent ÷
⌈orders / 50⌉, and the RSS growth (target ≤ 50 MB, streamed: a chunk of 50 orders at a time).

Documents back: a ``documents___*.xml`` of ``--orders`` order documents, each setting a new status, read,
staged and flushed by a worker (in this process) until the shop emulator holds every status. Figures: that
time ÷ requests / rate (the time the shop's rate alone takes for those requests, without the burst it grants
up front; the shop and the bridge both hold to ``--rate`` and ``--burst``), and the requests ÷ the least the method needs (⌈orders / 50⌉ writes
plus the order lookups, two list commands per 50 orders, 50 commands to a batch).

    python -m bench.exchange_sale [--rounds 3] [--orders 5000]
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lxml import etree
from redis import Redis

from bench.common import ROOT, base_parser, emit, median, peers, table, workdir
from bridge import keys, runtime
from bridge.mappings import DEFAULTS_DIR
from bridge.runtime import Runtime
from bridge.settings import Settings

TARGET_RSS_MB = 50.0


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def settings_for(redis_url: str, shop_url: str, **extra: Any) -> Settings:
    return Settings(redis_url=redis_url, shop_url=shop_url, mappings_dir=DEFAULTS_DIR, **extra)


def child(redis_url: str, shop_url: str, orders: int, rate: float, burst: int) -> None:
    """Runs in its own process: the fetch yardstick, then the streamed reply; prints its figures as JSON."""
    from bridge.exchange.sale import offers, query

    rt = Runtime.from_settings(
        settings_for(redis_url, shop_url, exchange_sale_page=orders, shop_rate=rate, shop_burst=burst),
        Redis.from_url(redis_url),
    )
    runtime.install(rt)
    waiting = offers.page(rt.redis, orders)
    started = time.perf_counter()
    for i in range(0, len(waiting), 50):
        query._fetch(rt, waiting[i : i + 50])
    fetch_seconds = time.perf_counter() - started
    rt.redis.delete(keys.SHOP_BUCKET)  # each side starts with the same allowance
    before_kb = _status_kb("VmRSS")
    size = chunks = 0
    started = time.perf_counter()
    for chunk in query.reply(rt, "bench-session", "2.08").chunks:
        size += len(chunk)
        chunks += 1
    query_seconds = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "fetch_s": fetch_seconds,
                "query_s": query_seconds,
                "bytes": size,
                "chunks": chunks,
                "rss_growth_mb": max(peak_kb - before_kb, 0) / 1024,
                "offered": len(rt.redis.hkeys("bridge:exchange:sale:offered:bench-session")),
            }
        )
    )


def documents_body(order_refs: list[str], status: str) -> bytes:
    root = etree.Element("КоммерческаяИнформация", ВерсияСхемы="2.08")
    for ref in order_refs:
        doc = etree.SubElement(root, "Документ")
        etree.SubElement(doc, "Ид").text = f"guid-{ref}"
        etree.SubElement(doc, "Номер").text = ref
        etree.SubElement(doc, "ХозОперация").text = "Заказ товара"
        values = etree.SubElement(doc, "ЗначенияРеквизитов")
        requisite = etree.SubElement(values, "ЗначениеРеквизита")
        etree.SubElement(requisite, "Наименование").text = "Статуса заказа ИД"
        etree.SubElement(requisite, "Значение").text = status
    return bytes(etree.tostring(root, encoding="windows-1251", xml_declaration=True))


def _time_handlers(shop: Any) -> None:
    """Note how long the emulator spends answering each request (``busy``), to tell its time from the bridge's."""
    shop.busy = []
    handle = shop.handle

    def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return handle(*args)
        finally:
            shop.busy.append(time.perf_counter() - started)

    shop.handle = timed


def one_round(directory: Path, orders: int, rate: float, burst: int) -> dict[str, Any]:
    from bridge.exchange.sale import changes, offers
    from bridge.exchange.sale.incoming import read_documents
    from bridge.worker import build_worker

    with peers(directory, appendonly=True) as p:
        p.shop.set_rate_limit(rate, burst)
        _time_handlers(p.shop)
        placed = [p.shop.add_order() for _ in range(orders)]
        redis = Redis.from_url(p.redis.url)
        for order in placed:
            offers.note(redis, str(order["id"]), offers.stamp_of(order))
        before = len(p.shop.requests)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.exchange_sale",
                "--child",
                p.redis.url,
                p.shop.url,
                str(orders),
                str(rate),
                str(burst),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        least = math.ceil(orders / 50)
        query_requests = len(p.shop.requests) - before - least  # the child's yardstick spent ``least`` first

        rt = Runtime.from_settings(settings_for(p.redis.url, p.shop.url, shop_rate=rate, shop_burst=burst), redis)
        runtime.install(rt)
        try:
            redis.delete(keys.SHOP_BUCKET)
            body = documents_body([str(o["accountNumber"]) for o in placed], "P")
            before, busy_before = len(p.shop.requests), len(p.shop.busy)
            started = time.perf_counter()
            changes.apply_documents(rt, read_documents(io.BytesIO(body)), batch="bench")
            build_worker(rt.settings, redis, simple=True).work(burst=True)
            applied_s = time.perf_counter() - started
            shop_busy = sum(p.shop.busy[busy_before:])
            done = sum(1 for o in placed if p.shop.orders[o["id"]]["statusId"] == "P")
            requests = len(p.shop.requests) - before
        finally:
            runtime.install(None)
        lookups = math.ceil(2 * least / 50)
        return {
            "query_s": figures["query_s"],
            "query_vs_fetch": figures["query_s"] / figures["fetch_s"],
            "query_requests_ratio": query_requests / least,
            "rss_growth_mb": figures["rss_growth_mb"],
            "reply_mb": figures["bytes"] / 1e6,
            "chunks": figures["chunks"],
            "offered": figures["offered"],
            "documents_s": applied_s,
            "documents_vs_rate": applied_s / (requests / rate),
            "documents_requests_ratio": requests / (least + lookups),
            "documents_shop_busy_s": shop_busy,
            "documents_less_shop_vs_rate": (applied_s - shop_busy) / (requests / rate),
            "statuses_applied": done,
        }


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("rq").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], int(argv[3]), float(argv[4]), int(argv[5]))
        return 0
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rounds=3)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=10.0, help="the shop's rate, told to the bridge")
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args(argv)
    rounds = []
    with workdir(args.keep) as directory:
        for n in range(args.rounds):
            rounds.append(one_round(directory / f"round{n}", args.orders, args.rate, args.burst))
            print(table(rounds[-1:], list(rounds[-1])), flush=True)
    figures = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    figures["orders"] = args.orders
    figures["rss_target_met"] = figures["rss_growth_mb"] <= TARGET_RSS_MB
    emit("exchange_sale", figures, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
