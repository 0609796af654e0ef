"""Who may call what: every guard of the web API, and the one way they compare secrets.

The callers and what they show:

- **the shop** sends ``auth[application_token]`` in the webhook's body, one of ``BRIDGE_SHOP_APP_TOKENS``
  (several, so a token can be rotated). The token is in the body, so the handler parses first and then asks
  ``shop_refusal``; nothing more runs for it than the comparison itself (the intake is a measured fast path);
- **1C pushing updates** (``/1c/*``) sends ``BRIDGE_INBOUND_TOKEN`` as ``Authorization: Bearer`` or
  ``X-Api-Token``, from an address in ``BRIDGE_INBOUND_ALLOWED_IPS``: ``@guarded(onec_pusher)``;
- **people and their tools** (``/admin/*``) send ``Authorization: Bearer <BRIDGE_ADMIN_TOKEN>``:
  ``@guarded(admin_bearer)``.

Each secret is compared by ``same_secret``: as bytes (``hmac.compare_digest`` refuses text that is not ASCII),
every offered one against every accepted one, with no early exit that would time which of them matched.

**A guard is an endpoint decorator, not starlette's ``AuthenticationBackend``.** The middleware would run for
every request, ``/shop/events`` included, whose token a backend cannot see without reading the body first;
and each caller is refused in its own terms: 503 while the guard is not configured, 403 for an address,
401 with a ``WWW-Authenticate`` of its realm, where ``requires`` knows only 403 or a redirect and an
``AuthenticationError`` carries a message, not an answer. A decorator also shows the guard where the
endpoint is defined.

**Room for the next guards.** A guard is any ``async (request) -> refusal or None``, so it may await Redis,
and its refusal may take any form:

- the CommerceML exchange: HTTP Basic on ``checkauth``, then on every later call the cookie of a session kept
  in Redis, with 1C's address allow-list (``bridge.web.clientip``) and refusals in the exchange's own words
  (a ``failure`` text, not JSON);
- the operator console: the admin Bearer or a browser session cookie, and otherwise a redirect to its login
  page.

A guard that learns who is calling (a session's user) leaves it on ``request.state`` for the endpoint.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from bridge.web.clientip import allowed, client_ip
from bridge.web.responses import not_configured, problem

# Refusals are logged where the caller's other lines are.
shop_log = logging.getLogger("bridge.web.shop")
onec_log = logging.getLogger("bridge.web.onec")

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Awaitable[Response | None]]


def same_secret(offered: Sequence[str], accepted: Iterable[str]) -> bool:
    """True when any offered secret equals any accepted one, in time that does not depend on which."""
    matched = False
    for secret in accepted:
        wanted = secret.encode()
        for given in offered:
            matched |= hmac.compare_digest(given.encode(), wanted)
    return matched


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None when the header holds no such token."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    token = value.strip()
    return token if scheme.lower() == "bearer" and token else None


def guarded(guard: Guard) -> Callable[[Endpoint], Endpoint]:
    """Answer with the guard's refusal, or run the endpoint when the guard lets the request through."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def checked(request: Request) -> Response:
            refusal = await guard(request)
            if refusal is not None:
                return refusal
            return await endpoint(request)

        return checked

    return decorate


# -- the shop ------------------------------------------------------------------------------------------------


def shop_refusal(token: object, accepted: list[str]) -> Response | None:
    """The 401 for a shop event whose ``auth[application_token]`` (as parsed) is missing or wrong, else None."""
    if isinstance(token, str) and same_secret((token,), accepted):
        return None
    shop_log.warning("shop event refused: wrong or missing auth[application_token]")
    return problem(401, "unauthorized", "auth[application_token] does not match BRIDGE_SHOP_APP_TOKENS")


# -- 1C pushing updates ----------------------------------------------------------------------------------------


def onec_tokens(request: Request) -> list[str]:
    """The tokens 1C offers: ``Authorization: Bearer …`` and/or ``X-Api-Token``."""
    tokens = []
    bearer = bearer_token(request)
    if bearer is not None:
        tokens.append(bearer)
    header = request.headers.get("x-api-token", "").strip()
    if header:
        tokens.append(header)
    return tokens


