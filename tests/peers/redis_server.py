"""A real ``redis-server`` process on a free loopback port.

The bridge's guarantees (Lua scripts in ``enqueue_once``, RQ's registries, AOF surviving a restart) are
only meaningful against the real server, so tests run one rather than fakeredis. ``restart`` keeps the port
and the directory, which is what the AOF durability tests need: the same URL, the same files.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from tests.peers.server import HOST, free_port


class RedisServer:
    """``redis-server`` started on construction; ``stop``/``kill``/``restart`` control the process."""

    def __init__(self, directory: Path, *, appendonly: bool = False, startup_timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def _args(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]

    def start(self) -> None:
        """Start the process (if not running) and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        log = open(self.directory / "redis-server.log", "ab")  # noqa: SIM115 - owned by the child process
        try:
            self.process = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.directory}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client for this server (the caller closes it)."""
        return redis.Redis.from_url(self.url, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (redis flushes the AOF and exits cleanly) and wait for the process to end."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed beyond what ``appendfsync`` already wrote."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        """Stop, then start again on the same port and directory (so the AOF is reloaded)."""
        self.stop()
        self.start()

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
