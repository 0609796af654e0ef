"""The ways the shop refuses calls, as switches tests turn on: the leaky-bucket rate limit (503
``QUERY_LIMIT_EXCEEDED``), one method paused for its operating time (429 ``OPERATION_TIME_LIMIT``), the
manual block for overload (503 ``OVERLOAD_LIMIT``), and errors scripted for the next calls of a method.

A refused call does not run, so it is not in the emulator's ``commands``.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from bridge.sandbox.shop.state import ShopState
from bridge.sandbox.shop.wire import ShopError, time_block


class FaultSwitches(ShopState):
    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self._rate: float | None = None
        self._burst = 50
        self._level = 0.0
        self._level_at = time.monotonic()
        self._failures: dict[str, collections.deque[ShopError]] = {}
        self._paused_until: dict[str, float] = {}
        self._overload = False

    def set_rate_limit(self, rate: float | None, burst: int = 50) -> None:
        """Leaky bucket: the level drains at ``rate``/s; a request that would lift it above ``burst`` gets 503."""
        with self.lock:
            self._rate, self._burst, self._level, self._level_at = rate, burst, 0.0, time.monotonic()

    @property
    def bucket_level(self) -> float:
        with self.lock:
            if self._rate is None:
                return 0.0
            return max(0.0, self._level - (time.monotonic() - self._level_at) * self._rate)

    def fail_next(self, method: str, *, error: str | int, status: int, description: str = "", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` (alone or inside a batch) answer this error without running."""
        with self.lock:
            queue = self._failures.setdefault(method.lower(), collections.deque())
            queue.extend(ShopError(error, description, status) for _ in range(times))

    def pause_method(self, method: str, seconds: float) -> None:
        """429 OPERATION_TIME_LIMIT for ``method`` until now + seconds (``time.operating_reset_at`` says when)."""
        with self.lock:
            self._paused_until[method.lower()] = time.time() + seconds

    def set_overload(self, on: bool) -> None:
        """Every call answers 503 OVERLOAD_LIMIT (the manual block by Bitrix support)."""
        with self.lock:
            self._overload = on

    # -- what the dispatcher asks --------------------------------------------------------------------------

    def admit_request(self) -> None:
        """Refuse a whole HTTP request (a batch counts once) when the shop is blocked or the bucket is full."""
        if self._overload:
            raise ShopError("OVERLOAD_LIMIT", "REST API is blocked due to overload", 503)
        if self._rate is None:
            return
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self._rate)
        self._level_at = now
        if self._level + 1 > self._burst:
            raise ShopError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
        self._level += 1

    def admit_method(self, name: str) -> None:
        """Refuse one method call (alone or in a batch) that is paused or has an error scripted."""
        until = self._paused_until.get(name)
        if until is not None and until > time.time():
            raise ShopError(
                "OPERATION_TIME_LIMIT",
                f"Method {name} is blocked due to operation time limit.",
                429,
                time=time_block(time.time(), reset_at=until) | {"operating": 480.0},
            )
        queue = self._failures.get(name)
        if queue:
            raise queue.popleft()
