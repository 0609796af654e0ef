"""``bridge clock``: periodic work. Exactly one should run; a second one waits as a hot standby.

Leadership is a Redis lock renewed every tick, so if the leader dies another clock takes over within the
lock's lifetime, and two clocks started by mistake never both poll or both alert (``bridge.ops.alerts`` is
evaluated every tick by the leader only). Every clock, leading or not, also writes a heartbeat each tick
(``keys.CLOCK_HEARTBEAT``, named by host and pid), which is what ``bridge health`` reads in a clock container.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from bridge import keys, runtime
from bridge.errors import BridgeError
from bridge.exchange.sale.channels import release_held
from bridge.ops import notify
from bridge.ops.alerts import Alerts
from bridge.orders.polling import poll_orders
from bridge.queue.orphans import OrphanSweep
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.updates.flush import sweep as sweep_updates

log = logging.getLogger("bridge.clock")
LEADER_TTL = 30.0
TICK = 1.0
SWEEP_INTERVAL = 5.0  # 1C updates left pending without a flush (a crash between write and queue) wait no longer
HEARTBEAT_TTL = 2 * LEADER_TTL  # a clock whose last beat is older than LEADER_TTL is stuck; gone after this


def clock_name() -> str:
    """This clock among all clocks: host and pid, as ``bridge health`` finds them in its container."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(connection: Redis, name: str, leading: bool) -> None:
    value = json.dumps({"at": time.time(), "leading": leading})
    connection.set(keys.CLOCK_HEARTBEAT.format(clock=name), value, ex=int(HEARTBEAT_TTL))


def run_clock(settings: Settings, connection: Redis, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    rt = Runtime.from_settings(settings, connection)
    runtime.install(rt)
    leader = connection.lock(keys.CLOCK_LEADER, timeout=LEADER_TTL)
    alerts = Alerts(connection, settings, notify.channels(settings))
    for problem in notify.missing_settings(settings):
        log.warning("%s", problem)
    next_poll = 0.0
    next_sweep = 0.0
    next_orphans = 0.0
    orphans = OrphanSweep(rt)  # pending work whose RQ job vanished (see bridge.queue.orphans)
    leading = False
    name = clock_name()
    if settings.poll_interval == 0:
        log.info("order polling is off (BRIDGE_POLL_INTERVAL=0)")
    while not stop.is_set():
        try:
            leading = _keep_leadership(leader, leading)
            beat(connection, name, leading)
            now = time.monotonic()
            if leading and settings.poll_interval > 0 and now >= next_poll:
                next_poll = now + settings.poll_interval
                _guarded("poll", poll_orders, rt)
            if leading and now >= next_sweep:
                next_sweep = now + SWEEP_INTERVAL
                _guarded("sweep", sweep_updates, rt)
                _guarded("held orders", release_held, rt)  # orders kept until BRIDGE_ONEC_URL was set
            if leading and now >= next_orphans:
                next_orphans = now + settings.maintenance_interval
                _guarded("orphans", orphans)
            if leading:  # only the leader alerts, so a notice goes out once
                _guarded("alerts", alerts.tick)
        except (BridgeError, RedisError, OSError) as exc:
            log.warning("clock: %s", exc)
        stop.wait(TICK)
    with contextlib.suppress(RedisError):
        connection.delete(keys.CLOCK_HEARTBEAT.format(clock=name))
    if leading:
        with contextlib.suppress(LockError, RedisError):
            leader.release()


def _guarded(what: str, work: Callable[..., object], *args: object) -> None:
    """Run one periodic task; whatever it raises is logged, and the clock (and the other tasks) go on."""
    try:
        work(*args)
    except (BridgeError, RedisError, OSError) as exc:
        log.warning("clock %s: %s", what, exc)
    except Exception:
        log.exception("clock %s failed unexpectedly", what)


def _keep_leadership(leader: Lock, leading: bool) -> bool:
    """Renew the lock we hold, or try to take it; whether this clock leads for the next tick."""
    if leading:
        try:
            leader.reacquire()
            return True
        except LockError:
            log.warning("clock: lost leadership")
            return False
    if leader.acquire(blocking=False):
        log.info("clock: leading")
        return True
    return False