async def onec_pusher(request: Request) -> Response | None:
    """1C's pushes: configured (503), then the caller's address (403), then the token (401)."""
    settings = request.app.state.settings
    missing = settings.missing_for("1C inbound")  # BRIDGE_INBOUND_TOKEN among them when it is not set
    secret = "" if missing else settings.inbound_token.get_secret_value()
    if not secret:
        return not_configured(missing or ["BRIDGE_INBOUND_TOKEN"], "receiving updates from 1C")
    address = client_ip(request, settings.trusted_proxy_networks)
    if not allowed(address, settings.allowed_networks):
        onec_log.warning("1C call from %s refused: not in BRIDGE_INBOUND_ALLOWED_IPS", address or "an unknown address")
        return problem(
            403, "forbidden", f"{address or 'this address'} may not call the bridge (BRIDGE_INBOUND_ALLOWED_IPS)"
        )
    offered = onec_tokens(request)
    if same_secret(offered, (secret,)):
        return None
    onec_log.warning("1C call from %s refused: %s token", address, "wrong" if offered else "no")
    response = problem(
        401, "unauthorized", "send the bridge's token as Authorization: Bearer <token> or X-Api-Token: <token>"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="bridge"'
    return response


# -- the admin API ---------------------------------------------------------------------------------------------


async def admin_bearer(request: Request) -> Response | None:
    """``/admin/*``: off without ``BRIDGE_ADMIN_TOKEN`` (503), else its Bearer token or 401."""
    token = request.app.state.settings.admin_token
    secret = token.get_secret_value() if token is not None else ""
    if not secret:
        return not_configured(["BRIDGE_ADMIN_TOKEN"], "the admin API")
    given = bearer_token(request)
    if given is not None and same_secret((given,), (secret,)):
        return None
    response = problem(401, "unauthorized", "send Authorization: Bearer <BRIDGE_ADMIN_TOKEN>")
    response.headers["WWW-Authenticate"] = 'Bearer realm="bridge admin"'
    return response


# -- 1C's standard exchange ------------------------------------------------------------------------------------


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) of ``Authorization: Basic …``, or None when the header holds no such pair."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def exchange_login(request: Request) -> str | None:
    """``checkauth`` of 1C's exchange: None when the Basic credentials are ``BRIDGE_EXCHANGE_USER`` / ``_PASSWORD``,
    else why not (for the log; 1C is answered in its own words by ``bridge.web.exchange``).

    The user and the password are both compared, each in constant time, whichever of them is wrong."""
    settings = request.app.state.settings
    given = basic_credentials(request)
    user = settings.exchange_user or ""
    password = settings.exchange_password.get_secret_value() if settings.exchange_password else ""
    offered_user, offered_password = given or ("", "")
    good_user = same_secret((offered_user,), (user,))
    good_password = same_secret((offered_password,), (password,))
    if given is None:
        return "no HTTP Basic credentials"
    if not (good_user and good_password and user and password):
        return "wrong user or password"
    return None


# -- the operator console --------------------------------------------------------------------------------------


def _console_off(request: Request) -> Response:
    from bridge.web.console.render import page

    return page(request, "off.html", 503)


async def console_viewer(request: Request) -> Response | None:
    """``/console``: off without ``BRIDGE_ADMIN_TOKEN`` (a page that says so, 503); the admin Bearer for tools;
    else the signed session cookie, and a POST of a cookie session must carry the session's CSRF token. A
    browser without a session is sent to the login page; a POST without one is refused (403)."""
    from starlette.responses import RedirectResponse

    from bridge.web.console import session
    from bridge.web.console.forms import read_form

    token = request.app.state.settings.admin_token
    secret = token.get_secret_value() if token is not None else ""
    if not secret:
        return _console_off(request)
    given = bearer_token(request)
    if given is not None:
        if same_secret((given,), (secret,)):
            request.state.console_session = False
            return None
        response = problem(401, "unauthorized", "send Authorization: Bearer <BRIDGE_ADMIN_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="bridge console"'
        return response
    nonce = session.nonce_of(secret, "session", request.cookies.get(session.SESSION_COOKIE))
    if nonce is None:
        if request.method == "POST":
            return problem(403, "forbidden", "sign in to the console first (/console/login)")
        return RedirectResponse("/console/login", 303)
    expected = session.csrf_token(secret, nonce)
    request.state.csrf = expected
    request.state.console_session = True
    if request.method == "POST":
        offered = (await read_form(request)).get("csrf")
        if offered is None or not same_secret((offered,), (expected,)):
            return problem(403, "bad_csrf", "the form's CSRF token is missing or wrong; reload the page and try again")
    return None
