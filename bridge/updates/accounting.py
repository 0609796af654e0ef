"""What one flush round settled, told to the batch tallies, the sync log and the metrics.

A dropped or held update must be findable without the process log: by its batch (``GET /1c/batches/{batch}``),
in the sync log (``bridge log``, ``/admin/log``) and in ``/metrics``
(``bridge_update_problems{kind, outcome, reason}``). An update applied with a warning (``warned``: a unit or
VAT rate the shop lacks, a picture refused) is reported the same way, as outcome ``warned``. A 50,000-item push with one unknown warehouse must not
write 50,000 log entries, so the sync log gets one entry per round, outcome and reason class, with the count
and one example in words; the metrics one increment per the same; the batches a few ``HINCRBY`` each, all
in one pipeline (``bridge.updates.batches``).
"""

from __future__ import annotations

from collections import Counter

from bridge.ops import metrics
from bridge.ops.synclog import Entry as LogEntry
from bridge.runtime import Runtime
from bridge.updates import batches
from bridge.updates.outcomes import Outcomes


def account(rt: Runtime, kind: str, outcomes: Outcomes) -> None:
    """Count the round's settled entries per batch, and report its drops and holds per reason class."""
    tally = batches.Tally()
    for entry in outcomes.applied:
        tally.settle(entry.seq, "applied")
    for entry in outcomes.unchanged:
        tally.settle(entry.seq, "unchanged")
    for entry in outcomes.superseded:
        tally.settle(entry.seq, "superseded")
    problems: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    for entry, reason in outcomes.dropped:
        why = outcomes.drop_classes.get(entry.field, "refused_by_shop")
        tally.settle(entry.seq, "dropped", why=why, reason=reason)
        problems[("dropped", why)] += 1
        examples.setdefault(("dropped", why), reason)
    for entry, reason, why in outcomes.held:
        tally.settle(entry.seq, "held", why=why, reason=reason)
        problems[("held", why)] += 1
        examples.setdefault(("held", why), reason)
    for entry, reason, why in outcomes.warned:  # applied too (counted above): only the class and its example
        tally.settle(entry.seq, "warned", why=why, reason=reason)
        problems[("warned", why)] += 1
        examples.setdefault(("warned", why), reason)
    tally.write(rt.redis)
    if not problems:
        return
    pipe = rt.redis.pipeline(transaction=False)
    for (outcome, why), count in sorted(problems.items()):
        metrics.inc(pipe, "bridge_update_problems", (kind, outcome, why), count)
    pipe.execute()
    for (outcome, why), count in sorted(problems.items()):
        words = "applied with a warning" if outcome == "warned" else outcome
        detail = f"{count} {kind} update(s) {words} ({why}): {examples[(outcome, why)]}"
        if outcome == "held":
            detail += "; `bridge failed retry` sends them once the mappings are fixed"
        rt.telemetry.record(LogEntry("bridge", f"update.{kind}", outcome, detail=detail), log_line=False)
