"""``bridge worker``: an RQ worker on the bridge's queues, with RQ's scheduler for delayed retries.

Any number of workers may run; RQ elects one scheduler among them.

A job whose worker was killed (SIGKILL, OOM, a lost host) is found by another worker and runs again. How RQ 3
does it, and what the bridge tunes (``M`` = ``BRIDGE_MAINTENANCE_INTERVAL``, default 30 s):

- While a job runs, RQ's fork worker renews its entry in ``StartedJobRegistry`` every
  ``job_monitoring_interval`` seconds (RQ: 30) to "now + TTL", TTL = ``get_heartbeat_ttl`` (RQ: that interval
  + 60 s). The bridge heartbeats every ``M // 3`` s with a TTL of ``M`` + one heartbeat, so a dead worker's
  entry expires within about ``M`` s instead of 90.
- Maintenance (``StartedJobRegistry.cleanup``) runs at most every ``M`` s, but RQ only checks between jobs
  and between blocking dequeues, which wait ``worker_ttl - 15`` s (RQ: 405 s, so an idle worker would not
  look for almost 7 minutes). The bridge sets ``worker_ttl`` so that a dequeue waits one heartbeat.
- An expired entry is retried through the job's ``Retry``; ``CRASH_RETRY``'s first interval is 0, so the job
  goes straight back into its queue rather than through the scheduler, whose lock a killed worker may hold
  for another 61 s.
- The per-order lock the dead job held has a lease of about ``M`` s (``Settings.job_lease``), renewed by the
  live job every heartbeat, so the re-run does not find it taken.

``recovery_bound`` adds this up. ``BRIDGE_JOB_TIMEOUT`` plays no part in it for ``bridge worker``; it does
for ``bridge serve``, whose in-process worker cannot heartbeat during a job (there RQ's TTL is the job
timeout + 60 s).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import signal
import threading
import time
from types import FrameType
from typing import Any, cast

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.utils import now as rq_now
from rq.worker import BaseWorker

from bridge import runtime, stopping
from bridge.queue import CRASH_RETRY, EXCHANGE_QUEUE, ORDERS_QUEUE, SHOP_QUEUE, make_queue
from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.tls import client_context

log = logging.getLogger("bridge.worker")


class _IpTolerant:
    """fakeredis' TCP server answers CLIENT INFO with an address redis-py cannot parse; the IP is cosmetic."""

    def _set_ip_address(self, connection: Redis) -> None:
        try:
            super()._set_ip_address(connection)  # type: ignore[misc]
        except ValueError:
            self.ip_address = "unknown"


class _ForgetsDeadExecutions:
    """Works around RQ 3.0.0 keeping a dead execution in a job's ``ExecutionRegistry`` 60 s longer than the
    execution's own hash lives. A job re-run in that window (an abandoned job, retried at once) fails *after*
    it succeeded, when RQ fetches the vanished execution (``ValueError: Execution … not found in Redis``),
    and then runs yet again: through the scheduler, or into the dead-letter list once its retries are used.
    Dropping such entries before the job starts avoids that."""

    connection: Redis

    def execute_job(self, job: Job, queue: Queue) -> None:
        forget_dead_executions(self.connection, job)
        super().execute_job(job, queue)  # type: ignore[misc]

    # The dead execution's hash may also run out while the re-run is in progress (its lease and the
    # registry's entry end at about the moment the job was found abandoned): forget again just before RQ
    # reads the registry to clean up after the job.
    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any, execution: Execution) -> None:
        forget_dead_executions(self.connection, job)
        super().handle_job_success(job, queue, started_job_registry, execution)  # type: ignore[misc]

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        forget_dead_executions(self.connection, job)
        super().handle_job_failure(job, queue, *args, **kwargs)  # type: ignore[misc]


def forget_dead_executions(connection: Redis, job: Job) -> int:
    """Remove entries of ``job``'s execution registry whose execution hash is gone; how many there were."""
    key = job.execution_registry.key
    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in connection.zrange(key, 0, -1)]
    if not ids:
        return 0
    pipe = connection.pipeline(transaction=False)
    for execution_id in ids:
        pipe.exists(Execution(execution_id, job.id, connection).key)
    dead = [execution_id for execution_id, alive in zip(ids, pipe.execute(), strict=True) if not alive]
    if dead:
        connection.zrem(key, *dead)
    return len(dead)


