"""Serve an ASGI app with uvicorn in a background thread, on a free loopback port.

Tests need the emulators reachable over real HTTP (the bridge's clients, timeouts and retries are what is
under test), yet started and stopped per test in well under a second. A pre-bound socket on port 0 avoids
the race of picking a port and binding it later.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

HOST = "127.0.0.1"


# Ports handed to processes that bind them later come from below the kernel's ephemeral range (32768 and
# up on Linux), where no outgoing connection and no port-0 server (``LiveServer``) can take one meanwhile,
# and each pytest-xdist test process has a share of its own, so two of them never hand out the same port.
_PORTS_FROM, _SHARE, _SHARES = 20000, 3000, 4
_next_port = threading.Lock()
_ports: Iterator[int] | None = None


def _first_port() -> int:
    """Where this test process's share starts (``gw2`` is the third pytest-xdist process)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return _PORTS_FROM + (int(worker) if worker.isdigit() else 0) % _SHARES * _SHARE


def _port_cycle() -> Iterator[int]:
    first = _first_port()
    offset = random.randrange(_SHARE)  # a new run starts elsewhere than the last one, whose ports may linger
    for step in itertools.count():
        yield first + (offset + step) % _SHARE


def free_port() -> int:
    """A port that is free now and that no other caller is handed soon (for processes that must be told
    their port, like redis-server or ``bridge web``): the share is cycled through before a port comes again."""
    global _ports
    with _next_port:
        if _ports is None:
            _ports = _port_cycle()
        for _ in range(_SHARE):
            port = next(_ports)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((HOST, port))
                except OSError:
                    continue  # in use (another service of the machine, or a port still in TIME_WAIT)
                return port
    raise RuntimeError(f"no free port among the {_SHARE} from {_first_port()}")


class LiveServer:
    """One uvicorn server in a daemon thread; usable as a context manager that stops it on exit."""

    def __init__(self, app: ASGIApp, *, port: int = 0, startup_timeout: float = 10.0, lifespan: str = "off") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((HOST, port))
        self.port: int = int(self._socket.getsockname()[1])
        self.url: str = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,  # "on" for the bridge's own app, whose lifespan opens its Redis clients
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"live-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for its thread; idempotent."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_app(app: ASGIApp, *, port: int = 0) -> LiveServer:
    """Start ``app`` on 127.0.0.1 and return the running server (``with run_app(app) as server: ...``)."""
    return LiveServer(app, port=port)
