"""What every benchmark script shares: the peers it starts, the bridge processes, wrk, RSS sampling, reports.

The machine the benchmarks run on is shared and small, so no absolute number means much: each script takes
its figure as a ratio of two measurements made side by side in one run (the bridge against a bare endpoint,
or against the peer's own capacity), repeats it ``--rounds`` times and reports the median.

Every script ends its output with one line ``BENCH-RESULT {json}``: the smoke test (and anyone scripting a
comparison) reads that line instead of scraping the human-readable table above it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the emulators live in tests/peers; make them importable however we are run
    sys.path.insert(0, str(ROOT))

from bridge.mappings import DEFAULTS_DIR  # noqa: E402
from bridge.shop import phpquery  # noqa: E402
from tests.peers import shop as shop_module  # noqa: E402
from tests.peers.onec import SERVICE_PATH, OnecEmulator, create_onec_app  # noqa: E402
from tests.peers.redis_server import RedisServer  # noqa: E402
from tests.peers.server import LiveServer, free_port, run_app  # noqa: E402
from tests.peers.shop import ShopEmulator, catalog, create_shop_app  # noqa: E402
from tests.processes import BridgeProcess, wait_for, wait_http  # noqa: E402

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "shop_events.lua"
RESULT_PREFIX = "BENCH-RESULT "


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side rounds; the report gives their median")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the process logs")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="an extra setting for the bridge processes"
    )
    return parser


def extra_env(pairs: Sequence[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` options as a dict (e.g. ``--env BRIDGE_LOG_LEVEL=WARNING``)."""
    return dict(pair.split("=", 1) for pair in pairs)


