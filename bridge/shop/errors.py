"""What a shop answer means for the job that made the call: success, retry later, or give up.

Bitrix reports most failures in the body (``{"error": ..., "error_description": ...}``) and, on older
servers, even with HTTP 200; ``sale.*``/``catalog.*`` use numeric codes with HTTP 400. So the body's
``error`` decides first and the HTTP status only when the code is unknown or the body is not JSON.

Messages name the method and the shop's own words, never the URL: the URL carries the webhook key.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import BridgeError, Cause, PermanentError, TransientError

# error code (upper-cased) → transient cause. Everything here is worth another try.
TRANSIENT_CODES: dict[str, Cause] = {
    "QUERY_LIMIT_EXCEEDED": Cause.RATE_LIMITED,  # 503: the shop's leaky bucket is full
    "OPERATION_TIME_LIMIT": Cause.PAUSED,  # 429: the method used up its execution time for 10 minutes
    "OVERLOAD_LIMIT": Cause.OVERLOAD,  # 503: REST blocked by hand; pause everything
    "INTERNAL_SERVER_ERROR": Cause.UNAVAILABLE,
    "ERROR_UNEXPECTED_ANSWER": Cause.UNAVAILABLE,
    "PORTAL_DELETED": Cause.UNAVAILABLE,  # on-premise: the public part of the site is closed (maintenance)
}

# Codes that no retry can fix: credentials, scope, permissions, a method the site lacks, bad input.
PERMANENT_CODES: frozenset[str] = frozenset(
    {
        "NO_AUTH_FOUND",
        "INVALID_CREDENTIALS",
        "INSUFFICIENT_SCOPE",
        "ACCESS_DENIED",
        "WRONG_AUTH_TYPE",
        "EXPIRED_TOKEN",
        "INVALID_TOKEN",
        "USER_ACCESS_ERROR",
        "METHOD_CONFIRM_WAITING",
        "ERROR_METHOD_NOT_FOUND",
        "ERROR_CORE",
        "INVALID_REQUEST",
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "ERROR_BATCH_LENGTH_EXCEEDED",
    }
)

# 4xx statuses that mean "later" rather than "never".
_TRANSIENT_4XX = {408: Cause.UNAVAILABLE, 425: Cause.UNAVAILABLE, 429: Cause.PAUSED}
MAX_DESCRIPTION = 300


class ShopError(BridgeError):
    """Mixed into both shop error classes, so ``except ShopError`` catches every failed shop call.

    ``method`` is the REST method (inside a batch: the command's method), ``code`` the shop's ``error``
    as text (``None`` when the answer had none), ``description`` its ``error_description``, ``status`` the
    HTTP status (``None`` for timeouts and connection errors).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        code: str | None = None,
        description: str = "",
        status: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.method = method
        self.code = code
        self.description = description
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments break Exception's default pickling; RQ and multiprocessing may pickle.
        return (_restore, (type(self), self.args, self.__dict__))


class ShopPermanentError(ShopError, PermanentError):
    """The shop refused the call for a reason a retry cannot fix."""


class ShopTransientError(ShopError, TransientError):
    """The shop is busy, rate-limited, paused or unreachable; ``cause`` says which."""


def _restore(cls: type[ShopError], args: tuple[Any, ...], state: dict[str, Any]) -> ShopError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__setstate__(state)  # TransientError maps the state of older pickles
    return error


def parse_body(body: bytes | str | None) -> Any:
    """The JSON value of a body, or ``None`` when it is empty or not JSON (an HTML error page)."""
    if body is None:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def classify(method: str, status: int, body: Any) -> ShopError | None:
    """The error a shop answer stands for, or None when it is a success.

    ``body`` may be the raw bytes/str or already-parsed JSON. Order of evidence: the ``error`` field (a
    string or a number), then the HTTP status.
    """
    data = parse_body(body) if isinstance(body, bytes | str) else body
    if isinstance(data, dict) and data.get("error") not in (None, ""):
        return error_from_body(method, status, data)
    if 200 <= status < 300:
        if data is None:
            return ShopTransientError(
                f"shop answered {method} with a body that is not JSON (HTTP {status})",
                method=method,
                status=status,
            )
        return None
    where = "" if data is not None else " and a body that is not JSON"
    return _by_status(method, status, None, "", f"shop answered {method} with HTTP {status}{where}")


def error_from_body(method: str, status: int | None, data: dict[str, Any]) -> ShopError:
    """Turn ``{"error": ..., "error_description": ...}`` into the matching error (also used for batch)."""
    code = str(data.get("error"))
    description = str(data.get("error_description") or "").strip()[:MAX_DESCRIPTION]
    http = f" (HTTP {status})" if status is not None else ""
    message = f"shop answered {method}: error {code}{' ' + description if description else ''}{http}"
    known = code.upper()
    if known in TRANSIENT_CODES:
        return ShopTransientError(
            message, method=method, code=code, description=description, status=status, cause=TRANSIENT_CODES[known]
        )
    if known in PERMANENT_CODES:
        return ShopPermanentError(message, method=method, code=code, description=description, status=status)
    return _by_status(method, status, code, description, message)


def _by_status(method: str, status: int | None, code: str | None, description: str, message: str) -> ShopError:
    fields: dict[str, Any] = {"method": method, "code": code, "description": description, "status": status}
    if status is not None and status >= 500:
        return ShopTransientError(message, cause=Cause.UNAVAILABLE, **fields)
    if status in _TRANSIENT_4XX:
        return ShopTransientError(message, cause=_TRANSIENT_4XX[status], **fields)
    # 4xx, 3xx, or a legacy HTTP 200 with an unknown (e.g. numeric domain) code: the request itself is wrong.
    return ShopPermanentError(message, **fields)


def transport_error(method: str, what: str) -> ShopTransientError:
    """A call that got no HTTP answer at all (timeout, refused connection, broken stream)."""
    return ShopTransientError(f"shop call {method} failed: {what}", method=method, cause=Cause.UNAVAILABLE)
