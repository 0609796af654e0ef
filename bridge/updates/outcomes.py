"""What became of each pending update in one round of a flush, and the report of the ones given up.

Every entry ends in exactly one of four places:

- ``applied``: the shop now holds the value (written, or found already there); recorded as applied.
- ``dropped``: it can never be applied as it stands (unknown product, store, price type, order or status;
  the shop refused the value). It leaves the pending set and is *reported*: a warning in plain words on the
  ``bridge.updates.flush`` logger with structured ``extra_fields``, which the sync log and metrics read.
- ``superseded``: another entry for the same shop key is newer; it leaves silently.
- ``waiting``: a transient failure (shop down, rate limit, paused method); it stays pending and the flush
  comes back later.

``fatal`` is set when the shop refuses the kind of call itself (a method it lacks, a missing permission):
no item can be applied until a person acts, so the flush stops and goes to the dead-letter list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import Cause, PermanentError, TransientError
from bridge.updates.pending import Entry

log = logging.getLogger("bridge.updates.flush")


@dataclass
class Outcomes:
    kind: str
    applied: list[Entry] = field(default_factory=list)
    dropped: list[tuple[Entry, str]] = field(default_factory=list)
    superseded: list[Entry] = field(default_factory=list)
    waiting: list[tuple[Entry, TransientError]] = field(default_factory=list)
    fatal: PermanentError | None = None
    written: int = 0  # shop write commands that succeeded (for the summary)

    def apply(self, entries: Iterable[Entry]) -> None:
        self.applied.extend(entries)

    def drop(self, entries: Iterable[Entry], reason: str, **details: Any) -> None:
        for entry in entries:
            self.dropped.append((entry, reason))
            report(self.kind, entry, reason, **details)

    def supersede(self, entries: Iterable[Entry]) -> None:
        self.superseded.extend(entries)

    def wait(self, entries: Iterable[Entry], error: TransientError) -> None:
        self.waiting.extend((entry, error) for entry in entries)

    def settled(self) -> Iterator[tuple[Entry, bool]]:
        """(entry, applied?) for every entry that leaves the pending set."""
        yield from ((entry, True) for entry in self.applied)
        yield from ((entry, False) for entry, _ in self.dropped)
        yield from ((entry, False) for entry in self.superseded)

    def first_wait(self) -> TransientError | None:
        """The error to schedule the next round by: the shop's trouble before a single stale id's."""
        errors = [error for _, error in self.waiting]
        return next((e for e in errors if e.cause is not Cause.BUSY), errors[0] if errors else None)

    def merge(self, other: Outcomes) -> None:
        self.applied.extend(other.applied)
        self.dropped.extend(other.dropped)
        self.superseded.extend(other.superseded)
        self.waiting.extend(other.waiting)
        self.fatal = self.fatal or other.fatal
        self.written += other.written


def describe_key(kind: str, key: list[Any]) -> str:
    """An entry's key as a person reads it: 'product xml_id 'abc', store 'Main'' (the kind's own words)."""
    from bridge.updates.kinds import KINDS  # at call time: the kinds import this module

    return KINDS[kind].describe_key(key)


def report(kind: str, entry: Entry, reason: str, **details: Any) -> None:
    """The one place a dropped update is told about, so every consumer sees the same words and fields."""
    fields = {
        "event": "update_dropped",
        "kind": kind,
        "key": entry.key,
        "value": entry.value,
        "reason": reason,
        **details,
    }
    log.warning(
        "%s update dropped for %s: %s", kind, describe_key(kind, entry.key), reason, extra={"extra_fields": fields}
    )
