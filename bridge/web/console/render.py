"""How a console page becomes HTML: Starlette's Jinja2 templates from the package, autoescaped, with the
headers that keep the page to itself.

The templates ship inside the wheel (``package-data``), so an installed bridge needs no checkout. Every page
is sent with a Content-Security-Policy of ``'self'`` only: the console loads nothing from another host (it
runs on closed networks) and no inline script, so text the bridge shows from the shop or 1C (an order
property, 1C's error words) cannot run even if escaping were ever missed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
    )
)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("signed_in", getattr(request.state, "console_session", False))
    response = templates.TemplateResponse(request, name, context, status_code=status, headers=HEADERS)
    assert isinstance(response, HTMLResponse)
    return response
