"""The console's browser session and CSRF tokens, both signed with a key derived from ``BRIDGE_ADMIN_TOKEN``.

Deriving the key (rather than storing one) means the web processes share it with no extra setting, and
changing the admin token ends every open session at once, which is what an operator who rotates a leaked
token wants. The cookie holds only a random nonce and its signature (``itsdangerous``, timed), never the
token; the CSRF token of a session is an HMAC of that nonce, so a page from another site can neither read
nor forge it, and every POST proves it came from a page the console rendered.

Before login there is no session, so the login form carries a token bound to a short-lived, signed
pre-login cookie instead (login CSRF would otherwise let another site log a browser into *its* console).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "bridge_console"
LOGIN_COOKIE = "bridge_console_login"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600


def _key(admin_token: str) -> bytes:
    return hmac.new(admin_token.encode(), b"bridge console session key", hashlib.sha256).digest()


def _serializer(admin_token: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_key(admin_token), salt=f"bridge-console-{purpose}")


def new_cookie(admin_token: str, purpose: str) -> tuple[str, str]:
    """A fresh nonce and the signed cookie value that carries it."""
    nonce = secrets.token_urlsafe(24)
    return nonce, _serializer(admin_token, purpose).dumps(nonce)


def nonce_of(admin_token: str, purpose: str, cookie: str | None) -> str | None:
    """The nonce of a cookie this console signed and that has not expired, else None."""
    if not cookie or len(cookie) > 500:
        return None
    most = SESSION_SECONDS if purpose == "session" else LOGIN_SECONDS
    try:
        nonce = _serializer(admin_token, purpose).loads(cookie, max_age=most)
    except BadSignature:
        return None
    return nonce if isinstance(nonce, str) else None


def csrf_token(admin_token: str, nonce: str) -> str:
    return hmac.new(_key(admin_token), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()
