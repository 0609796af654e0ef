"""Sending write commands 50 to a ``batch`` and settling each pending entry by its own command's answer.

Inside a batch the shop answers per command, so one refused item (a price type that does not exist) fails
alone: the other 49 are applied and recorded, and are not sent again. How a failed command is judged:

- transient (rate limit, paused method, shop down): its entries wait for the next round;
- refused because of the *call* (method missing, no permission: ``PERMANENT_CODES``): nothing of this kind
  can succeed, so the flush stops (``Outcomes.fatal``);
- refused because of the *item* (error 0 "Product does not exist" and the like): dropped and reported, unless
  the command used an id remembered from an earlier flush (``stale_on_error``): that id may be gone, so it is
  forgotten and the entry waits a moment to be looked up afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.errors import Cause, PermanentError, TransientError
from bridge.shop.client import ShopClient
from bridge.shop.errors import PERMANENT_CODES, ShopError, ShopTransientError
from bridge.updates.outcomes import Outcomes
from bridge.updates.pending import Entry


@dataclass
class Write:
    """One command and the entries it settles; ``on_success`` gets the command's result (e.g. to cache a new id)."""

    method: str
    params: dict[str, Any]
    entries: Sequence[Entry]
    on_success: Callable[[Any], None] | None = None
    stale_on_error: Callable[[], None] | None = None  # forget a cached id that the error may be about
    details: dict[str, Any] = field(default_factory=dict)  # for the report of a dropped entry


def is_fatal(error: ShopError) -> bool:
    """The shop refused the method itself, not this item."""
    return not isinstance(error, TransientError) and str(error.code or "").upper() in PERMANENT_CODES


def shop_words(error: ShopError) -> str:
    """The shop's reason without our framing: what a person fixing the data needs to read."""
    return error.description or str(error)


def judge(outcomes: Outcomes, entries: Sequence[Entry], error: ShopError, what: str, **details: Any) -> None:
    """Settle ``entries`` after ``error`` from the command that was to apply them."""
    if isinstance(error, ShopTransientError):
        outcomes.wait(entries, error)
    elif is_fatal(error):
        outcomes.wait(entries, ShopTransientError(str(error), method=error.method, cause=Cause.UNAVAILABLE))
        outcomes.fatal = outcomes.fatal or PermanentError(
            f"the shop refuses {error.method} for every {outcomes.kind} update: {shop_words(error)} "
            f"(code {error.code}); fix the shop's settings or the mappings, then retry this job"
        )
    else:
        outcomes.drop(entries, f"the shop refused {what}: {shop_words(error)}", code=error.code, **details)


def run_writes(shop: ShopClient, writes: Sequence[Write], outcomes: Outcomes) -> None:
    """Send ``writes`` in batches of 50 and settle every entry by its command's answer."""
    if not writes:
        return
    answer = shop.batch_many({str(i): (w.method, w.params) for i, w in enumerate(writes)})
    for index, write in enumerate(writes):
        cmd_id = str(index)
        error = answer.errors.get(cmd_id)
        if error is None and cmd_id not in answer.results:
            error = ShopTransientError(f"the shop did not answer {write.method}", method=write.method)
        if error is None:
            if write.on_success is not None:
                write.on_success(answer.results[cmd_id])
            outcomes.apply(write.entries)
            outcomes.written += 1
        elif write.stale_on_error is not None and not isinstance(error, TransientError) and not is_fatal(error):
            write.stale_on_error()
            outcomes.wait(
                write.entries,
                TransientError(f"{write.method} failed with a remembered id; looking it up again", cause=Cause.BUSY),
            )
        else:
            judge(outcomes, write.entries, error, write.method, **write.details)


def result_id(result: Any, key: str) -> int | None:
    """The ``id`` inside an add method's result (``{"storeProduct": {"id": 7, ...}}``), if any."""
    node = result.get(key) if isinstance(result, dict) else None
    if isinstance(node, dict):
        node = node.get("id")
    try:
        return int(node) if node is not None else None
    except (TypeError, ValueError):
        return None
