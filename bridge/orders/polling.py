"""The safety net for lost webhooks: the shop never re-sends one, so the clock asks it what changed.

Every ``BRIDGE_POLL_INTERVAL`` seconds, ``sale.order.list`` for orders updated since the watermark (minus a
small overlap, because the shop's clock and ours differ and saves land out of order). The first poll, with no
watermark yet, starts where ``BRIDGE_POLL_START`` says (``bridge.orders.poll_start``). An order whose
``dateUpdate`` differs from the one 1C last got is queued through the same collapsing path as a webhook,
so an order that is already pending is not queued twice.

Each order *version* is queued by polling at most once, and not at all when a job already had it in hand
(``keys.POLL_QUEUED`` remembers the ``dateUpdate`` a poll queued, the order's state hash the one a job
saw). Without that, an order that cannot reach 1C (refused, so a dead letter; or a status that is not
sent) would be queued again by every poll while it sits inside the overlap window, and a quiet shop would
grow one dead letter per poll. A webhook or an operator's retry still syncs it at any time.

Only one poll runs at a time across processes (``keys.POLL_LOCK``, renewed page by page), on top of the
clock's own leader election: a clock that lost leadership in the middle of a slow poll cannot start a
second one next to it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import LockError

from bridge import keys
from bridge.ops import metrics
from bridge.ops.synclog import Entry
from bridge.orders import poll_start
from bridge.orders.job import queue_order, state_key
from bridge.runtime import Runtime
from bridge.texts import as_text

log = logging.getLogger("bridge.orders.polling")

OVERLAP = timedelta(minutes=2)
QUEUED_TTL = 7 * 24 * 3600
SELECT = ["id", "dateUpdate", "version", "statusId"]


def _parse(stamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def list_params(since: datetime) -> dict[str, Any]:
    return {
        "select": SELECT,
        "filter": {">=dateUpdate": since.isoformat(timespec="seconds")},
        "order": {"dateUpdate": "asc", "id": "asc"},
    }


def needs_sync(rt: Runtime, order_id: str, updated: str) -> bool:
    """True when no job has had this version of the order in hand and no earlier poll queued it.

    A version a job saw was not lost, whatever came of it: delivered, skipped, retried, or refused (then it
    is a dead letter already, and queuing it again would only make a second one).
    """
    pipe = rt.redis.pipeline(transaction=False)
    pipe.hmget(state_key(order_id), ["updated", "seen"])
    pipe.get(keys.POLL_QUEUED.format(order_id=order_id))
    (delivered, seen), polled = pipe.execute()
    return updated not in {as_text(delivered), as_text(seen), as_text(polled)}


def poll_orders(rt: Runtime) -> int:
    """One poll. Returns how many orders were queued. Only one poll runs at a time across processes."""
    lock = rt.redis.lock(keys.POLL_LOCK, timeout=max(60, int(rt.settings.poll_interval) * 2))
    if not lock.acquire(blocking=False):
        return 0
    started = time.monotonic()
    try:
        watermark = _parse(as_text(rt.redis.get(keys.POLL_WATERMARK)) or "")
        since = (
            (watermark - OVERLAP) if watermark else poll_start.first_since(rt.settings.poll_start, datetime.now(UTC))
        )
        seen = queued = 0
        newest = watermark
        for order in rt.shop.list_all("sale.order.list", list_params(since), "orders"):
            seen += 1
            if seen % 50 == 0:
                lock.reacquire()  # a long listing (rate-limited pages) keeps the poll to itself
            order_id = str(order.get("id", ""))
            updated = str(order.get("dateUpdate", ""))
            if not order_id.isdigit():
                continue
            stamp = _parse(updated)
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            if not needs_sync(rt, order_id, updated):
                continue
            if queue_order(rt, order_id):
                queued += 1
                _note_queued(rt, order_id, updated)
            rt.redis.set(keys.POLL_QUEUED.format(order_id=order_id), updated, ex=QUEUED_TTL)
        if newest is None and watermark is None:
            # Nothing changed since the start point: keep it, or a first poll that looks back 0 would start
            # anew at "now" on every poll and miss what changed in between.
            newest = since
        if newest is not None and newest != watermark:
            rt.redis.set(keys.POLL_WATERMARK, newest.isoformat())
        _note_poll(rt, seen, queued, since, time.monotonic() - started)
        return queued
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("poll lock expired before the poll finished")


def _note_queued(rt: Runtime, order_id: str, updated: str) -> None:
    entry = Entry(
        "bridge", "poll.queue", "queued", "order", order_id, detail=f"no webhook brought dateUpdate {updated}"
    )
    rt.telemetry.record(entry, counters=lambda pipe: metrics.inc(pipe, "bridge_poll_orders_queued"))


def _note_poll(rt: Runtime, seen: int, queued: int, since: datetime, duration: float) -> None:
    detail = f"{seen} orders updated since {since.isoformat(timespec='seconds')}, {queued} queued"
    rt.telemetry.record(Entry("bridge", "poll", "polled", duration=duration, detail=detail), log_line=queued > 0)
