"""``bridge health``: is the bridge process of this container (or host) doing its job? Exit 0 or 1, one line.

One image runs every process type, so the image's one HEALTHCHECK must ask each process what fits it:

- ``web`` (and ``serve``, which carries the web server): ``GET /healthz`` on its port answers 200;
- ``worker``: an RQ worker of this host (and, when found, of one of its pids) is registered in Redis and beat
  its heartbeat recently: RQ forgets a worker ``worker_ttl + 60`` s after its last beat, and the bridge's
  ``worker_ttl`` is ``job_heartbeat + 15`` (see ``bridge.worker.build_worker``);
- ``clock``: a clock of this host wrote its heartbeat (``bridge.clock.beat``) within ``LEADER_TTL``; a
  standby clock is as healthy as the leader.

Which process it is comes from the command line (``bridge health worker``) or, without one, from the
processes the health check can see (``/proc/<pid>/cmdline``): in a container that is the container's own
``bridge <command>``, also when an init process such as tini runs it as a child.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from bridge import keys
from bridge.settings import Settings

KINDS = ("web", "worker", "clock", "serve")
TIMEOUT = 3.0  # within the HEALTHCHECK --timeout of the Dockerfile (5 s), with time to start Python


@dataclass(frozen=True)
class Found:
    """The bridge processes of one kind seen on this host; ``port`` from ``--port``, when it was given."""

    kind: str
    pids: frozenset[int] = field(default_factory=frozenset)
    port: int | None = None


def find_process(proc: Path = Path("/proc"), *, own_pid: int | None = None) -> Found | None:
    """The bridge process this health check is about: the kind of the lowest pid running ``bridge <kind>``."""
    own_pid = os.getpid() if own_pid is None else own_pid
    seen: list[tuple[int, str, int | None]] = []
    for entry in proc.glob("[0-9]*"):
        try:
            pid = int(entry.name)
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (ValueError, OSError):
            continue
        if pid == own_pid:
            continue
        parsed = parse_command([part.decode(errors="replace") for part in argv if part])
        if parsed is not None:
            seen.append((pid, *parsed))
    if not seen:
        return None
    seen.sort()
    kind = seen[0][1]
    pids = frozenset(pid for pid, k, _ in seen if k == kind)  # RQ's work-horses are forks with the same argv
    return Found(kind, pids, seen[0][2])


def parse_command(argv: list[str]) -> tuple[str, int | None] | None:
    """``(kind, port)`` for ``bridge web``, ``python -m bridge worker``, ``/usr/local/bin/bridge clock``…"""
    for index, part in enumerate(argv):
        is_script = Path(part).name == "bridge"
        is_module = part == "bridge" and index > 0 and argv[index - 1] == "-m"
        if (is_script or is_module) and index + 1 < len(argv) and argv[index + 1] in KINDS:
            rest = argv[index + 2 :]
            return argv[index + 1], _port_option(rest)
    return None


def _port_option(args: list[str]) -> int | None:
    for index, arg in enumerate(args):
        if arg == "--port" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--port="):
            value = arg.removeprefix("--port=")
        else:
            continue
        return int(value) if value.isdigit() else None
    return None


def check_web(settings: Settings, port: int | None = None) -> tuple[bool, str]:
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port or settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        return False, f"web: /healthz on port {port or settings.port} does not answer ({type(error).__name__})"
    if status != 200:
        return False, f"web: /healthz on port {port or settings.port} answered {status}"
    return True, f"web: /healthz on port {port or settings.port} answered 200"


def worker_silence(settings: Settings) -> float:
    """Seconds after its last heartbeat at which RQ itself gives a worker up (see the module's docstring)."""
    return settings.job_heartbeat + 15 + 60


def check_worker(
    settings: Settings, connection: Redis, pids: Iterable[int] = (), hostname: str | None = None
) -> tuple[bool, str]:
    from rq import Worker

    hostname = hostname or socket.gethostname()
    wanted = frozenset(pids)
    try:
        workers = Worker.all(connection=connection)
    except (RedisError, OSError) as error:
        return False, f"worker: Redis does not answer ({type(error).__name__})"
    mine = [w for w in workers if w.hostname == hostname and (not wanted or w.pid in wanted)]
    if not mine:
        return False, f"worker: no RQ worker of host {hostname} is registered"
    now = datetime.now(UTC)
    ages = [(now - w.last_heartbeat).total_seconds() for w in mine if w.last_heartbeat is not None]
    freshest = min(ages, default=float("inf"))
    if freshest > worker_silence(settings):
        return False, f"worker: last heartbeat {freshest:.0f} s ago (more than {worker_silence(settings):.0f} s)"
    return True, f"worker: {len(mine)} registered on {hostname}, last heartbeat {freshest:.1f} s ago"


def check_clock(connection: Redis, pids: Iterable[int] = (), hostname: str | None = None) -> tuple[bool, str]:
    from bridge.clock import LEADER_TTL

    hostname = hostname or socket.gethostname()
    wanted = frozenset(pids)
    try:
        names = [
            key.decode().removeprefix(keys.CLOCK_HEARTBEAT.format(clock=""))
            for key in connection.scan_iter(match=keys.CLOCK_HEARTBEAT.format(clock=f"{hostname}:*"), count=100)
        ]
        beats = []
        for name in names:
            pid = name.rpartition(":")[2]
            if wanted and not (pid.isdigit() and int(pid) in wanted):
                continue
            raw = connection.get(keys.CLOCK_HEARTBEAT.format(clock=name))
            if raw is not None:
                beats.append(json.loads(raw))
    except (RedisError, OSError) as error:
        return False, f"clock: Redis does not answer ({type(error).__name__})"
    except ValueError:
        return False, "clock: its heartbeat in Redis is not readable"
    if not beats:
        return False, f"clock: no heartbeat from a clock of host {hostname}"
    latest = max(beats, key=lambda beat: float(beat.get("at", 0)))
    age = max(0.0, time.time() - float(latest.get("at", 0)))
    if age > LEADER_TTL:
        return False, f"clock: last heartbeat {age:.0f} s ago (more than {LEADER_TTL:.0f} s)"
    role = "leading" if latest.get("leading") else "standby"
    return True, f"clock: {role}, last heartbeat {age:.1f} s ago"
