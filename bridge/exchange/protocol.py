"""The reply grammar of 1C's exchange: a first line of exactly ``success``, ``progress`` or ``failure``.

1C reads the outcome from the body, never from the HTTP status: a reply whose first line is anything else
(an empty body, an HTML error page, ``Successfully processed``) makes it log «Получен неизвестный статус
импорта» or «Получен пустой ответ сервера» and abandon the exchange. So every answer is HTTP 200, plain text,
and built here.

The text is encoded in windows-1251 and says so (``text/plain; charset=windows-1251``): it is what 1C has
always received from the shop's own exchange, and the Russian of a ``failure`` reaches 1C's exchange log
readable. A character windows-1251 lacks becomes ``?`` rather than an error.
"""

from __future__ import annotations

from typing import Literal

from starlette.responses import Response

ENCODING = "windows-1251"
MEDIA_TYPE = f"text/plain; charset={ENCODING}"
Status = Literal["success", "progress", "failure"]


def reply(status: Status, *lines: str) -> Response:
    """``status``, then each line (a line break inside one becomes a space), ``\\n`` between them."""
    flat = [" ".join(str(line).split()) for line in lines]
    text = "\n".join([status, *flat])
    return Response(text.encode(ENCODING, errors="replace"), status_code=200, media_type=MEDIA_TYPE)


def success(*lines: str) -> Response:
    return reply("success", *lines)


def progress(*lines: str) -> Response:
    return reply("progress", *lines)


def failure(*lines: str) -> Response:
    return reply("failure", *lines)


def lines(*pairs: tuple[str, str]) -> Response:
    """A reply of ``key=value`` lines (``init``'s ``zip=yes`` and ``file_limit=…``), which has no status word."""
    text = "\n".join(f"{key}={value}" for key, value in pairs)
    return Response(text.encode(ENCODING, errors="replace"), status_code=200, media_type=MEDIA_TYPE)
