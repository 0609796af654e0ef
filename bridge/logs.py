"""Logging setup: one line per operation, JSON lines when ``BRIDGE_LOG_FORMAT=json``, never a secret.

Every handler carries a ``SecretFilter`` built from the configured secrets, so even a careless log call or a
third-party library's message cannot write the shop's webhook key or a token.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bridge.redaction import SecretFilter
from bridge.settings import Settings

# Libraries whose INFO lines would carry full URLs (the shop URL holds its webhook key).
_QUIET = ("httpx", "httpcore", "urllib3")


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "extra_fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_text:
            entry["error"] = record.exc_text
        elif record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: Settings, process: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(settings.secrets()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    quiet_libraries()
    # uvicorn and rq configure their own handlers; route them through ours (and its filter) instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker", "rq.scheduler"):
        lib = logging.getLogger(name)
        lib.handlers = []
        lib.propagate = True


def quiet_libraries() -> None:
    """Keep the libraries of ``_QUIET`` at WARNING, whatever the root level: their INFO lines carry URLs."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
