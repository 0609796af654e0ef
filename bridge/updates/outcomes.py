"""What became of each pending update in one round of a flush, and the report of the ones given up.

Every entry ends in exactly one of these places:

- ``applied``: the shop now holds the value (written, or found already there); recorded as applied.
  ``unchanged`` is the same, for a value the bridge had already applied (nothing was sent).
- ``dropped``: it can never be applied as it stands (unknown product, store id or order; the shop refused
  the value). It leaves the pending set and is *reported*: a warning in plain words on the
  ``bridge.updates.flush`` logger, and (by the flush, once per round and reason class) the sync log and the
  metrics.
- ``held``: it cannot be applied because of the bridge's own setup (an unmapped store, price type or status,
  a missing article property). It moves to the held store (``bridge.updates.holds``) until a person fixes
  the mappings and retries the dead letter filed for it: a configuration mistake must not lose data.
- ``superseded``: another entry for the same shop key is newer; it leaves silently.
- ``waiting``: a transient failure (shop down, rate limit, paused method); it stays pending and the flush
  comes back later.

``warned`` is not a place of its own: an applied entry that reached the shop without a part the shop's admins
may not want (a unit or VAT rate the shop lacks, a picture refused) is listed there too, with the reason, so
the batch, the sync log and the metrics count it, not only the process log.

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


@dataclass(frozen=True)
class Problem:
    """Why an entry cannot be applied: the words, their class, and whether it is the bridge's setup (held)."""

    reason: str
    why: str
    setup: bool = False  # True: a mapping or the shop's setup is wrong; the entry is held, not dropped


@dataclass
class Outcomes:
    kind: str
    applied: list[Entry] = field(default_factory=list)
    dropped: list[tuple[Entry, str]] = field(default_factory=list)
    held: list[tuple[Entry, str, str]] = field(default_factory=list)  # (entry, reason, reason class)
    unchanged: list[Entry] = field(default_factory=list)
    # Reason class of each dropped entry's reason, by the entry's field (labels for metrics and batch tallies).
    drop_classes: dict[str, str] = field(default_factory=dict)
    superseded: list[Entry] = field(default_factory=list)
    waiting: list[tuple[Entry, TransientError]] = field(default_factory=list)
    warned: list[tuple[Entry, str, str]] = field(default_factory=list)  # (applied entry, reason, reason class)
    fatal: PermanentError | None = None
    written: int = 0  # shop write commands that succeeded (for the summary)

    def apply(self, entries: Iterable[Entry]) -> None:
        self.applied.extend(entries)

    def drop(self, entries: Iterable[Entry], reason: str, *, why: str = "refused_by_shop", **details: Any) -> None:
        """Give the entries up for good; ``why`` is the reason's class (a metric label, a batch tally key)."""
        for entry in entries:
            self.dropped.append((entry, reason))
            self.drop_classes[entry.field] = why
            report(self.kind, entry, reason, why=why, **details)

    def hold(self, entries: Iterable[Entry], reason: str, *, why: str) -> None:
        """Keep the entries until the mappings are fixed: ``reason`` says what to fix, ``why`` is its class."""
        self.held.extend((entry, reason, why) for entry in entries)

    def refuse(self, entries: Iterable[Entry], problem: Problem) -> None:
        """Hold or drop, as the problem says."""
        if problem.setup:
            self.hold(entries, problem.reason, why=problem.why)
        else:
            self.drop(entries, problem.reason, why=problem.why)

    def warn(self, entry: Entry, reason: str, *, why: str) -> None:
        """The entry was applied without something it asked for; ``why`` is the reason's class."""
        self.warned.append((entry, reason, why))

    def keep_unchanged(self, entries: Iterable[Entry]) -> None:
        self.unchanged.extend(entries)

    def supersede(self, entries: Iterable[Entry]) -> None:
        self.superseded.extend(entries)

    def wait(self, entries: Iterable[Entry], error: TransientError) -> None:
        self.waiting.extend((entry, error) for entry in entries)

    def settled(self) -> Iterator[tuple[Entry, bool]]:
        """(entry, applied?) for every entry that leaves the pending set."""
        yield from ((entry, True) for entry in self.applied)
        yield from ((entry, True) for entry in self.unchanged)
        yield from ((entry, False) for entry, _ in self.dropped)
        yield from ((entry, False) for entry in self.superseded)

    def first_wait(self) -> TransientError | None:
        """The error to schedule the next round by: the shop's trouble before a single stale id's."""
        errors = [error for _, error in self.waiting]
        return next((e for e in errors if e.cause is not Cause.BUSY), errors[0] if errors else None)

    def merge(self, other: Outcomes) -> None:
        self.applied.extend(other.applied)
        self.dropped.extend(other.dropped)
        self.drop_classes.update(other.drop_classes)
        self.held.extend(other.held)
        self.unchanged.extend(other.unchanged)
        self.superseded.extend(other.superseded)
        self.waiting.extend(other.waiting)
        self.warned.extend(other.warned)
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