def hand_back(connection: Redis, job: Job, execution: Execution | None) -> None:
    """Put a job whose run was cut short by a stop back at the front of its queue, without spending one of
    its attempts: nothing went wrong with the job, the operator stopped the worker. Its jobs are idempotent
    (the order lock, 1C's idempotency), so a run cut half-way and run again is an update at most."""
    with connection.pipeline() as pipe:
        if execution is not None:
            execution.delete(job=job, pipeline=pipe)
        pipe.execute()
    Queue(job.origin, connection=connection).enqueue_job(job, at_front=True)
    log.warning("job %s handed back to %s: the worker was stopped at once, during the job", job.id, job.origin)


class _StopsIfAskedWhileStarting:
    """RQ installs its signal handlers only after it has forked its scheduler, and a SystemExit raised inside
    that fork would be swallowed (``bridge.stopping.note_signals_while_starting``). So ``run_worker`` only notes
    a signal until then, and the worker stops at the first turn of its loop, before it takes a job, as if the
    signal had come a moment later."""

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[misc]
        signum = stopping.asked_while_starting()
        if signum is not None:
            log.info("%s came while starting: stopping before the first job", signum.name)
            worker = cast(BaseWorker, self)
            worker._stop_requested = True
            worker._shutdown_requested_date = rq_now()


class _HandsBackOnColdStop:
    """A second SIGINT/SIGTERM stops RQ's worker "cold", in the middle of its job. RQ itself leaves that job
    in its started registry until the heartbeat expires and then counts it as a crash; here it goes straight
    back into its queue."""

    connection: Redis

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        job = self.get_current_job()  # type: ignore[attr-defined]
        execution = self.execution  # type: ignore[attr-defined]
        try:
            super().request_force_stop(signum, frame)  # type: ignore[misc]
        except SystemExit:
            if job is not None:
                hand_back(self.connection, job, execution)
            raise


class BridgeWorker(_StopsIfAskedWhileStarting, _HandsBackOnColdStop, _ForgetsDeadExecutions, _IpTolerant, Worker):
    """Forks a work-horse per job: a job that hangs or crashes cannot take the worker with it."""

    abandon_after: int = 60  # set by build_worker: the heartbeat TTL, see the module's docstring

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ adds a fixed 60 s to its monitoring interval; a shorter TTL finds a dead worker's job sooner.
        # A live job outrunning its TTL (a stalled heartbeat) is harmless: the order lock and 1C's
        # idempotency make the second run an update at most.
        return self.abandon_after


class BridgeSimpleWorker(_StopsIfAskedWhileStarting, _ForgetsDeadExecutions, _IpTolerant, SimpleWorker):
    """Runs jobs in-process; used by ``bridge serve`` and tests, where forking buys nothing.

    Here a cold stop raises SystemExit inside the job itself, which RQ would record as the job's failure;
    it is handed back instead, and the worker then stops as asked.
    """

    _cold_stop = False

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        self._cold_stop = True
        super().request_force_stop(signum, frame)

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution, exc_info: Any) -> None:
        if self._cold_stop and exc_info[0] is SystemExit:
            hand_back(self.connection, job, execution)
            self.executions.pop(execution.id, None)
            return
        super()._finalize_failure(job, queue, execution, exc_info)


# Modules a job imports besides its own (the pipelines' packages, all imported by ``preload``). httpx imports its
# transport (httpcore, h11) only when the first client is made, so it is named here too.
JOB_PACKAGES = ("bridge.orders", "bridge.updates", "bridge.queue")
JOB_MODULES = ("bridge.shop.client", "bridge.onec.client", "bridge.onec.circuit", "bridge.ops.telemetry", "httpcore")


def preload() -> None:
    """Import every job's modules and build the shared TLS context, before the worker forks.

    Each job runs in a fresh fork of the worker, so whatever the worker has not loaded, every job loads
    again: the shop and 1C clients' imports (httpx among them) and two TLS contexts were most of a job's
    time, some 200 ms of a 400 ms order latency (BENCHMARKS.md). Only code and configuration are loaded
    here, never a client or a connection, so no horse inherits a socket (see ``bridge.runtime``).
    """
    for package in JOB_PACKAGES:
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            importlib.import_module(module.name)
    for name in JOB_MODULES:
        importlib.import_module(name)
    client_context()


# The order a worker takes its queues in (RQ dequeues from the first that holds a job): an order's job is
# short and a customer waits on it; an exchange import is what 1C waits on, answered ``progress`` until it ends;
# a flush waits on nobody and works in slices (``bridge.updates.flush``), so an import never waits behind it
# for more than one slice.
WORKER_QUEUES = (ORDERS_QUEUE, EXCHANGE_QUEUE, SHOP_QUEUE)


