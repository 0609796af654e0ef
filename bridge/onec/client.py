"""The client of 1C's HTTP service: POST one order document (or find or create a counterparty), get back a
classified ``Answer``.

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
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from redis import Redis

from bridge import keys
from bridge.locks import ConcurrencyLimit
from bridge.onec.answers import Answer, charset_of, classify, classify_lookup, reference_of
from bridge.redaction import safe_url
from bridge.tls import client_context

log = logging.getLogger("bridge.onec")

USER_AGENT = "bridge (1C-Bitrix to 1C)"  # header values must be ASCII
JSON_TYPE = "application/json; charset=utf-8"
LEASE_MARGIN = 30.0


@dataclass(frozen=True)
class Found:
    """A counterparty call's answer and the 1C ref it carried (None: none found, or no ``id`` in the answer)."""

    answer: Answer
    ref: str | None


class OnecClient:
    """Sends order documents to ``{base_url}orders`` with Basic auth and an ``Idempotency-Key``, and finds or
    creates counterparties at ``{base_url}counterparties``.

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

    @property
    def counterparties_url(self) -> str:
        return self.base_url + "counterparties"

    def send_order(self, document: dict[str, Any], idempotency_key: str) -> Answer:
        """POST the document; the classified answer. Raises only ``TransientError(cause=Cause.BUSY)`` (no slot)."""
        headers = {"Content-Type": JSON_TYPE, "Idempotency-Key": str(idempotency_key)}
        return self._call(
            "POST", self.orders_url, f"orders key={idempotency_key}", content=_json(document), headers=headers
        )

    def find_counterparty(self, *, tin: str | None, email: str | None) -> Found:
        """``GET counterparties?tin=…&email=…`` with the parameters given; ``Found.ref`` is None when 1C has none.

        A 404 is 1C's "no such counterparty", an answer rather than a refusal (``classify_lookup``). The TIN
        and the e-mail are the buyer's personal data, so the log line names only which ones were asked.
        """
        params = {name: value for name, value in (("tin", tin), ("email", email)) if value}
        what = f"counterparties by={'+'.join(params) or '-'}"
        answer = self._call("GET", self.counterparties_url, what, params=params, classifier=classify_lookup)
        return Found(answer, reference_of(answer) if answer.status != 404 else None)

    def create_counterparty(self, block: dict[str, Any]) -> Found:
        """``POST counterparties`` with the document's counterparty block; 200/201 ``{"id": …}``."""
        headers = {"Content-Type": JSON_TYPE}
        answer = self._call("POST", self.counterparties_url, "counterparties", content=_json(block), headers=headers)
        return Found(answer, reference_of(answer))

    def _call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        classifier: Callable[..., Answer] = classify,
        **request: Any,
    ) -> Answer:
        """One call inside a concurrency slot, classified and logged with 1C's words (never the credentials)."""
        with self.slots.slot(self.slot_timeout):
            started = time.monotonic()
            try:
                response = self._http.request(method, url, **request)
                # The body is always read (non-streaming request): the status alone is not trusted.
                answer = classifier(
                    response.status_code, response.content, charset=charset_of(response.headers.get("content-type"))
                )
            except httpx.HTTPError as error:  # timeouts, refused/reset connections, protocol errors
                answer = classifier(None, b"", error)
            duration = time.monotonic() - started
        log.log(
            logging.INFO if answer.delivered else logging.WARNING,
            "%s %s status=%s outcome=%s duration=%.2fs reason=%s",
            method,
            what,
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


def _json(document: dict[str, Any]) -> bytes:
    """UTF-8 text, not ``\\u`` escapes: 1C reads it as written."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
