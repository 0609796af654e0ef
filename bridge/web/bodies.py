"""Reading request bodies without trusting them.

The size limit is enforced while streaming, before the whole body is in memory: a declared
``Content-Length`` over the limit is refused at once, and an undeclared (chunked) body is cut off as soon
as it passes the limit.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from starlette.requests import Request


class BodyError(Exception):
    """A body we refuse; ``status`` and ``error`` go straight into the answer."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BodyError(400, "bad_request", "the Content-Length header is not a number") from None
        if size > limit:
            raise BodyError(413, "body_too_large", f"the body is {size} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyError(413, "body_too_large", f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def load_json(text: str | bytes) -> Any:
    """Parse a JSON body; ``BodyError`` (400) for what is not JSON, or is JSON Python reads but cannot use.

    ``json.loads`` accepts a lone UTF-16 surrogate escape (``"\\ud800"``), which is no Unicode character:
    the string it yields cannot be encoded again, so comparing it as a token or echoing it in an answer would
    fail later with a 500. Nesting deep enough to exhaust the recursion limit is refused the same way.
    """
    try:
        data = json.loads(text)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(
            400, "bad_json", "the body holds a lone UTF-16 surrogate escape (such as \\ud800), which is not text"
        ) from None
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BodyError(400, "bad_json", "the body is not valid JSON") from None
    return data


def media_type(request: Request) -> tuple[str, str | None]:
    """The media type (lower case) and the charset named in Content-Type, if any."""
    header = request.headers.get("content-type", "")
    parts = [p.strip() for p in header.split(";")]
    kind = parts[0].lower()
    charset = None
    for param in parts[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower() or None
    return kind, charset


def decode_text(body: bytes, charset: str | None) -> str:
    """Decode as the client said (UTF-8 when silent), dropping a UTF-8 BOM: 1C often writes one."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
        charset = "utf-8"
    encoding = charset or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise BodyError(
            415, "unsupported_charset", f"the charset {encoding!r} named in Content-Type is unknown"
        ) from None
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise BodyError(
            400, "bad_encoding", f"the body is not valid {encoding} at byte {exc.start}; send UTF-8 or name the charset"
        ) from None