def build_worker(settings: Settings, connection: Redis, *, simple: bool = False) -> BaseWorker:
    rt = Runtime.from_settings(settings, connection)
    rt.mappings  # noqa: B018 - load and validate once, before forking, so a bad file fails at start
    runtime.install(rt)
    preload()
    queues = [make_queue(name, connection, default_timeout=settings.job_timeout) for name in WORKER_QUEUES]
    if simple:
        # RQ's default worker_ttl would make an idle dequeue wait 405 s, and a stop wait for it.
        return BridgeSimpleWorker(
            queues,
            connection=connection,
            maintenance_interval=settings.maintenance_interval,
            worker_ttl=settings.job_heartbeat + 15,
        )
    worker = BridgeWorker(
        queues,
        connection=connection,
        maintenance_interval=settings.maintenance_interval,
        job_monitoring_interval=settings.job_heartbeat,
        worker_ttl=settings.job_heartbeat + 15,  # RQ's blocking dequeue waits worker_ttl - 15 s
    )
    worker.abandon_after = settings.job_lease + settings.job_heartbeat
    return worker


def worker_connection(url: str, settings: Settings) -> Redis:
    """The worker's own Redis client, whose reads outlast its blocking dequeue (one heartbeat).

    redis-py's default read timeout is 5 s; RQ raises it on the client's pool, but not on connections the
    pool already holds, so a client shared with the clock (``bridge serve``) timed out in BLPOP and RQ
    logged "could not connect to Redis instance: Timeout reading from socket" at every start.
    """
    return Redis.from_url(url, socket_timeout=settings.job_heartbeat + 15)


def recovery_bound(settings: Settings) -> float:
    """Seconds after a worker's death by which its job is back in a queue, with the default CRASH_RETRY.

    Its heartbeat entry expires (lease + one heartbeat after the last one), the next maintenance runs (after
    ``M`` s plus up to one dequeue wait), and the job is re-queued at once; another idle worker takes it at
    once too. Add the job's own run time (shop and 1C calls) for the order to be in 1C.
    """
    expiry = settings.job_lease + settings.job_heartbeat
    maintenance = settings.maintenance_interval + settings.job_heartbeat
    return float(expiry + maintenance + CRASH_RETRY.intervals[0])


def run_worker(settings: Settings, connection: Redis, *, simple: bool = False, burst: bool = False) -> None:
    """Work the queues until asked to stop (SIGTERM, SIGINT), through Redis outages.

    RQ's loop tolerates a lost Redis only while it waits for a job. Losing it anywhere else (marking itself
    idle after a job, cleaning registries) makes RQ log "found an unhandled exception, quitting" and
    *return*, so the process would end with status 0 in the middle of a Redis restart, and a platform that
    restarts only failed processes would leave the queues without a worker. Instead, a worker that stopped
    without being asked waits for Redis and starts afresh; its abandoned job, if any, is found as usual.
    """
    while True:
        worker = build_worker(settings, connection, simple=simple)
        log.info("worker %s listening on %s", worker.name, ", ".join(WORKER_QUEUES))
        stopping.note_signals_while_starting()
        try:
            worker.work(with_scheduler=True, burst=burst, logging_level=settings.log_level.upper())
        except (RedisConnectionError, RedisTimeoutError) as exc:  # raised by RQ's teardown, Redis still down
            log.warning("worker %s: Redis failed while stopping: %s", worker.name, exc)
        except RedisResponseError as exc:
            # RQ stops an idle worker by raising from its signal handler, wherever the main thread is: in the
            # middle of a pipeline, its replies stay unread on the connection, and the teardown's own pipeline
            # reads them ("Wrong number of response items"). The worker is stopping: its death record is left
            # to expire, as after a crash.
            if not _asked_to_stop(worker):
                raise
            log.warning("worker %s: a Redis reply was lost to the stop signal: %s", worker.name, exc)
        if burst or _asked_to_stop(worker):
            return
        log.warning("worker %s stopped by itself (Redis unreachable?); starting anew once Redis answers", worker.name)
        _wait_for_redis(connection)


def _asked_to_stop(worker: BaseWorker) -> bool:
    # RQ notes the date of a SIGTERM/SIGINT; when idle it stops by raising StopRequested, not by the flag. A
    # signal noted before RQ's handlers were in place counts too (RQ may have failed to start: Redis down).
    return bool(
        getattr(worker, "_stop_requested", False)
        or getattr(worker, "_shutdown_requested_date", None)
        or stopping.asked_while_starting()
    )


def _wait_for_redis(connection: Redis) -> None:
    """Ping with growing pauses until Redis answers. A stop signal now simply ends the process: no job runs."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    delay = 0.5
    while True:
        try:
            connection.ping()
            return
        except (RedisConnectionError, RedisTimeoutError, OSError):
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
