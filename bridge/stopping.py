"""How every long-running ``bridge`` process starts listening and stops: on the first SIGINT or SIGTERM, within
seconds, with exit code 0.

Four traps this module exists for:

- uvicorn, after a graceful stop, restores the handlers it found and raises the signal again, so the default
  handlers end ``bridge web`` with 143 (SIGTERM) or a KeyboardInterrupt traceback (SIGINT). ``quiet_signals``
  installs handlers that only note the signal, so the re-raise is harmless.
- uvicorn logs a port that is taken and keeps the rest of the process alive when it runs in a thread (as in
  ``bridge serve``); ``listen`` binds before anything else starts and ends the process with one plain line.
- A thread that runs the web server must be told to stop and joined; ``WebThread`` does both.
- RQ forks its scheduler before it installs its own handlers. A SystemExit raised by a handler inside that
  fork is swallowed, and a child that inherits a handler which only notes the signal outlives the SIGTERM RQ
  stops it with. ``note_signals_while_starting`` notes the signal in the worker and ends a forked child.

``bridge serve`` and ``bridge demo`` share these pieces (``bridge.serve.run_all`` puts them together).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("bridge.stopping")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def listen(host: str, port: int, command: str) -> socket.socket:
    """A listening socket on ``host``:``port``, or exit 1 with one line saying the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno in (98, 48) else f"cannot be used ({exc.strerror or exc})"
        print(
            f"bridge {command}: port {port} on {host} {reason}; stop what holds it or set PORT to another port",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    sock.set_inheritable(True)
    return sock


class StopRequest:
    """The first SIGINT/SIGTERM asks for a graceful stop (``on_first``); a second one stops at once.

    ``on_now`` is called on the second signal (by default it raises SystemExit, code 0: the operator asked).
    """

    def __init__(self, on_first: Callable[[], None] | None = None, on_now: Callable[[], None] | None = None) -> None:
        self.event = threading.Event()
        self._on_first = on_first
        self._on_now = on_now

    def install(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.event.is_set():
            self.event.set()
            log.info("%s: stopping; send it again to stop at once", signal.Signals(signum).name)
            if self._on_first is not None:
                self._on_first()
            return
        log.warning("%s again: stopping at once", signal.Signals(signum).name)
        if self._on_now is not None:
            self._on_now()
        else:
            raise SystemExit(0)


_asked_while_starting: signal.Signals | None = None


def _note(signum: int) -> signal.Signals:
    global _asked_while_starting
    _asked_while_starting = signal.Signals(signum)
    log.info("%s while starting: stopping", _asked_while_starting.name)
    return _asked_while_starting


def exit_on_signal() -> None:
    """Until a process has its own handling in place (RQ's, uvicorn's), a stop signal ends it with code 0:
    nothing is in hand yet. Every long-running command calls this first."""

    def stop(signum: int, frame: FrameType | None) -> None:
        _note(signum)
        raise SystemExit(0)

    _install(stop)


def note_signals_while_starting() -> None:
    """From here until a library installs its own handlers, a stop signal is only noted (``asked_while_starting``),
    for the process to act on once they are in place.

    For the stretch where raising is unsafe: Python runs a handler wherever the main thread happens to be, and
    an exception raised inside a fork hook (RQ forks its scheduler while starting) is printed as a traceback and
    swallowed, so the process would go on running as if never asked. A process forked before its own handlers
    are in place inherits this one; there a signal is not noted but ends it, as RQ expects when it stops the
    scheduler it has just forked."""

    owner = os.getpid()

    def noted(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a child forked meanwhile (RQ's scheduler) ends as the default action would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        _note(signum)

    _install(noted)


def _install(handler: Callable[[int, FrameType | None], None]) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, handler)


def asked_while_starting() -> signal.Signals | None:
    """The stop signal that came before the process's own handling was in place, if one did."""
    return _asked_while_starting


def quiet_signals(on_signal: Callable[[], None] | None = None) -> None:
    """Handlers that only note the signal (``on_signal``), for uvicorn to find and re-raise into (see the
    module's docstring)."""

    def noted(signum: int, frame: FrameType | None) -> None:
        log.debug("%s noted", signal.Signals(signum).name)
        if on_signal is not None:
            on_signal()

    for sig in STOP_SIGNALS:
        signal.signal(sig, noted)


class WebThread:
    """uvicorn serving ``app`` on an already bound socket, in a thread of its own."""

    def __init__(self, app: Any, sock: socket.socket, **options: Any) -> None:
        self.sock = sock
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> WebThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
