"""The mappings a long-running process uses, read again when their files change.

An operator fixes ``statuses.toml`` and runs ``bridge failed retry``: the retried work must see the new
table, in every worker and web process, without a restart. So a process does not keep the mappings it read
at start for ever: ``LiveMappings.get`` compares the folder's fingerprint (name, size and modification time
of each mapping file, from ``stat``, no reading) at most once per ``CHECK_EVERY`` seconds, and reads the
files again only when it changed. A broken edit keeps the last good mappings, with one plain log line per
broken version (``bridge check`` lists the problems in full).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from bridge.mappings import FILES, MappingError, Mappings, load_mappings

log = logging.getLogger("bridge.mappings")

CHECK_EVERY = 1.0

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(directory: Path) -> Fingerprint:
    """(name, size, mtime in ns) of every ``*.toml`` in the folder; empty when it does not exist."""
    found: list[tuple[str, int, int]] = []
    try:
        paths = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    except OSError:
        return ()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        found.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class LiveMappings:
    """The last good mappings of ``directory``, refreshed when its files change (checked at most once a second).

    The first read raises ``MappingError`` like ``load_mappings`` (a process must not start on broken
    mappings); later broken edits are logged and ignored until they are fixed.
    """

    def __init__(self, directory: Path | str, *, check_every: float = CHECK_EVERY) -> None:
        self.directory = Path(directory)
        self.check_every = check_every
        self._lock = threading.Lock()
        self._print = fingerprint(self.directory)
        self._mappings = load_mappings(self.directory)
        self._checked = time.monotonic()
        self._broken: Fingerprint | None = None

    def get(self) -> Mappings:
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return self._mappings
        with self._lock:
            self._checked = now
            current = fingerprint(self.directory)
            if current != self._print and current != self._broken:
                self._reload(current)
            return self._mappings

    def _reload(self, current: Fingerprint) -> None:
        try:
            fresh = load_mappings(self.directory)
        except MappingError as error:
            self._broken = current
            first = error.problems[0] if error.problems else "unreadable"
            more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
            log.error(
                "the edited mappings in %s are not valid, so the last good ones stay in use: %s%s; "
                "run `bridge check` for every problem",
                self.directory, first, more,
            )  # fmt: skip
            return
        self._mappings, self._print, self._broken = fresh, current, None
        names = ", ".join(name for name, _, _ in current if name in FILES) or "the defaults"
        log.info("mappings reloaded from %s (%s)", self.directory, names)
