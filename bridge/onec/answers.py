"""What an answer from 1C means.

1C's HTTP services are written by hand and published through a web-server module that has its own error
pages, so the status code alone is not trustworthy: a locked infobase answers 403 (which would otherwise
mean "wrong credentials"), a lock conflict may come back as 500 or 409, and an exception envelope can even
arrive with a 2xx. ``classify`` therefore reads the body first and the status second, and always returns
the peer's own words (``reason``) so that a person reading a log line or a dead-letter entry knows what 1C
said without opening the raw body.

The four outcomes drive everything downstream:

- ``DELIVERED``: 1C has the document (2xx, or 409 "already exists": repeats are harmless).
- ``PERMANENT``: retrying cannot help (bad credentials, a document 1C rejects): dead-letter and alert.
- ``UNAVAILABLE``: 1C is down or locked for maintenance: open the circuit, back off long, never drop.
- ``BUSY``: 1C is up but a data lock got in the way; the transaction was rolled back: retry soon.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

REASON_LIMIT = 300

# Texts that say 1C is up but a data lock got in the way (the transaction was rolled back: retry is safe).
BUSY_TEXTS: tuple[str, ...] = (
    "конфликт блокировок",  # lock wait timeout inside a transaction (≈20 s)
    "взаимоблокировк",  # deadlock
    "истекло время ожидания сеанса",  # session pool wait expired (406 in session-reuse setups)
    "lock conflict",
    "deadlock",
)
# Texts that say the infobase is closed to new sessions: maintenance, backup, exclusive mode, licences.
UNAVAILABLE_TEXTS: tuple[str, ...] = (
    "начало сеанса с информационной базой запрещено",  # session-start lock, admin's message follows
    "заблокирован",  # «База данных заблокирована», «Информационная база заблокирована», …
    "монопольн",  # exclusive mode (older wording)
    "исключительн",  # «Ошибка исключительной блокировки информационной базы»
    "не обнаружена свободная лицензия",  # licence limit: frees itself when sessions end
    "превышено максимальное количество пользователей",
    "starting a session with the infobase is prohibited",
    "session start is prohibited",
    "infobase is locked",
    "exclusive mode",
)

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_HTML_NOISE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_XML_DESCR = re.compile(r"<(?:[\w.-]+:)?descr\b[^>]*>(.*?)</(?:[\w.-]+:)?descr\s*>", re.DOTALL)
_XML_MESSAGE = re.compile(r"<(?:[\w.-]+:)?message\b[^>]*>(.*?)</(?:[\w.-]+:)?message\s*>", re.DOTALL)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
# JSON fields that carry an error text, most specific first.
_JSON_TEXT_FIELDS = ("message", "error_description", "description", "descr", "detail", "error", "status", "result")


class Outcome(StrEnum):
    """What the job does next: done, dead-letter, wait long (circuit), or retry soon."""

    DELIVERED = "delivered"
    PERMANENT = "permanent"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Answer:
    """One answer from 1C, classified. ``status`` is None when no HTTP answer came (timeout, refused)."""

    outcome: Outcome
    status: int | None
    reason: str
    body: str

    @property
    def delivered(self) -> bool:
        return self.outcome is Outcome.DELIVERED


def classify(
    status: int | None, body: str | bytes | None, error: BaseException | None = None, *, charset: str | None = None
) -> Answer:
    """Classify an answer (``status`` and ``body``) or a failure to get one (``error``).

    ``charset`` is the one the response's Content-Type named, if any: 1C and the web servers in front of it
    are not consistent about encodings, so the body is decoded robustly (see ``decode_body``).
    """
    text = decode_body(body, charset)
    if error is not None or status is None:
        reason = _error_reason(error) if error is not None else "no answer from 1C"
        return Answer(Outcome.UNAVAILABLE, None, _trim(reason), text)

    words = extract_reason(text)
    reason = _trim(f"HTTP {status}: {words}" if words else f"HTTP {status}")
    if 200 <= status < 300 or status == 409:
        # 409: 1C has an order with this Number already, which is what we wanted (docs/reference.md).
        return Answer(Outcome.DELIVERED, status, reason, text)
    if status in (403, 406) or status >= 500:
        # Only where the platform puts its own lock messages. A 400/422 that merely mentions a lock (a blocked
        # counterparty, a comment echoed back) is a document 1C rejects, not an outage. The whole body is
        # searched: a lock text may sit deep in an HTML page or an inner exception.
        lock = _lock_outcome(text + "\n" + words)
        if lock is not None:
            return Answer(lock, status, reason, text)
    if status in (408, 429) or status >= 500:
        return Answer(Outcome.UNAVAILABLE, status, reason, text)
    # 401 (credentials), 403 without a lock text (rights), 400/404/422 (a document or URL 1C rejects),
    # 3xx (a redirect to a login page or another host: the URL setting is wrong), anything else.
    return Answer(Outcome.PERMANENT, status, reason, text)


def classify_lookup(
    status: int | None, body: str | bytes | None, error: BaseException | None = None, *, charset: str | None = None
) -> Answer:
    """Classify the answer to a question (a counterparty lookup): as ``classify``, except that a 404 is 1C's
    "none", an answer like a 200 (``DELIVERED``: 1C answered), not a refusal. A lock text never comes as a
    404, so a locked or busy 1C is classified as for orders."""
    answer = classify(status, body, error, charset=charset)
    if answer.status == 404 and answer.outcome is Outcome.PERMANENT:
        return replace(answer, outcome=Outcome.DELIVERED)
    return answer


def reference_of(answer: Answer) -> str | None:
    """The ``id`` a delivered JSON answer carries (``{"id": "<1C ref>", …}``), as text; None without one."""
    if not answer.delivered:
        return None
    try:
        data = json.loads(answer.body)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value).strip()


def decode_body(body: str | bytes | None, charset: str | None = None) -> str:
    """Bytes to text: a BOM wins, then UTF-8, then the declared charset, then cp1251 (1C's other habit)."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body.removeprefix("\ufeff")
    raw = bytes(body)
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            return raw[len(bom) :].decode(encoding, errors="replace")
    # Valid UTF-8 is a strong signal (cp1251 Russian text practically never is), so it goes before a
    # declared charset, which web servers in front of 1C often get wrong.
    candidates = [c for c in ("utf-8", charset, "cp1251") if c]
    for encoding in candidates:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("cp1251", errors="replace")


def charset_of(content_type: str | None) -> str | None:
    """The charset a Content-Type header names, or None."""
    if not content_type:
        return None
    match = _CHARSET.search(content_type)
    return match.group(1) if match else None


def extract_reason(text: str) -> str:
    """The peer's words in one readable line: the most specific message its envelope carries."""
    stripped = text.strip()
    if not stripped:
        return ""
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if data is not None:
            found = _json_reason(data)
            if found:
                return _one_line(found)
    if stripped.startswith("<"):
        descrs = [_one_line(html.unescape(_TAG.sub(" ", d))) for d in _XML_DESCR.findall(stripped)]
        if any(descrs):
            return _most_specific([d for d in descrs if d])
        messages = [_one_line(html.unescape(_TAG.sub(" ", m))) for m in _XML_MESSAGE.findall(stripped)]
        if any(messages):
            return next(m for m in messages if m)
        if re.search(r"<(html|body|title|!doctype)\b", stripped, re.IGNORECASE):
            return _html_reason(stripped)
        plain = _one_line(html.unescape(_TAG.sub(" ", stripped)))
        if plain:
            return plain
    return _one_line(stripped)


def _json_reason(data: Any) -> str:
    """The text of a JSON answer: the 1C ``#exception`` descr chain, OData's error, or a message field."""
    if isinstance(data, list):
        for item in data:
            found = _json_reason(item)
            if found:
                return found
        return ""
    if not isinstance(data, dict):
        return "" if data is None or isinstance(data, bool) else str(data)
    exception = data.get("exception")
    if isinstance(exception, dict):
        chain: list[str] = []
        node: Any = exception
        while isinstance(node, dict):
            descr = node.get("descr")
            if isinstance(descr, str) and descr.strip():
                chain.append(_one_line(descr))
            node = node.get("inner")
        if chain:
            return _most_specific(chain)
    odata = data.get("odata.error")
    if isinstance(odata, dict):
        found = _json_reason(odata)
        if found:
            return found
    for key in _JSON_TEXT_FIELDS:
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("value") if isinstance(value.get("value"), str) else _json_reason(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return ""


def _most_specific(chain: list[str]) -> str:
    """From outer to inner descrs, the deepest that is not a mere repeat of the one around it.

    1C wraps the real message in a generic outer one ("HTTP: Forbidden / Ошибка при выполнении запроса…")
    and often repeats the admin's lock message alone in the innermost level, which drops the useful
    prefix («Начало сеанса … запрещено»). The deepest level that adds something is the one a person needs.
    """
    for depth in range(len(chain) - 1, 0, -1):
        if chain[depth].casefold() not in chain[depth - 1].casefold():
            return chain[depth]
    return chain[0]


def _html_reason(page: str) -> str:
    """The title and visible text of an error page, without repeating the title."""
    title_match = _TITLE.search(page)
    title = _one_line(html.unescape(_TAG.sub(" ", title_match.group(1)))) if title_match else ""
    visible = _one_line(html.unescape(_TAG.sub(" ", _HTML_NOISE.sub(" ", page))))
    if not visible:
        return title
    if title and title.casefold() not in visible.casefold():
        return f"{title}: {visible}"
    return visible


def _one_line(text: str) -> str:
    """Join lines into one, keeping sentence breaks readable: "a.\\nb" → "a. b", "a\\nb" → "a. b"."""
    lines = [_SPACE.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    lines = [line for line in lines if line]
    joined = ""
    for line in lines:
        if joined:
            joined += " " if joined[-1] in ".!?:;,…" else ". "
        joined += line
    return joined


def _trim(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1].rstrip() + "…"


def _lock_outcome(text: str) -> Outcome | None:
    folded = text.casefold()
    if any(marker in folded for marker in BUSY_TEXTS):
        return Outcome.BUSY
    if any(marker in folded for marker in UNAVAILABLE_TEXTS):
        return Outcome.UNAVAILABLE
    return None


def _error_reason(error: BaseException) -> str:
    """A failure to get an answer, in words: the exception's class says timeout vs refused."""
    detail = _one_line(str(error))
    name = type(error).__name__
    return f"no answer from 1C: {name}: {detail}" if detail else f"no answer from 1C: {name}"