def emit(name: str, figures: dict[str, Any], rounds: list[dict[str, Any]] | None = None) -> None:
    """Print the machine-readable result line (see the module docstring)."""
    print(RESULT_PREFIX + json.dumps({"bench": name, **figures, "rounds": rounds or []}, default=float), flush=True)


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (one dict per round) for the human reading the output."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    cells = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temporary directory for Redis and the process logs; kept (and named) when asked or on failure."""
    path = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    failed = False
    try:
        yield path
    except BaseException:
        failed = True
        raise
    finally:
        if keep or failed:
            print(f"logs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


# -- peers -------------------------------------------------------------------------------------------------


@dataclass
class Peers:
    """redis-server (AOF on, ``appendfsync everysec``: the production setting the README asks for), the shop
    emulator and the 1C emulator, all on loopback."""

    redis: RedisServer
    shop: TimedShop
    onec: TimedOnec
    servers: list[LiveServer] = field(default_factory=list)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()


class TimedOnec(OnecEmulator):
    """The tests' 1C emulator, also noting when each call *arrived* (``calls[i]["arrived"]``, unix time):
    the emulator's own ``at`` is taken after its simulated latency, and the benchmarks time the bridge up
    to 1C's receipt of the order, not up to 1C's answer."""

    def __init__(self) -> None:
        super().__init__()
        self._arrivals: dict[int, float] = {}

    def enter(self) -> int:
        arrived = time.time()
        sequence = super().enter()
        self._arrivals[sequence] = arrived
        return sequence

    def answer(self, sequence: int, headers: Any, body: bytes) -> Any:
        response = super().answer(sequence, headers, body)
        with self._mutex:
            self.calls[-1]["arrived"] = self._arrivals.pop(sequence, self.calls[-1]["at"])
        return response


class TimedShop(ShopEmulator):
    """The tests' shop emulator, also noting (arrival time, HTTP status) of every request in ``times``, so
    a benchmark can tell how fast requests came and which ones the rate limit refused.

    With a benchmark's catalog (35,000 stock records) the emulator's list methods, which test every row
    against the filter, took seconds per ``batch`` of lookups and became what the benchmark measured. So
    the two lists the flush uses first narrow the rows through an index on the field the bridge filters by
    (``@productId``, ``@xmlId``) and then run the emulator's own ``list_answer`` on that superset: the same
    filter, order, paging and projection, hence the same answers, only sooner.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[float, int]] = []
        self._indexes: dict[str, tuple[int, dict[str, list[dict[str, Any]]]]] = {}

    def _narrowed(self, name: str, rows: dict[int, dict[str, Any]], field: str, params: dict[str, Any]) -> Any:
        """A superset of the rows the filter can match: those whose ``field`` is among the filter's values
        for it (``=`` or ``@``), or all rows when the filter does not name the field that way."""
        filters = params.get("filter")
        if not isinstance(filters, dict):
            return rows.values()
        for key, value in filters.items():
            operator, named = shop_module.split_key(str(key))
            if named != field or operator not in ("=", "@"):
                continue
            cached = self._indexes.get(name)
            if cached is None or cached[0] != len(rows):  # rows are only ever added here
                index: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
                for row in rows.values():
                    index[str(row.get(field))].append(row)
                cached = self._indexes[name] = (len(rows), index)
            wanted = {str(v) for v in shop_module.as_list(value)} if isinstance(value, list | dict) else {str(value)}
            return [row for v in wanted for row in cached[1].get(v, [])]
        return rows.values()

    def _store_product_list(self, params: dict[str, Any]) -> Any:
        rows = self._narrowed("storeproduct", self.store_products, "productId", params)
        return shop_module.list_answer(rows, params, key="storeProducts", fields=shop_module.STORE_PRODUCT_FIELDS)

    def _product_list(self, params: dict[str, Any]) -> Any:
        raw_filter = params.get("filter")
        if not isinstance(raw_filter, dict) or "@xmlId" not in raw_filter:
            return catalog.product_list(self, params)  # its own checks and answer for every other shape
        catalog.product_list(self, {**params, "filter": {**raw_filter, "@xmlId": []}})  # the same checks, no rows
        rows = self._narrowed("product", self.products, "xmlId", params)
        return shop_module.list_answer(rows, params, key="products", fields=shop_module.PRODUCT_FIELDS, dynamic=True)

    METHODS = ShopEmulator.METHODS.replacing(
        {"catalog.storeproduct.list": _store_product_list, "catalog.product.list": _product_list}
    )

    def handle(self, user_id: str, code: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        arrived = time.time()
        status, body = super().handle(user_id, code, method, params)
        with self.lock:
            self.times.append((arrived, status))
        return status, body


@contextlib.contextmanager
def peers(directory: Path, *, appendonly: bool = True) -> Iterator[Peers]:
    redis = RedisServer(directory / "redis", appendonly=appendonly)
    shop = TimedShop()
    onec = TimedOnec()
    started = Peers(redis, shop, onec)
    try:
        shop_server = run_app(create_shop_app(shop))
        started.servers.append(shop_server)
        shop.url = f"{shop_server.url}/rest/{shop.user_id}/{shop.webhook_code}/"
        onec_server = run_app(create_onec_app(onec))
        started.servers.append(onec_server)
        onec.url = f"{onec_server.url}{SERVICE_PATH}"
        yield started
    finally:
        started.stop()


def bridge_env(p: Peers, port: int, **overrides: str) -> dict[str, str]:
    """The environment of every bridge process in a benchmark; ``overrides`` are BRIDGE_* names."""
    env = {
        "BRIDGE_REDIS_URL": p.redis.url,
        "BRIDGE_SHOP_URL": p.shop.url,
        "BRIDGE_SHOP_APP_TOKENS": p.shop.application_token,
        "BRIDGE_ONEC_URL": p.onec.url,
        "BRIDGE_ONEC_USER": p.onec.user,
        "BRIDGE_ONEC_PASSWORD": p.onec.password,
        "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
        "BRIDGE_POLL_INTERVAL": "0",
        "BRIDGE_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    env.update(overrides)
    return env


@dataclass
class Bridge:
    """The bridge processes of one benchmark, with their RSS watched from start to stop."""

    env: dict[str, str]
    log_dir: Path
    processes: dict[str, BridgeProcess] = field(default_factory=dict)
    rss: RssSampler | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self, command: str, name: str | None = None) -> BridgeProcess:
        name = name or command
        process = BridgeProcess([command], self.env, self.log_dir, name)
        self.processes[name] = process
        if self.rss is not None:
            self.rss.watch(name, process.proc.pid)
        if command == "web":
            wait_http(f"{self.url}/healthz", process)
        if command == "worker":
            self._wait_worker(process)
        return process

    def _wait_worker(self, process: BridgeProcess, timeout: float = 30.0) -> None:
        """Until the worker has registered with RQ (and so listens on its queues)."""
        from redis import Redis
        from rq import Worker

        with Redis.from_url(self.env["BRIDGE_REDIS_URL"]) as redis:

            def registered() -> bool:
                if process.proc.poll() is not None:
                    raise RuntimeError(f"the worker exited early:\n{process.output()}")
                return any(w.pid == process.proc.pid for w in Worker.all(connection=redis))

            wait_for(registered, timeout=timeout, what="the worker to register")

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def output(self) -> str:
        return "\n".join(f"--- {name}\n{p.output()}" for name, p in self.processes.items())


@contextlib.contextmanager
def bridge(env: dict[str, str], log_dir: Path, rss: RssSampler | None = None) -> Iterator[Bridge]:
    running = Bridge(env, log_dir, rss=rss)
    try:
        yield running
    finally:
        running.stop()


# -- memory ------------------------------------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found.extend(int(c) for c in children.read().split())
        except FileNotFoundError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (not its children): a figure that, unlike
    requests/s, hardly moves when other work on the machine takes the cores away."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Peak resident memory of named processes and of their children (RQ's work-horses), in MB.

    A process's own peak is its ``VmHWM`` (kept by the kernel, so nothing is missed between samples); the
    children live for one job each, so they are sampled every ``interval`` seconds and the largest is kept.
    The figure for "the worker" is the larger of the two, since at any moment either may be the one working.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.peak_kb: dict[str, int] = {}
        self.child_peak_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def _sample(self) -> None:
        for name, pid in list(self.pids.items()):
            own = _status_kb(pid, "VmHWM")
            if own:
                self.peak_kb[name] = max(self.peak_kb.get(name, 0), own)
            for child in _children(pid):
                rss = _status_kb(child, "VmRSS")
                self.child_peak_kb[name] = max(self.child_peak_kb.get(name, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def peak_mb(self, name: str) -> float:
        self._sample()
        return max(self.peak_kb.get(name, 0), self.child_peak_kb.get(name, 0)) / 1024

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        self._thread.join(2)


# -- load generation ---------------------------------------------------------------------------------------


def event_body_parts(shop: ShopEmulator, event: str = "ONSALEORDERSAVED") -> tuple[str, str]:
    """The shop's form body for ``event`` split around the order id, so wrk can put a fresh id in each one."""
    marker = 987654321987
    body = phpquery.build(shop.event_payload(event, marker))
    prefix, _, suffix = body.partition(str(marker))
    return prefix, suffix


def run_wrk(
    url: str, *, duration: float, connections: int, threads: int = 1, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One wrk run with ``bench/wrk/shop_events.lua``; the figures its ``done`` hook prints as JSON."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    result = subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("WRK-JSON "):
            return dict(json.loads(line.removeprefix("WRK-JSON ")))
    raise RuntimeError(f"wrk gave no result:\n{result.stdout}\n{result.stderr}")


def run_python_load(url: str, *, duration: float, connections: int, env: dict[str, str]) -> dict[str, Any]:
    """What ``run_wrk`` measures, from an asyncio client in this process: for machines without wrk (the
    smoke test in CI). Python is a much slower client than wrk, so its figures say that the script works,
    not how fast the bridge is."""
    prefix, suffix = env["BENCH_BODY_PREFIX"], env["BENCH_BODY_SUFFIX"]
    base = int(env.get("BENCH_ID_BASE", "1000000"))

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        errors = {"connect": 0, "status": 0}
        counter = base
        deadline = time.monotonic() + duration
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=connections)) as client:

            async def worker() -> None:
                nonlocal counter
                while time.monotonic() < deadline:
                    counter += 1
                    body = f"{prefix}{counter}{suffix}".encode()
                    started = time.perf_counter()
                    try:
                        answer = await client.post(
                            url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
                        )
                    except httpx.HTTPError:
                        errors["connect"] += 1
                        continue
                    latencies.append((time.perf_counter() - started) * 1000)
                    if answer.status_code >= 400:
                        errors["status"] += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            took = time.monotonic() - started
        ordered = sorted(latencies) or [float("nan")]

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {
            "requests": len(latencies),
            "duration_s": took,
            "rps": len(latencies) / took,
            "p50_ms": pct(0.5),
            "p90_ms": pct(0.9),
            "p99_ms": pct(0.99),
            "max_ms": ordered[-1],
            "errors_connect": errors["connect"],
            "errors_read": 0,
            "errors_write": 0,
            "errors_status": errors["status"],
            "errors_timeout": 0,
        }

    return asyncio.run(run())


def run_load(
    url: str, *, duration: float, connections: int, env: dict[str, str], client: str = "auto"
) -> dict[str, Any]:
    """wrk when installed (or asked for), else the Python client; the same figures either way."""
    if client == "wrk" or (client == "auto" and shutil.which("wrk")):
        return run_wrk(url, duration=duration, connections=connections, env=env)
    return run_python_load(url, duration=duration, connections=connections, env=env)


def poll(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.01) -> Any:
    """Like the tests' ``wait_for`` but with a finer poll, for timing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


__all__ = [
    "ROOT",
    "Bridge",
    "Peers",
    "RssSampler",
    "base_parser",
    "bridge",
    "bridge_env",
    "cpu_seconds",
    "emit",
    "event_body_parts",
    "extra_env",
    "free_port",
    "median",
    "peers",
    "poll",
    "run_load",
    "run_wrk",
    "table",
    "wait_for",
    "workdir",
]
