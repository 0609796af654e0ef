"""What a job needs to run (settings, Redis, mappings, peer clients), built once per process.

RQ jobs are plain functions importable by path, so they cannot take clients as arguments. They call
``current()`` instead. Clients are created lazily: a forking worker's parent never opens an HTTP
connection that its children would then share. Tests ``install()`` a runtime built from their own settings
(pointing at the emulators) and ``install(None)`` afterwards.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis

from bridge.errors import PermanentError
from bridge.queue import make_queue
from bridge.queue.enqueue import Enqueuer
from bridge.settings import Settings

if TYPE_CHECKING:
    from rq import Queue

    from bridge.mappings import Mappings
    from bridge.mappings.reload import LiveMappings
    from bridge.onec.circuit import Circuit
    from bridge.onec.client import OnecClient
    from bridge.ops.telemetry import Telemetry
    from bridge.shop.client import ShopClient


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis | None = None) -> Runtime:
        if redis is None:
            if settings.redis_url is None:
                raise PermanentError("BRIDGE_REDIS_URL is not set")
            redis = Redis.from_url(settings.redis_url.get_secret_value())
        return cls(settings=settings, redis=redis)

    @cached_property
    def live_mappings(self) -> LiveMappings:
        """The mapping files, read again when they change (``bridge.mappings.reload``)."""
        from bridge.mappings.reload import LiveMappings

        return LiveMappings(self.settings.mappings_dir)

    @property
    def mappings(self) -> Mappings:
        """The current mappings: an edited file is seen within a second, by every process, without a restart."""
        fixed = self.__dict__.get("_fixed_mappings")
        return fixed if fixed is not None else self.live_mappings.get()

    @mappings.setter
    def mappings(self, value: Mappings) -> None:  # tests pin their own
        self.__dict__["_fixed_mappings"] = value

    @cached_property
    def shop(self) -> ShopClient:
        from bridge.shop.client import ShopClient

        if self.settings.shop_url is None:
            raise PermanentError("BRIDGE_SHOP_URL is not set: the bridge cannot call the shop")
        return ShopClient(
            self.settings.shop_url.get_secret_value(),
            redis=self.redis,
            rate=self.settings.shop_rate,
            burst=self.settings.shop_burst,
            timeout=self.settings.shop_timeout,
            on_call=self.telemetry.shop_call,
            overload_pause=self.settings.shop_overload_pause,
        )

    @cached_property
    def telemetry(self) -> Telemetry:
        """Sync log + metrics + one log line per operation (see ``bridge.ops.telemetry``)."""
        from bridge.ops.telemetry import Telemetry

        return Telemetry(self.redis, max_entries=self.settings.sync_log_max)

    @cached_property
    def onec(self) -> OnecClient:
        from bridge.onec.client import OnecClient

        if self.settings.onec_url is None:
            raise PermanentError("BRIDGE_ONEC_URL is not set: the bridge cannot call 1C")
        return OnecClient(
            self.settings.onec_url,
            user=self.settings.onec_user,
            password=self.settings.onec_password.get_secret_value(),
            timeout=self.settings.onec_timeout,
            redis=self.redis,
            concurrency=self.settings.onec_concurrency,
        )

    @cached_property
    def circuit(self) -> Circuit:
        from bridge.onec.circuit import Circuit

        # A probe waits up to onec_timeout for a slot, then calls for up to onec_timeout; a prober that dies
        # holds the probe that long (plus a margin) before another may try.
        return Circuit(
            self.redis,
            min_delay=self.settings.retry_min_delay,
            max_delay=max(self.settings.retry_max_delay, 1.0),
            probe_ttl=2 * self.settings.onec_timeout + 10,
        )

    @cached_property
    def enqueuer(self) -> Enqueuer:
        return Enqueuer(self.redis, job_timeout=self.settings.job_timeout)

    def forked(self) -> Runtime:
        """A copy for a forked child: same settings, Redis pool (redis-py resets it per pid) and mappings,
        but no HTTP client of the parent's."""
        child = Runtime(self.settings, self.redis)
        for name in ("live_mappings", "_fixed_mappings"):
            if name in self.__dict__:
                child.__dict__[name] = self.__dict__[name]
        return child

    def queue(self, name: str) -> Queue:
        return make_queue(name, self.redis, default_timeout=self.settings.job_timeout)


_lock = threading.Lock()
_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    with _lock:
        _current = runtime


def current() -> Runtime:
    """The process's runtime; after a fork the child builds fresh clients on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.from_settings(Settings())
        elif _current.pid != os.getpid():
            _current = _current.forked()
        return _current
