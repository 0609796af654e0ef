"""The client of 1C's HTTP service: POST one order document, get back a classified ``Answer``.

It never raises for what 1C (or the network) did: every HTTP answer and every timeout or refused connection
becomes an ``Answer`` whose outcome the job acts on, so that the decision "retry, wait or give up" lives in
one place (``answers.classify``) rather than in exception handlers. The one exception is
``TransientError(cause=Cause.BUSY)`` when no concurrency slot came in time: then 1C was never called.

At most ``concurrency`` calls are in flight across all processes (``ConcurrencyLimit`` on
``keys.ONEC_SLOTS``), because 1C serialises heavy calls on its data locks anyway and a small session pool
answers a crowd with errors. The lease outlasts the call timeout, so a worker killed mid-call frees its
slot by itself.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from redis import Redis

from bridge import keys
from bridge.locks import ConcurrencyLimit
from bridge.onec.answers import Answer, charset_of, classify
from bridge.redaction import safe_url
from bridge.tls import client_context

log = logging.getLogger("bridge.onec")

USER_AGENT = "bridge (1C-Bitrix to 1C)"  # header values must be ASCII
LEASE_MARGIN = 30.0


class OnecClient:
    """Sends order documents to ``{base_url}orders`` with Basic auth and an ``Idempotency-Key``.

    Credentials may also come inside ``base_url`` (``https://user:pw@host/…``); they are moved out of the
    URL so that no error text or log line built from the URL can carry the password.
    """

    def __init__(
        self,
        base_url: str,
        *,
        user: str = "",
        password: str = "",
        timeout: float = 60.0,
        redis: Redis,
        concurrency: int = 2,
        transport: httpx.BaseTransport | None = None,
        slot_timeout: float | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.username is not None and not user:
            user, password = unquote(parts.username), unquote(parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.base_url = urlunsplit((parts.scheme, netloc, path, "", ""))
        self.timeout = float(timeout)
        self.slot_timeout = self.timeout if slot_timeout is None else float(slot_timeout)
        self.user = user
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, */*;q=0.5"}
        if user:
            # Built by hand: UTF-8 credentials (1C user names are often Cyrillic), never kept as plain text.
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        self._http = httpx.Client(
            transport=transport,
            verify=client_context(),  # shared: building a context per client cost ~50 ms (bridge.tls)
            timeout=httpx.Timeout(self.timeout),
            headers=headers,
            follow_redirects=False,
        )
        self.slots = ConcurrencyLimit(
            redis, keys.ONEC_SLOTS, concurrency, self.timeout + LEASE_MARGIN, name="calls to 1C"
        )

    def __repr__(self) -> str:
        return f"OnecClient({safe_url(self.base_url)!r}, user={self.user!r})"

    @property
    def orders_url(self) -> str:
        return self.base_url + "orders"

    def send_order(self, document: dict[str, Any], idempotency_key: str) -> Answer:
        """POST the document; the classified answer. Raises only ``TransientError(cause=Cause.BUSY)`` (no slot)."""
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": str(idempotency_key)}
        with self.slots.slot(self.slot_timeout):
            started = time.monotonic()
            try:
                response = self._http.post(self.orders_url, content=body, headers=headers)
                # The body is always read (non-streaming request): the status alone is not trusted.
                answer = classify(
                    response.status_code, response.content, charset=charset_of(response.headers.get("content-type"))
                )
            except httpx.HTTPError as error:  # timeouts, refused/reset connections, protocol errors
                answer = classify(None, b"", error)
            duration = time.monotonic() - started
        log.log(
            logging.INFO if answer.delivered else logging.WARNING,
            "POST orders key=%s status=%s outcome=%s duration=%.2fs reason=%s",
            idempotency_key,
            answer.status if answer.status is not None else "-",
            answer.outcome.value,
            duration,
            answer.reason,
        )
        return answer

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OnecClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
