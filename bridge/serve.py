"""``bridge serve``: web, worker and clock in one process, for a first start and for small shops.

Without ``BRIDGE_REDIS_URL`` it runs on an in-memory Redis (fakeredis behind a loopback TCP port, so every
part talks to it exactly as to a real server). Queued work then does not survive a restart; that is said
loudly at start. With ``BRIDGE_REDIS_URL`` set, the same one process uses the real Redis.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from redis import Redis

from bridge import serve_state
from bridge.clock import run_clock
from bridge.settings import Settings
from bridge.stopping import WebThread, listen
from bridge.web.app import UVICORN_OPTIONS, create_app
from bridge.worker import run_worker, worker_connection

log = logging.getLogger("bridge.serve")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _error_tolerant_handler() -> type:
    """fakeredis' TCP handler closes the connection after any error reply (even the NOSCRIPT that redis-py's
    scripts expect before loading a script); a real Redis keeps it open. Answer the error and carry on."""
    from fakeredis._clients._tcp_server import TCPFakeRequestHandler
    from redis.exceptions import ResponseError

    class Handler(TCPFakeRequestHandler):
        def setup(self) -> None:
            super().setup()
            read = self.current_client.read_response

            def read_response(*args: Any, **kwargs: Any) -> Any:
                try:
                    return read(*args, **kwargs)
                except ResponseError as exc:
                    return exc

            self.current_client.read_response = read_response  # type: ignore[method-assign]

    return Handler


@contextlib.contextmanager
def in_memory_redis() -> Iterator[str]:
    from fakeredis import TcpFakeServer

    port = _free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.RequestHandlerClass = _error_tolerant_handler()
    # A handler thread blocked in a client's BLPOP must not hold up the process's end: closing the server
    # would otherwise join it until the BLPOP times out.
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="fakeredis", daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
        server.server_close()


def serve(settings: Settings, *, command: str = "serve") -> None:
    """Everything in one process until the first SIGINT or SIGTERM; exits 1 at once when the port is taken."""
    sock = listen(settings.host, settings.port, command)
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        if settings.redis_url is None:
            url = stack.enter_context(in_memory_redis())
            log.warning(
                "BRIDGE_REDIS_URL is not set: using an in-memory Redis. Queued work is LOST when this process "
                "stops. Set BRIDGE_REDIS_URL (with AOF persistence on) for anything but a trial."
            )
            stack.enter_context(serve_state.recorded(url, settings))
        else:
            url = settings.redis_url.get_secret_value()
        run_all(settings, url, sock)


def run_all(settings: Settings, url: str, sock: socket.socket, app: Any = None) -> None:
    """Web (on ``sock``), clock and worker on the Redis at ``url``, until the first SIGINT or SIGTERM.

    The worker runs in the main thread, so RQ's own signal handling applies: the first signal finishes the
    job in hand and stops; a second one stops at once and hands the job back to its queue
    (``bridge.worker``). Then the clock and the web server are stopped and joined. ``bridge demo`` calls
    this with its own app.
    """
    app = app if app is not None else create_app(settings, redis_url=url)
    web = WebThread(app, sock, **UVICORN_OPTIONS).start()
    stop_clock = threading.Event()
    clock_connection = Redis.from_url(url)
    clock = threading.Thread(target=run_clock, args=(settings, clock_connection, stop_clock), name="clock", daemon=True)
    clock.start()
    log.info("bridge serving on http://%s:%d", settings.host, settings.port)
    try:
        run_worker(settings, worker_connection(url, settings), simple=True)
    finally:
        stop_clock.set()
        web.stop()
        clock.join(timeout=5)
        log.info("bridge stopped")
