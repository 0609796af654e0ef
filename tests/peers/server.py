"""Serve an ASGI app with uvicorn in a background thread, on a free loopback port.

Tests need the emulators reachable over real HTTP (the bridge's clients, timeouts and retries are what is
under test), yet started and stopped per test in well under a second. A pre-bound socket on port 0 avoids
the race of picking a port and binding it later.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

HOST = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (for processes that must be told their port, like redis-server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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
