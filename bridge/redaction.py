"""Keeping secrets out of logs, errors and metrics.

The shop's webhook URL carries its key in the path (``/rest/1/<key>/``), so a URL is itself a secret. Every
place that shows a URL uses ``safe_url``; every log record passes through ``SecretFilter`` as a last line of
defence for anything that slipped through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_REST_PATH = re.compile(r"(/rest/[^/]+/)([^/]+)(/?)")


def webhook_key(url: str) -> str | None:
    """The secret path segment of a shop webhook URL, or None when the URL has none."""
    match = _REST_PATH.search(urlsplit(url).path)
    return match.group(2) if match else None


def url_password(url: str) -> str | None:
    """The password part of a URL such as ``redis://:pw@host/0``."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def safe_url(url: str) -> str:
    """The URL with its webhook key and any password masked, fit for a log line or an error text."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    path = _REST_PATH.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", parts.path)
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in ``text``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


class SecretFilter(logging.Filter):
    """Rewrites log records so that no configured secret is ever written, whatever the code logged."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = scrub(message, self.secrets)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        for key in ("extra_fields",):
            fields = getattr(record, key, None)
            if isinstance(fields, dict):
                # Numbers and booleans stay themselves (JSON logs keep their types); anything else is scrubbed.
                setattr(record, key, {k: _scrub_value(v, self.secrets) for k, v in fields.items()})
        return True


def _scrub_value(value: object, secrets: Iterable[str]) -> object:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return scrub(str(value), secrets)
