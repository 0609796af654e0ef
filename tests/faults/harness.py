"""A bridge deployment in miniature for fault tests: real ``bridge web``/``worker``/``clock`` processes on a
real redis-server, talking to the emulated shop and 1C over loopback HTTP.

Faults are injected from the outside only (the emulators' switches, signals to processes, stopping Redis),
so what the tests prove is what an operator would see, not what a mock would allow.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bridge.mappings import DEFAULTS_DIR
from bridge.queue import QUEUES
from tests.peers.onec import OnecEmulator
from tests.peers.server import free_port
from tests.peers.shop import ShopEmulator
from tests.processes import BridgeProcess, wait_for, wait_http

# Deadlines for waits. They are generous on purpose: the machine has 2 cores shared with other test runs,
# and a deadline only bounds how long a broken bridge makes the test hang; nothing asserts on durations.
SETTLE = 90.0


def fault_env(redis_url: str, shop: ShopEmulator, onec: OnecEmulator, port: int) -> dict[str, str]:
    """Everything configured, with retries and maintenance shortened so that a fault heals in seconds."""
    return {
        "BRIDGE_REDIS_URL": redis_url,
        "BRIDGE_SHOP_URL": shop.url,
        "BRIDGE_SHOP_APP_TOKENS": shop.application_token,
        "BRIDGE_ONEC_URL": onec.url,
        "BRIDGE_ONEC_USER": onec.user,
        "BRIDGE_ONEC_PASSWORD": onec.password,
        "BRIDGE_INBOUND_TOKEN": "inbound-token-fault-tests",
        "BRIDGE_MAPPINGS_DIR": str(DEFAULTS_DIR),
        "BRIDGE_RETRY_MIN_DELAY": "0.2",
        "BRIDGE_RETRY_MAX_DELAY": "1",
        "BRIDGE_POLL_INTERVAL": "0",
        "BRIDGE_MAINTENANCE_INTERVAL": "3",
        "BRIDGE_HOST": "127.0.0.1",
        "PORT": str(port),
    }


class Stack:
    """The processes of one test and the clients to watch them; ``close`` stops whatever is still running."""

    def __init__(
        self, redis_url: str, shop: ShopEmulator, onec: OnecEmulator, log_dir: Path, **env: str | None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shop = shop
        self.onec = onec
        self.log_dir = log_dir
        self.env = fault_env(redis_url, shop, onec, self.port)
        for name, value in env.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.redis = Redis.from_url(redis_url, socket_timeout=10)
        self.processes: list[BridgeProcess] = []
        self._names: dict[str, int] = {}

    # -- processes -------------------------------------------------------------------------------------------

    def start(self, command: str, **env: str) -> BridgeProcess:
        count = self._names.get(command, 0) + 1
        self._names[command] = count
        process = BridgeProcess([command], {**self.env, **env}, self.log_dir, f"{command}-{count}")
        self.processes.append(process)
        return process

    def start_web(self) -> BridgeProcess:
        web = self.start("web")
        wait_http(f"{self.url}/healthz", web)
        return web

    def close(self) -> None:
        """Stop every process politely (SIGTERM, as a platform would), then kill whatever is left of it."""
        for process in self.processes:
            below = descendants(process.proc.pid) if process.proc.poll() is None else []
            process.stop(timeout=15)
            for pid, started in below:  # an RQ work-horse lives in its own process group
                _kill_if_same(pid, started)
        self.redis.close()

    def output(self) -> str:
        return "\n".join(f"===== {p.log_path.name}\n{p.output()}" for p in self.processes)

    def leaked(self) -> list[str]:
        """The configured secrets that appear in any process's output. Faults make the bridge log errors
        about its peers (timeouts, refusals, redirects), which is where a URL with its key slips out."""
        secrets = {
            "shop webhook key": self.env["BRIDGE_SHOP_URL"].rstrip("/").rsplit("/", 1)[-1],
            "1C password": self.env.get("BRIDGE_ONEC_PASSWORD", ""),
            "shop app token": self.env.get("BRIDGE_SHOP_APP_TOKENS", ""),
            "inbound token": self.env.get("BRIDGE_INBOUND_TOKEN", ""),
        }
        output = self.output()
        return [name for name, value in secrets.items() if len(value) >= 6 and value in output]

    # -- driving and watching ----------------------------------------------------------------------------------

    def wait_workers(self, count: int) -> None:
        """Until ``count`` workers are listening: a fault timed from now then meets workers, not their start-up."""
        wait_for(lambda: len(Worker.all(connection=self.redis)) >= count, timeout=60, what=f"{count} workers")

    def fire(self, order_id: int, event: str = "ONSALEORDERSAVED", *, duplicates: int = 1) -> list[int]:
        """Send the shop's webhook; the statuses the bridge answered."""
        answers = self.shop.fire_event(f"{self.url}/shop/events", event, order_id, duplicates=duplicates)
        return [answer.status_code for answer in answers]

    def readyz(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/readyz", timeout=10).json())

    def circuit(self) -> str:
        return str(self.readyz()["onec"]["circuit"])

    def idle(self) -> bool:
        """Nothing waits, runs or is scheduled, and no order has an event still pending."""
        for name in QUEUES:
            queue = Queue(name, connection=self.redis)
            if queue.count or ScheduledJobRegistry(queue=queue).count or StartedJobRegistry(queue=queue).count:
                return False
        return not self.redis.keys("bridge:order:pending:*")

    def dump(self) -> str:
        """What Redis holds of queued work, for a failure message: where did a lost order go?"""
        lines = []
        for pattern in ("rq:queue:*", "rq:wip:*", "rq:scheduled:*", "rq:failed:*", "bridge:order:pending:*"):
            for key in sorted(k.decode() for k in self.redis.scan_iter(pattern)):
                kind = self.redis.type(key).decode()
                if kind == "list":
                    value: Any = [v.decode() for v in self.redis.lrange(key, 0, -1)]
                elif kind == "zset":
                    value = [(m.decode(), s) for m, s in self.redis.zrange(key, 0, -1, withscores=True)]
                else:
                    value = self.redis.get(key) if kind == "string" else kind
                lines.append(f"{key}: {value}")
        for key in sorted(k.decode() for k in self.redis.scan_iter("rq:job:*")):
            fields = self.redis.hmget(key, "status", "retries_left", "started_at", "worker_name")
            lines.append(f"{key}: {[f.decode() if f else None for f in fields]}")
        return "\n".join(lines)

    def failed(self) -> int:
        return sum(FailedJobRegistry(name, connection=self.redis).count for name in QUEUES)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the fields after its closing bracket do not.
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every process below ``pid``, as (pid, start time) so that a pid reused later is never signalled.

    RQ's work-horse calls ``setpgrp``, so killing a worker's process group leaves its horse running: a test
    that means "the machine lost this worker" has to find the horse by its parent.
    """
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found.extend(below)
        todo.extend(child for child, _ in below)
    return found


def _kill_if_same(pid: int, started: int) -> None:
    stat = _stat(pid)
    if stat is not None and stat[1] == started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_hard(process: BridgeProcess) -> None:
    """SIGKILL a bridge process, its process group and every descendant at once: as if its host died."""
    below = descendants(process.proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.proc.pid, signal.SIGKILL)
    for pid, started in below:
        _kill_if_same(pid, started)
    process.proc.wait(10)


def wait_delivered(
    onec: OnecEmulator, numbers: Iterable[str], *, timeout: float = SETTLE, stack: Stack | None = None
) -> None:
    """Wait until 1C has every one of ``numbers``; the failure names the missing ones and what Redis holds."""
    wanted = set(numbers)
    try:
        wait_for(lambda: wanted <= set(onec.documents), timeout=timeout, what="orders to reach 1C")
    except AssertionError:
        missing = sorted(wanted - set(onec.documents))
        state = stack.dump() if stack is not None else ""
        raise AssertionError(f"orders {missing} did not reach 1C within {timeout:.0f} s\n{state}") from None


def created_once(onec: OnecEmulator, numbers: Iterable[str]) -> dict[str, int]:
    """The numbers 1C did not create exactly once (empty when every order was created once)."""
    return {number: onec.creations[number] for number in numbers if onec.creations[number] != 1}


def sample_while(predicate: Callable[[], Any], sample: Callable[[], Any], *, timeout: float, what: str) -> list[Any]:
    """Wait for ``predicate`` like ``wait_for``, recording ``sample()`` on every poll (to prove a state held)."""
    seen: list[Any] = []

    def check() -> Any:
        seen.append(sample())
        return predicate()

    wait_for(check, timeout=timeout, what=what)
    return seen
