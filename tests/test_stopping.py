"""Every long-running process stops on the first SIGINT or SIGTERM, promptly and with exit code 0; it
finishes the job in hand, or hands it back to its queue on a second signal; a port already taken ends
``serve`` and ``web`` at once with one plain line.

"Promptly" is a generous bound (``STOP_DEADLINE``); the seconds measured are printed (``-s``) and quoted in
BENCHMARKS.md.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from bridge.queue import ORDERS_QUEUE
from tests.peers.server import free_port
from tests.processes import BridgeProcess, bridge_env, wait_for, wait_http

pytestmark = pytest.mark.slow
STOP_DEADLINE = 20.0

# command, whether it needs the test's redis-server, the log line that says it is up (None: /healthz answers)
PROCESSES: dict[str, tuple[list[str], bool, str | None]] = {
    "serve": (["serve"], False, None),
    "serve-redis": (["serve"], True, None),
    "web": (["web"], True, None),
    "worker": (["worker"], True, "Listening on"),
    "clock": (["clock"], True, "clock: leading"),
    "demo": (["demo"], False, None),
}


def start(name: str, shop: Any, onec: Any, tmp_path: Path, redis_url: str, **extra: str) -> tuple[BridgeProcess, int]:
    command, needs_redis, _ = PROCESSES[name]
    port = free_port()
    env = bridge_env(shop, onec, port, redis_url if needs_redis else None, XDG_RUNTIME_DIR=str(tmp_path), **extra)
    return BridgeProcess(command, env, tmp_path, name), port


def wait_up(name: str, process: BridgeProcess, port: int) -> None:
    marker = PROCESSES[name][2]
    if marker is None:
        wait_http(f"http://127.0.0.1:{port}/healthz", process)
    else:
        wait_for(lambda: marker in process.output() or process.proc.poll() is not None, what=marker)
        assert process.proc.poll() is None, process.output()


def exit_code_after(process: BridgeProcess, sig: signal.Signals) -> tuple[int, float]:
    """Send ``sig`` as a terminal (SIGINT, to the process group) or a supervisor (SIGTERM, to the pid) does."""
    sent = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(process.proc.pid, sig)
    else:
        os.kill(process.proc.pid, sig)
    try:
        code = process.proc.wait(STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"still running {STOP_DEADLINE:.0f} s after {sig.name}:\n{process.output()}") from None
    return code, time.monotonic() - sent


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_process_stops_promptly_with_code_0(
    name: str, sig: signal.Signals, redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    process, port = start(name, shop, onec, tmp_path, redis_url)
    try:
        wait_up(name, process, port)
        code, seconds = exit_code_after(process, sig)
    finally:
        process.stop()
    print(f"\n{name} {sig.name}: exit {code} after {seconds:.2f} s")
    output = process.output()
    assert code == 0, output
    assert "Traceback" not in output, output


def test_serve_on_the_in_memory_redis_has_no_connection_errors(
    redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    # With a 3 s maintenance interval, three rounds of "cleaning registries" span more than redis-py's 5 s
    # read timeout, which the idle worker's blocking dequeue used to outlast at every start.
    process, port = start("serve", shop, onec, tmp_path, redis_url, BRIDGE_MAINTENANCE_INTERVAL="3")
    try:
        wait_up("serve", process, port)
        wait_for(
            lambda: process.output().count("cleaning registries for queue: bridge-orders") >= 3, what="maintenance"
        )
    finally:
        process.stop()
    output = process.output()
    assert "could not connect to Redis" not in output, output
    assert "Timeout reading" not in output, output


@pytest.mark.parametrize("name", ["serve", "web", "demo"])
def test_a_port_already_taken_ends_the_process_with_one_line(
    name: str, redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        env = bridge_env(shop, onec, port, redis_url if name == "web" else None, XDG_RUNTIME_DIR=str(tmp_path))
        process = BridgeProcess([name], env, tmp_path, name)
        try:
            code = process.proc.wait(STOP_DEADLINE)
        finally:
            process.stop()
    lines = [line for line in process.output().splitlines() if "WARNING" not in line]  # settings left unset
    assert code == 1
    assert lines == [
        f"bridge {name}: port {port} on 127.0.0.1 is already in use; stop what holds it or set PORT to another port"
    ]


def _blocking_job(redis_url: str, name: str) -> Job:
    return Queue(ORDERS_QUEUE, connection=Redis.from_url(redis_url)).enqueue("tests.jobs_for_tests.block", name)


@pytest.mark.parametrize("name", ["worker", "serve-redis"])
def test_the_first_signal_finishes_the_job_in_hand(
    name: str, redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    redis = Redis.from_url(redis_url)
    process, port = start(name, shop, onec, tmp_path, redis_url)
    try:
        wait_up(name, process, port)
        job = _blocking_job(redis_url, "warm")
        wait_for(lambda: redis.lrange("test:started", 0, -1) == [b"warm"], what="the job to start")
        os.kill(process.proc.pid, signal.SIGTERM)
        wait_for(lambda: "warm shut down requested" in process.output(), what="the stop to be noted")
        assert process.proc.poll() is None  # still finishing the job
        redis.set("test:release:warm", 1)
        code = process.proc.wait(STOP_DEADLINE)
    finally:
        process.stop()
    assert code == 0, process.output()
    assert redis.lrange("test:finished", 0, -1) == [b"warm"]
    assert job.get_status(refresh=True) == JobStatus.FINISHED


@pytest.mark.parametrize("name", ["worker", "serve-redis"])
def test_a_second_signal_hands_the_job_back_to_its_queue(
    name: str, redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    redis = Redis.from_url(redis_url)
    process, port = start(name, shop, onec, tmp_path, redis_url)
    try:
        wait_up(name, process, port)
        job = _blocking_job(redis_url, "cold")
        wait_for(lambda: redis.lrange("test:started", 0, -1) == [b"cold"], what="the job to start")
        first = time.monotonic()
        os.kill(process.proc.pid, signal.SIGTERM)
        wait_for(lambda: "warm shut down requested" in process.output(), what="the stop to be noted")
        # RQ ignores a second signal within 1 s of the first (it takes it for the same one, sent twice).
        wait_for(lambda: time.monotonic() - first > 1.2, what="RQ's one-second window")
        os.kill(process.proc.pid, signal.SIGTERM)
        code = process.proc.wait(STOP_DEADLINE)
    finally:
        process.stop()
    output = process.output()
    assert code == 0, output
    assert redis.lrange("test:finished", 0, -1) == []
    assert job.get_status(refresh=True) == JobStatus.QUEUED, output
    queue = Queue(ORDERS_QUEUE, connection=redis)
    assert queue.job_ids == [job.id]
    assert queue.started_job_registry.get_job_ids() == []
    assert queue.failed_job_registry.get_job_ids() == []
    assert "handed back" in output
    # …and it runs to its end on the next worker.
    redis.set("test:release:cold", 1)
    again, _ = start("worker", shop, onec, tmp_path, redis_url)
    try:
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, what="the job to run again")
    finally:
        again.stop()


def test_readyz_says_whether_a_worker_and_a_clock_are_alive(
    redis_url: str, shop: Any, onec: Any, tmp_path: Path
) -> None:
    import httpx

    web, port = start("web", shop, onec, tmp_path, redis_url)
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_up("web", web, port)
        alone = httpx.get(ready)
        assert alone.status_code == 200  # it still accepts work
        body = alone.json()
        assert body["status"] == "degraded"
        assert body["workers"] == {"alive": 0} and body["clock"] == {"alive": 0, "leading": False}
        assert any("no worker is running" in p for p in body["problems"])
        worker, _ = start("worker", shop, onec, tmp_path, redis_url)
        clock, _ = start("clock", shop, onec, tmp_path, redis_url)
        try:
            wait_for(lambda: httpx.get(ready).json()["status"] == "ready", what="/readyz to see worker and clock")
            body = httpx.get(ready).json()
            assert body["workers"] == {"alive": 1} and body["clock"] == {"alive": 1, "leading": True}
            assert body["problems"] == []
            worker.stop()  # a stopped worker says goodbye to RQ: gone at once
            wait_for(lambda: httpx.get(ready).json()["workers"] == {"alive": 0}, what="the worker to be gone")
            clock.stop()  # as does a stopped clock
            wait_for(lambda: httpx.get(ready).json()["clock"]["alive"] == 0, what="the clock to be gone")
        finally:
            worker.stop()
            clock.stop()
    finally:
        web.stop()


def test_a_signal_while_the_worker_starts_stops_it_before_its_first_job(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RQ forks its scheduler before it installs its handlers; a SystemExit raised in that fork would be
    # swallowed, so until then the signal is only noted, and the worker must act on it once RQ is in place.
    from bridge import stopping
    from bridge.settings import Settings
    from bridge.worker import build_worker

    monkeypatch.setattr(stopping, "_asked_while_starting", None)
    before = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    redis = Redis.from_url(redis_url)
    job = _blocking_job(redis_url, "never")
    try:
        stopping.note_signals_while_starting()
        os.kill(os.getpid(), signal.SIGTERM)  # handled here, at once: noted, nothing raised
        assert stopping.asked_while_starting() == signal.SIGTERM
        settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
        build_worker(settings, redis, simple=True).work(burst=True)
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)
    assert redis.lrange("test:started", 0, -1) == []
    assert job.get_status(refresh=True) == JobStatus.QUEUED


def test_a_process_forked_while_signals_are_only_noted_is_ended_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # RQ forks its scheduler while the worker only notes signals, and stops it with SIGTERM before the
    # scheduler has its own handlers: the child must end, or the worker waits for it for ever.
    from bridge import stopping

    monkeypatch.setattr(stopping, "_asked_while_starting", None)
    before = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    read_end, write_end = os.pipe()
    try:
        stopping.note_signals_while_starting()
        pid = os.fork()
        if pid == 0:  # the child: says it is ready, then outlives the signal only if it was merely noted
            os.close(read_end)
            os.write(write_end, b"r")
            time.sleep(5)
            os._exit(7)
        os.close(write_end)
        assert os.read(read_end, 1) == b"r"
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_end)
        for sig, previous in before.items():
            signal.signal(sig, previous)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
    assert stopping.asked_while_starting() is None  # the parent was not asked


def test_a_stop_that_left_a_redis_reply_unread_ends_the_worker_with_a_warning(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # RQ raises its stop from the signal handler, wherever the main thread is; mid-pipeline, the replies stay
    # on the connection and RQ's teardown trips over them. The worker was asked to stop: it stops, exit 0.
    from bridge import stopping
    from bridge.settings import Settings
    from bridge.worker import run_worker

    monkeypatch.setattr(stopping, "_asked_while_starting", signal.SIGTERM)  # asked, before RQ's handlers
    before = {sig: signal.getsignal(sig) for sig in stopping.STOP_SIGNALS}
    redis = Redis.from_url(redis_url)
    real_teardown = SimpleWorker.teardown

    def interrupted_teardown(self: Any) -> None:
        connection = self.connection.connection_pool.get_connection("MULTI")
        connection.send_command("PING")  # a reply nobody reads, as a raise in the middle of a pipeline leaves
        self.connection.connection_pool.release(connection)
        real_teardown(self)

    monkeypatch.setattr(SimpleWorker, "teardown", interrupted_teardown)
    try:
        settings = Settings(_env_file=None, redis_url=redis_url)  # type: ignore[call-arg]
        with caplog.at_level(logging.WARNING, logger="bridge.worker"):
            run_worker(settings, redis, simple=True)
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)
    assert "a Redis reply was lost to the stop signal" in caplog.text
