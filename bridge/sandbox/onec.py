"""Emulator of the 1C:Enterprise HTTP service that receives the shop's orders.

1C is a hard peer: backups, dumps and configuration updates lock new sessions out, so it goes away for
maintenance behind a session-start lock (403 with the ``#exception`` envelope, the text starting "Начало
сеанса с информационной базой запрещено."); it fails with lock conflicts under load (500), is slow, and
serialises work. Those behaviours are switches here, so the bridge's classification, circuit and
concurrency cap can be tested over real HTTP. The order exchange is the bridge's own: POST a JSON document
with a ``Number``; 1C creates it (201) or updates the one with that number (200).

Counterparties are the bridge's own resource too: ``GET counterparties?tin=…&email=…`` finds one by TIN
when a TIN is given, else by e-mail (200 ``{"id": …}``, 404 when none), and ``POST counterparties`` creates
one from the document's Counterparty block (201 ``{"id": …}``; 409 with the id when the TIN or e-mail is
taken already; 422 without a name, as 1C's "Наименование" is required). The maintenance lock, lock
conflicts and injected answers apply to them as to orders: they are the same sessions of the same base.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hmac
import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SERVICE_PATH = "/Base/hs/exchange/"
ORDERS_PATH = SERVICE_PATH + "orders"
COUNTERPARTIES_PATH = SERVICE_PATH + "counterparties"
LOCK_PREFIX = "Начало сеанса с информационной базой запрещено."
BUSY_TEXT = (
    "Конфликт блокировок при выполнении транзакции: Превышено максимальное время ожидания предоставления блокировки"
)
JSON_TYPE = "application/json; charset=utf-8"


def exception_envelope(reason: int, http_text: str, inner: str, detail: str | None = None) -> dict[str, Any]:
    """The JSON error envelope 1C's web-server module sends when a request fails inside the base.

    The shape is as a third party observed it on a live publication, not as 1C documents it (it does not).
    """
    innermost: dict[str, Any] = {"descr": detail or inner, "creationStack": "core83.dll:0x00000000000A1B2C"}
    return {
        "#exception": "{http://v8.1c.ru/8.2/virtual-resource-system}Exception",
        "exception": {
            "reason": reason,
            "descr": f"HTTP: {http_text}\nОшибка при выполнении запроса POST к ресурсу /hs/exchange/orders:",
            "inner": {"descr": inner, "inner": innermost},
        },
    }


class OnecEmulator:
    """State, switches and records of the 1C side; ``create_onec_app`` serves it.

    ``calls`` has one entry per POST to the orders resource: ``status``, ``number`` and ``document`` (as
    sent, when the body was readable JSON, whatever the outcome), ``idempotency_key``, ``outcome``.
    """

    def __init__(self, *, user: str = "bridge", password: str = "1c-pa55word-secret") -> None:
        self.user = user
        self.password = password
        self.url = ""
        self.latency = 0.0
        self.busy_every = 0
        self.busy_plain_text = False  # True: the lock-conflict text as text/plain instead of the envelope
        self.documents: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.creations: collections.Counter[str] = collections.Counter()
        self.updates: collections.Counter[str] = collections.Counter()
        self.calls: list[dict[str, Any]] = []
        self.counterparties: dict[str, dict[str, Any]] = {}  # 1C ref → the block as created
        # One entry per call to the counterparties resource: method, params, block, status, outcome, at.
        self.counterparty_calls: list[dict[str, Any]] = []
        self.lookup_latency = 0.0  # seconds a lookup takes (a search over an unindexed attribute is slow)
        self._creation_refusal: tuple[int, str] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._mutex = threading.Lock()
        self._lock_message: str | None = None
        self._rejection: tuple[int, str] | None = None
        self._injected: collections.deque[tuple[int, str, str]] = collections.deque()
        self._seen = 0

    # -- switches ------------------------------------------------------------------------------------------

    def lock(self, message: str = "Ведутся технические работы") -> None:
        """Session-start lock (maintenance): every call answers 403 with the lock text in the envelope."""
        with self._mutex:
            self._lock_message = message

    def unlock(self) -> None:
        with self._mutex:
            self._lock_message = None

    def reject(self, status: int = 422, message: str = "Не заполнено поле Контрагент") -> None:
        """1C refuses every document (a business rule failed) until ``accept``."""
        with self._mutex:
            self._rejection = (status, message)

    def accept(self) -> None:
        with self._mutex:
            self._rejection = None

    def slow_lookups(self, seconds: float) -> None:
        """Every counterparty lookup takes this long before it answers (0: as fast as the rest)."""
        self.lookup_latency = float(seconds)

    def refuse_creation(self, status: int = 422, message: str = "Контрагент не записан: ИНН указан неверно") -> None:
        """1C refuses to create any counterparty (a check on the new catalog item failed) until ``allow_creation``."""
        with self._mutex:
            self._creation_refusal = (status, message)

    def allow_creation(self) -> None:
        with self._mutex:
            self._creation_refusal = None

    def add_counterparty(self, *, tin: str | None = None, email: str | None = None, name: str = "ООО Ромашка") -> str:
        """A counterparty 1C has already (entered by a manager); returns its ref."""
        ref = str(uuid.uuid4())
        with self._mutex:
            self.counterparties[ref] = {"TIN": tin, "Email": email, "Name": name}
        return ref

    def counterparty_creations(self) -> int:
        with self._mutex:
            return sum(1 for call in self.counterparty_calls if call["outcome"] == "created")

    def counterparty_outcomes(self) -> list[str]:
        """``"<method> <outcome>"`` of every counterparty call so far, in order."""
        with self._mutex:
            return [f"{call['method']} {call['outcome']}" for call in self.counterparty_calls]

    def respond_next(
        self, status: int, body: str = "", *, content_type: str = "text/plain; charset=utf-8", times: int = 1
    ) -> None:
        """The next ``times`` calls get exactly this answer (a proxy's 502, an HTML error page, ...)."""
        with self._mutex:
            self._injected.extend([(status, body, content_type)] * times)

    @property
    def locked(self) -> bool:
        return self._lock_message is not None

    # -- handling ------------------------------------------------------------------------------------------

    def enter(self) -> int:
        """Count a call in flight; returns its sequence number (1-based)."""
        with self._mutex:
            self._seen += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._seen

    def leave(self) -> None:
        with self._mutex:
            self.in_flight -= 1

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = f"{self.user}:{self.password}".encode()
        return hmac.compare_digest(f"{user}:{password}".encode(), expected)

    def answer(self, sequence: int, headers: Mapping[str, str], body: bytes) -> Response:
        """Decide the answer to one call and record it."""
        document: dict[str, Any] | None = None
        parse_error: str | None = None
        try:
            parsed = json.loads(body.decode("utf-8-sig"))  # 1C reads a BOM without complaint
        except (UnicodeDecodeError, ValueError) as exc:
            parse_error = f"Ошибка разбора JSON: {exc}"
        else:
            if isinstance(parsed, dict):
                document = parsed
            else:
                parse_error = "Ожидался объект JSON"
        number = document.get("Number") if document else None
        number = str(number) if number not in (None, "") else None

        with self._mutex:
            call: dict[str, Any] = {
                "status": 0,
                "number": number,
                "idempotency_key": headers.get("idempotency-key"),
                "outcome": "",
                "document": document,
                "at": time.time(),
            }
            self.calls.append(call)

            def done(status: int, outcome: str, content: str | dict[str, Any], **extra: str) -> Response:
                call.update(status=status, outcome=outcome)
                if isinstance(content, dict):
                    text, media = json.dumps(content, ensure_ascii=False), JSON_TYPE
                else:
                    text, media = content, extra.pop("media_type", "text/plain; charset=utf-8")
                return Response(text.encode("utf-8"), status_code=status, media_type=media, headers=extra or None)

            refused = self._gate(sequence, headers, done)
            if refused is not None:
                return refused
            if parse_error is not None:
                return done(400, "bad_request", {"status": "error", "message": parse_error})
            if number is None:
                return done(400, "bad_request", {"status": "error", "message": "Не заполнен номер документа (Number)"})
            if self._rejection is not None:
                status, message = self._rejection
                return done(status, "rejected", {"status": "error", "message": message})
            assert document is not None
            self.documents[number] = document
            if number in self.refs:
                self.updates[number] += 1
                return done(200, "updated", {"status": "updated", "ref": self.refs[number], "number": number})
            self.refs[number] = str(uuid.uuid4())
            self.creations[number] += 1
            return done(201, "created", {"status": "created", "ref": self.refs[number], "number": number})

    def _gate(self, sequence: int, headers: Mapping[str, str], done: Any) -> Response | None:
        """What any call meets before its handler runs: auth, an injected answer, the lock, a lock conflict."""
        if not self._authorized(headers.get("authorization")):
            return done(401, "unauthorized", "", **{"WWW-Authenticate": 'Basic realm="1C:Enterprise"'})
        if self._injected:
            status, text, media = self._injected.popleft()
            return done(status, "injected", text, media_type=media)
        if self._lock_message is not None:
            inner = f"{LOCK_PREFIX}\n{self._lock_message}"
            return done(403, "locked", exception_envelope(403, "Forbidden", inner, self._lock_message))
        if self.busy_every > 0 and sequence % self.busy_every == 0:
            if self.busy_plain_text:
                return done(500, "busy", BUSY_TEXT)
            return done(500, "busy", exception_envelope(500, "Internal Server Error", BUSY_TEXT))
        return None

    def answer_counterparty(
        self, sequence: int, method: str, headers: Mapping[str, str], params: Mapping[str, str], body: bytes
    ) -> Response:
        """Find (GET) or create (POST) a counterparty, and record the call."""
        block: dict[str, Any] | None = None
        if method == "POST":
            try:
                parsed = json.loads(body.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError):
                parsed = None
            block = parsed if isinstance(parsed, dict) else None
        with self._mutex:
            call: dict[str, Any] = {
                "method": method,
                "params": dict(params),
                "block": block,
                "status": 0,
                "outcome": "",
                "at": time.time(),
            }
            self.counterparty_calls.append(call)

            def done(status: int, outcome: str, content: str | dict[str, Any], **extra: str) -> Response:
                call.update(status=status, outcome=outcome)
                if isinstance(content, dict):
                    text, media = json.dumps(content, ensure_ascii=False), JSON_TYPE
                else:
                    text, media = content, extra.pop("media_type", "text/plain; charset=utf-8")
                return Response(text.encode("utf-8"), status_code=status, media_type=media, headers=extra or None)

            refused = self._gate(sequence, headers, done)
            if refused is not None:
                return refused
            if method == "GET":
                tin, email = params.get("tin", "").strip(), params.get("email", "").strip()
                if not tin and not email:
                    return done(400, "bad_request", {"status": "error", "message": "Не указаны ИНН и e-mail"})
                ref = self._find(tin, email)
                if ref is None:
                    return done(404, "not_found", {"status": "not found", "message": "Контрагент не найден"})
                return done(200, "found", {"id": ref, "name": self.counterparties[ref].get("Name")})
            if block is None:
                return done(400, "bad_request", {"status": "error", "message": "Ожидался объект JSON"})
            if self._creation_refusal is not None:
                status, message = self._creation_refusal
                return done(status, "refused", {"status": "error", "message": message})
            if not str(block.get("Name") or "").strip():
                return done(422, "refused", {"status": "error", "message": "Не заполнено поле Наименование"})
            tin, email = str(block.get("TIN") or "").strip(), str(block.get("Email") or "").strip()
            existing = self._find(tin, email) if tin or email else None
            if existing is not None:
                return done(409, "exists", {"id": existing, "message": "Такой контрагент уже есть"})
            ref = str(uuid.uuid4())
            self.counterparties[ref] = dict(block)
            return done(201, "created", {"id": ref})

    def _find(self, tin: str, email: str) -> str | None:
        """By TIN when one is given (a TIN names a legal entity), else by e-mail, ignoring case."""
        for ref, known in self.counterparties.items():
            if tin:
                if str(known.get("TIN") or "").strip() == tin:
                    return ref
            elif email and str(known.get("Email") or "").strip().casefold() == email.casefold():
                return ref
        return None

    def outcomes(self) -> list[str]:
        """The outcome of every call so far, in order (handy in assertions)."""
        with self._mutex:
            return [call["outcome"] for call in self.calls]


def create_onec_app(emulator: OnecEmulator) -> Starlette:
    """``POST /Base/hs/exchange/orders``, ``GET``/``POST /Base/hs/exchange/counterparties``; anything else is
    404/405 as the publication would answer."""

    async def orders(request: Request) -> Response:
        sequence = emulator.enter()
        try:
            body = await request.body()
            if emulator.latency:
                await asyncio.sleep(emulator.latency)
            return emulator.answer(sequence, request.headers, body)
        finally:
            emulator.leave()

    async def counterparties(request: Request) -> Response:
        sequence = emulator.enter()
        try:
            body = await request.body()
            delay = emulator.lookup_latency if request.method == "GET" else 0.0
            if emulator.latency or delay:
                await asyncio.sleep(emulator.latency + delay)
            return emulator.answer_counterparty(
                sequence, request.method, request.headers, dict(request.query_params), body
            )
        finally:
            emulator.leave()

    return Starlette(
        routes=[
            Route(ORDERS_PATH, orders, methods=["POST"]),
            Route(COUNTERPARTIES_PATH, counterparties, methods=["GET", "POST"]),
        ]
    )
