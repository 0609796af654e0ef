"""``bridge health``: each process type is checked by what it does, against a real Redis and real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from redis import Redis

from bridge import keys
from bridge.clock import LEADER_TTL, clock_name, run_clock
from bridge.health import Found, check_clock, check_web, check_worker, find_process, parse_command
from bridge.settings import Settings
from tests.peers.server import free_port
from tests.processes import ROOT, BridgeProcess, wait_for, wait_http


def health(kind: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_") and k != "PORT"}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bridge", "health", kind],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/usr/local/bin/python", "/usr/local/bin/bridge", "web"], ("web", None)),
        (["bridge", "worker", "--burst"], ("worker", None)),
        (["python", "-m", "bridge", "clock"], ("clock", None)),
        (["bridge", "serve", "--port", "9000"], ("serve", 9000)),
        (["bridge", "web", "--port=8100"], ("web", 8100)),
        (["bridge", "check"], None),
        (["bridge", "health"], None),
        (["/usr/bin/tini", "--", "bridge", "web"], ("web", None)),
        (["python", "bridge.py", "web"], None),
    ],
)
def test_the_process_is_read_from_its_command_line(argv: list[str], expected: tuple[str, int | None] | None) -> None:
    assert parse_command(argv) == expected


def test_the_lowest_bridge_pid_decides_and_its_forks_count(tmp_path: Path) -> None:
    def process(pid: int, *argv: str) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")

    process(1, "/sbin/docker-init", "--", "bridge", "worker")
    process(7, "/usr/local/bin/python", "/usr/local/bin/bridge", "worker")
    process(12, "/usr/local/bin/python", "/usr/local/bin/bridge", "worker")  # an RQ work-horse
    process(30, "/usr/local/bin/python", "/usr/local/bin/bridge", "health")
    (tmp_path / "self").mkdir()
    assert find_process(tmp_path, own_pid=30) == Found("worker", frozenset({1, 7, 12}))
    assert find_process(tmp_path / "self", own_pid=30) is None


def test_a_clock_is_healthy_while_it_beats_leading_or_standby(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    settings = Settings(redis_url=redis_url, poll_interval=0)
    assert check_clock(connection, {os.getpid()}) == (
        False,
        f"clock: no heartbeat from a clock of host {socket.gethostname()}",
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_clock, args=(settings, connection, stop), daemon=True)
    thread.start()
    try:
        healthy, line = wait_for(lambda: check_clock(connection, {os.getpid()})[0] and check_clock(connection))
        assert healthy and line.startswith("clock: leading, last heartbeat "), line
        connection.delete(keys.CLOCK_LEADER)  # another clock took over: this one is a healthy standby
        connection.set(keys.CLOCK_LEADER, "someone-else")
        wait_for(lambda: "standby" in check_clock(connection)[1], what="the clock to notice it stands by")
    finally:
        stop.set()
        thread.join(10)
    assert check_clock(connection)[0] is False  # a stopped clock takes its heartbeat with it


def test_a_stale_clock_heartbeat_is_unhealthy(redis_url: str) -> None:
    connection = Redis.from_url(redis_url)
    stale = json.dumps({"at": time.time() - LEADER_TTL - 5, "leading": True})
    connection.set(keys.CLOCK_HEARTBEAT.format(clock=clock_name()), stale)
    healthy, line = check_clock(connection, {os.getpid()})
    assert not healthy and line.startswith("clock: last heartbeat 35 s ago (more than 30 s)"), line
    assert check_clock(connection, {os.getpid() + 1})[0] is False  # another pid of this host: not this clock


def test_worker_health_follows_a_real_worker(redis_url: str, tmp_path: Path) -> None:
    connection = Redis.from_url(redis_url)
    settings = Settings(redis_url=redis_url)
    host = socket.gethostname()
    assert check_worker(settings, connection) == (False, f"worker: no RQ worker of host {host} is registered")
    env = {"BRIDGE_REDIS_URL": redis_url, "BRIDGE_MAINTENANCE_INTERVAL": "3"}
    assert health("worker", env).returncode == 1
    worker = BridgeProcess(["worker"], env, tmp_path, "worker")
    try:
        wait_for(lambda: check_worker(settings, connection, {worker.proc.pid})[0], what="the worker to register")
        assert check_worker(settings, connection, {worker.proc.pid + 100_000})[0] is False  # not that pid
        result = health("worker", env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"bridge health: worker: 1 registered on {host}, last heartbeat ")
    finally:
        worker.stop()
    result = health("worker", env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"bridge health: worker: no RQ worker of host {host} is registered"


def test_a_silent_worker_is_unhealthy(redis_url: str) -> None:
    from rq import Worker

    connection = Redis.from_url(redis_url)
    settings = Settings(redis_url=redis_url)
    registered = Worker(["orders"], connection=connection)
    registered.register_birth()
    assert check_worker(settings, connection)[0] is True
    old = "2020-01-01T00:00:00.000000Z"
    connection.hset(registered.key, "last_heartbeat", old)
    healthy, line = check_worker(settings, connection)
    assert not healthy and line.startswith("worker: last heartbeat ") and "(more than 85 s)" in line, line


def test_web_health_asks_healthz(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {"BRIDGE_REDIS_URL": redis_url, "BRIDGE_HOST": "127.0.0.1", "PORT": str(port)}
    down = health("web", env)
    assert down.returncode == 1
    assert down.stderr.strip() == f"bridge health: web: /healthz on port {port} does not answer (URLError)"
    web = BridgeProcess(["web"], env, tmp_path, "web")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", web)
        up = health("web", env)
        assert (up.returncode, up.stdout.strip()) == (0, f"bridge health: web: /healthz on port {port} answered 200")
        assert check_web(Settings(), port) == (True, f"web: /healthz on port {port} answered 200")
    finally:
        web.stop()


def test_health_without_a_bridge_process_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli import main

    monkeypatch.setattr("bridge.health.find_process", lambda: None)
    assert main(["health"]) == 1
