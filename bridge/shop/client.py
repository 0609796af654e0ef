"""The shop REST client used inside RQ jobs (synchronous httpx).

Every HTTP request, retries included, first takes a slot of the leaky bucket all processes share, and no
request goes out for a method the shop asked us to leave alone (see ``ratelimit``). Only
``QUERY_LIMIT_EXCEEDED`` is retried here: the shop refused the request before running it, so repeating it
is safe even for writes. Every other failure is raised for the job layer to decide.

The base URL holds the webhook key. It is never logged and never put into an exception; httpx exceptions
are replaced (not chained), so a traceback stored by RQ cannot show it either.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import httpx
from redis import Redis

from bridge import __version__
from bridge.errors import Cause
from bridge.redaction import safe_url, scrub, webhook_key
from bridge.shop import batch as batching
from bridge.shop.batch import MAX_COMMANDS, BatchResult
from bridge.shop.errors import (
    ShopError,
    ShopPermanentError,
    ShopTransientError,
    classify,
    parse_body,
    transport_error,
)
from bridge.shop.ratelimit import BucketTimeout, LeakyBucket, MethodPauses, Pause
from bridge.tls import client_context

log = logging.getLogger("bridge.shop")

HEADROOM = 0.1  # our bucket holds 10 % fewer requests than the shop's burst, so jitter rarely meets a 503
RATE_HEADROOM = 0.01  # and drains 1 % slower: the spare burst absorbs jitter, a slower rate only costs speed
OPERATING_WINDOW = 600.0  # the shop sums a method's execution time over 10 minutes
OVERLOAD_PAUSE = 600.0
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
MAX_BUCKET_WAIT = 120.0  # a job waiting longer for a slot gives up and is retried by the queue


@dataclass(frozen=True)
class CallRecord:
    """One HTTP request to the shop, for metrics: ``status`` is None when no answer came."""

    method: str
    status: int | None
    outcome: Literal["ok", "permanent", "transient"]
    code: str | None
    duration: float


@dataclass
class _Answer:
    data: Any
    error: ShopError | None


class ShopClient:
    """Calls the shop's REST methods by webhook; see docs/architecture.md, "Shop client"."""

    def __init__(
        self,
        base_url: str,
        *,
        redis: Redis,
        rate: float = 2.0,
        burst: int = 50,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 6,
        on_call: Callable[[CallRecord], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_bucket_wait: float = MAX_BUCKET_WAIT,
        overload_pause: float = OVERLOAD_PAUSE,
    ) -> None:
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._secrets = [s for s in (base_url, webhook_key(base_url)) if s]
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_bucket_wait = max_bucket_wait
        self.overload_pause = overload_pause
        self.on_call = on_call
        self._sleep = sleep  # the back-off between QUERY_LIMIT_EXCEEDED retries; tests replace it
        self.bucket = LeakyBucket(redis, rate, burst, headroom=HEADROOM, rate_headroom=RATE_HEADROOM)
        self.pauses = MethodPauses(redis)
        self._reset_at: dict[str, float] = {}  # method → operating_reset_at of its last success
        self._http = httpx.Client(
            transport=transport,
            verify=client_context(),  # shared: building a context per client cost ~50 ms (bridge.tls)
            timeout=timeout,
            follow_redirects=False,  # a followed 302 turns the POST into a GET without a body
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"bridge/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"ShopClient({safe_url(self._base)!r})"

    def __enter__(self) -> ShopClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- public calls ------------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole answer envelope (``result``, ``total``, ``next``, ``time``) of a successful call."""
        return self._call(method, params, guard=[method])

    def result(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Only the ``result`` of a successful call."""
        return self.call(method, params).get("result")

    def list_all(self, method: str, params: Mapping[str, Any] | None, key: str | None) -> Iterator[dict[str, Any]]:
        """Every item of a list method, page by page (``start`` = the previous answer's ``next``).

        ``key`` names the list inside ``result`` (``orders`` for ``sale.order.list``); None when ``result``
        is the list itself, as in older methods.
        """
        base = dict(params or {})
        start = int(base.get("start", 0) or 0)
        while True:
            envelope = self.call(method, {**base, "start": start} if start else base)
            yield from self._items(method, envelope.get("result"), key)
            following = envelope.get("next")
            if following is None:
                return
            if int(following) <= start:
                raise ShopPermanentError(
                    f"shop answered {method} with next={following} after start={start}; paging would not end",
                    method=method,
                )
            start = int(following)

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]], *, halt: bool = False) -> BatchResult:
        """Run up to 50 commands in one request; per-command failures land in ``BatchResult.errors``.

        Raises when the batch request as a whole fails, or when the shop or any method inside is paused.
        """
        if len(commands) > MAX_COMMANDS:
            raise ValueError(f"a batch holds at most {MAX_COMMANDS} commands, got {len(commands)}")
        if not commands:
            return BatchResult()
        methods = {str(cmd_id): method for cmd_id, (method, _) in commands.items()}
        cmd = {str(cmd_id): batching.command(method, params) for cmd_id, (method, params) in commands.items()}
        envelope = self._call("batch", {"halt": 1 if halt else 0, "cmd": cmd}, guard=["batch", *methods.values()])
        result, resets = batching.parse(envelope.get("result"), methods)
        self._reset_at.update(resets)
        for error in result.errors.values():
            self._after_error(error.method, error, None)
            self._clean(error)
        return result

    def batch_many(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]]) -> BatchResult:
        """Any number of commands, 50 per request, merged into one result.

        Does not raise for a failed request: once one chunk fails as a whole (paused, rate-limited, down),
        its error is recorded for each of its commands and for every later command, which is not sent. So
        every command id ends up in ``results`` or ``errors`` and the work already done is not lost.
        """
        items = list(commands.items())
        merged = BatchResult()
        for offset in range(0, len(items), MAX_COMMANDS):
            chunk = dict(items[offset : offset + MAX_COMMANDS])
            try:
                merged.merge(self.batch(chunk))
            except ShopError as error:
                for cmd_id, _ in items[offset:]:
                    merged.errors[str(cmd_id)] = error
                break
        return merged

    # -- one logical call with its retries ----------------------------------------------------------------

    def _call(self, method: str, params: Mapping[str, Any] | None, guard: list[str]) -> dict[str, Any]:
        body = json.dumps(params or {}, default=_json_default, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            pause = self.pauses.check(guard)
            if pause is not None:
                raise _paused_error(method, pause)
            answer = self._exchange(method, body)
            error = answer.error
            if error is None:
                envelope = answer.data if isinstance(answer.data, dict) else {"result": answer.data}
                self._remember_reset(method, envelope)
                return envelope
            if isinstance(error, ShopTransientError) and error.cause is Cause.RATE_LIMITED:
                self.bucket.penalize()
                delay = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt) * random.uniform(0.5, 1.0)
                if attempt < self.max_retries:
                    attempt += 1
                    log.info("shop %s: rate limited, retry %d in %.1fs", method, attempt, delay)
                    self._sleep(delay)
                    continue
                error.retry_after = delay
            self._after_error(method, error, answer.data)
            raise self._clean(error)

    def _after_error(self, method: str, error: ShopError, data: Any) -> None:
        """Pause what the shop told us to pause, and say in the error until when."""
        if not isinstance(error, ShopTransientError):
            return
        now = time.time()
        if error.cause is Cause.PAUSED:
            until = self._pause_end(method, data, now)
            self.pauses.pause(method, until)
            error.retry_after = until - now
            error.args = (f"{error}; {method} paused for {until - now:.0f}s",)
            log.warning("shop %s: operating time limit reached, paused for %.0fs", method, until - now)
        elif error.cause is Cause.OVERLOAD:
            pause = self.overload_pause
            self.pauses.pause_all(now + pause)
            error.retry_after = pause
            error.args = (f"{error}; all shop calls paused for {pause:.0f}s",)
            log.error("shop REST blocked for overload (OVERLOAD_LIMIT): all calls paused for %.0fs", pause)

    def _pause_end(self, method: str, data: Any, now: float) -> float:
        """``operating_reset_at`` from the error, else from the method's last success, else 10 minutes.

        A value in the past or more than one window ahead (clock skew, garbage) is not trusted.
        """
        timing = data.get("time") if isinstance(data, dict) else None
        candidates = [timing.get("operating_reset_at") if isinstance(timing, dict) else None]
        candidates.append(self._reset_at.get(method))
        for value in candidates:
            if isinstance(value, int | float) and now < value <= now + OPERATING_WINDOW + 60:
                return float(value)
        return now + OPERATING_WINDOW

    def _remember_reset(self, method: str, envelope: dict[str, Any]) -> None:
        timing = envelope.get("time")
        reset = timing.get("operating_reset_at") if isinstance(timing, dict) else None
        if isinstance(reset, int | float):
            self._reset_at[method] = float(reset)

    # -- one HTTP request -----------------------------------------------------------------------------------

    def _exchange(self, method: str, body: bytes) -> _Answer:
        """POST once (and once more to a same-host redirect); never raises for what the shop answers."""
        url = httpx.URL(self._base + method)
        for hop in range(2):
            self._take_slot(method)
            started = time.monotonic()
            failure: ShopError | None = None
            try:
                response = self._http.post(url, content=body)
            except httpx.TimeoutException as exc:
                failure = transport_error(method, f"no answer within {self.timeout:g}s ({type(exc).__name__})")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                failure = ShopPermanentError(f"the shop URL cannot be used ({type(exc).__name__})", method=method)
            except httpx.HTTPError as exc:
                failure = transport_error(method, f"{type(exc).__name__}: {scrub(str(exc), self._secrets)[:200]}")
            duration = time.monotonic() - started
            if failure is not None:
                self._record(method, None, failure, duration)
                return _Answer(None, failure)
            if response.is_redirect and hop == 0:
                target = url.join(response.headers.get("location", ""))
                if (target.scheme, target.host, target.port) == (url.scheme, url.host, url.port):
                    self._record(method, response.status_code, None, duration)
                    url = target
                    continue
            data = parse_body(response.content)
            if response.is_redirect:  # to another host, or a second time: the URL needs fixing by a person
                error: ShopError | None = ShopPermanentError(
                    f"shop redirected {method} elsewhere (HTTP {response.status_code}); check BRIDGE_SHOP_URL",
                    method=method,
                    status=response.status_code,
                )
            else:
                error = classify(method, response.status_code, data if data is not None else response.content)
            self._record(method, response.status_code, error, duration)
            return _Answer(data, error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _take_slot(self, method: str) -> None:
        try:
            self.bucket.acquire(timeout=self.max_bucket_wait)
        except BucketTimeout as exc:
            raise ShopTransientError(
                f"no shop request slot for {method} within {self.max_bucket_wait:g}s",
                method=method,
                cause=Cause.RATE_LIMITED,
                retry_after=exc.wait,
            ) from None

    def _record(self, method: str, status: int | None, error: ShopError | None, duration: float) -> None:
        code = error.code if error is not None else None
        outcome: Literal["ok", "permanent", "transient"] = (
            "ok" if error is None else "transient" if isinstance(error, ShopTransientError) else "permanent"
        )
        log.debug("shop %s: HTTP %s %s%s in %.3fs", method, status, outcome, f" {code}" if code else "", duration)
        if self.on_call is not None:
            try:
                self.on_call(CallRecord(method, status, outcome, code, duration))
            except Exception:
                log.exception("shop on_call hook failed")

    def _items(self, method: str, result: Any, key: str | None) -> list[dict[str, Any]]:
        if isinstance(result, dict) and key is not None:
            if key in result:
                return list(result[key] or [])
            if not result:
                return []
            raise ShopPermanentError(f"shop answered {method} without a {key!r} list in its result", method=method)
        if isinstance(result, list):
            return result
        return []

    def _clean(self, error: ShopError) -> ShopError:
        """Mask the webhook key should the shop ever echo it in an error text."""
        message = str(error)
        cleaned = scrub(message, self._secrets)
        if cleaned != message:
            error.args = (cleaned,)
        error.description = scrub(error.description, self._secrets)
        return error


def _paused_error(method: str, pause: Pause) -> ShopTransientError:
    wait = pause.retry_after()
    if pause.method is None:
        return ShopTransientError(
            f"shop call {method} not sent: all shop calls are paused for {wait:.0f}s more (OVERLOAD_LIMIT)",
            method=method,
            cause=Cause.OVERLOAD,
            retry_after=wait,
        )
    return ShopTransientError(
        f"shop call {method} not sent: {pause.method} is paused for {wait:.0f}s more (operating time limit)",
        method=method,
        cause=Cause.PAUSED,
        retry_after=wait,
    )


def _json_default(value: Any) -> Any:
    """JSON for the values sync code naturally has: Decimal prices and dates."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to the shop")
