"""The console's forms: ``application/x-www-form-urlencoded`` only, small, read once per request.

Every console form is a handful of short fields, so the body is capped and parsed with the standard
library instead of pulling in a multipart parser; the guard (CSRF) and the endpoint share one reading.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from bridge.web.bodies import BodyError, read_body

MAX_FORM = 16 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The fields (the first value of each); empty for a body that is not a small urlencoded form."""
    cached = getattr(request.state, "console_form", None)
    if cached is not None:
        return dict(cached)
    fields: dict[str, str] = {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            body = await read_body(request, MAX_FORM)
        except BodyError:
            body = b""
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, value)
    request.state.console_form = fields
    return dict(fields)
