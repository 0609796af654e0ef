"""404 for a path the bridge does not serve: the JSON error shape, with the paths that exist and the closest one.

A 1C developer who types ``/1c/stocks`` reads only the body of the answer in ``Ответ.ПолучитьТелоКакСтроку()``;
"Not Found" leaves them guessing, a list of the ``/1c/*`` paths and a "did you mean" does not. The list is
read from the app's own routes, so it cannot fall behind them. The CommerceML exchange endpoints are left
out of the list: they speak their own reply grammar (``bridge.web.exchange``), not JSON, and 1C's exchange
node finds them by its site address, not by this hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.web import exchange
from bridge.web.responses import problem

ONEC_PREFIX = "/1c/"
_MAX_SHOWN_PATH = 200  # a hostile 10 kB path is not echoed back whole
_CUTOFF = 0.85  # lower, and /console/nope "means" /console/order


def endpoints(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(path, methods) of every plain route, in the order the app lists them."""
    found = []
    for route in routes:
        if isinstance(route, Route):
            methods = sorted((route.methods or set()) - {"HEAD"})
            found.append((route.path, "/".join(methods)))
    return found


def closest(path: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``path`` when one is near enough to be a likely typo.

    A route's ``{parameter}`` is compared as the segment the caller sent in its place (or as nothing), so
    ``/1c/batch/stock-5`` and ``/1c/batches`` both find ``/1c/batches/{batch}``.
    """
    wanted = path.rstrip("/") or "/"
    sent = wanted.split("/")
    by_shape: dict[str, str] = {}
    for candidate in candidates:
        parts = candidate.split("/")
        filled = [
            (sent[i] if i < len(sent) else "") if part.startswith("{") and part.endswith("}") else part
            for i, part in enumerate(parts)
        ]
        by_shape.setdefault("/".join(filled).rstrip("/") or "/", candidate)
    match = difflib.get_close_matches(wanted, list(by_shape), n=1, cutoff=_CUTOFF)
    return by_shape[match[0]] if match else None


async def not_found(request: Request, exc: Exception) -> Response:
    """The app's 404 handler (for a path no route matches, and any ``HTTPException(404)``)."""
    path = request.url.path
    shown = path if len(path) <= _MAX_SHOWN_PATH else path[:_MAX_SHOWN_PATH] + "…"
    known = endpoints(request.app.routes)
    if path.startswith(ONEC_PREFIX):
        onec = [(p, m) for p, m in known if p.startswith(ONEC_PREFIX)]
        listed = [(p, m) for p, m in onec if p not in exchange.PATHS]
        near = closest(path, [p for p, _ in onec])  # /1c/exchang still finds the exchange
        hint = f"did you mean {near}? " if near else ""
        paths = [f"{methods} {p}" for p, methods in listed]
        message = f"no such path: {shown}; {hint}the 1C endpoints are {', '.join(paths)}"
        return problem(404, "not_found", message, paths=paths, **({"did_you_mean": near} if near else {}))
    near = closest(path, [p for p, _ in known])
    hint = f"did you mean {near}? " if near else ""
    message = f"no such path: {shown}; {hint}the bridge's endpoints are described at /openapi.json"
    return problem(404, "not_found", message, **({"did_you_mean": near} if near else {}))
