"""Many orders for one shop request: an order job that finds more order jobs due fetches their orders with its own.

After a 1C outage every waiting order is due at once. One ``sale.order.get`` each would spend the shop's rate
limit (2 requests/s by default) at one order per request, so 500 orders would need four minutes of shop time
while 1C takes them in well under one. Instead the job that runs takes up to ``BATCH_SIZE - 1`` more due
order jobs off the queue (``bridge.orders.claims``), takes each order's lock, fetches all the orders with one
``batch`` of ``sale.order.get`` (each answer holds the basket, properties, shipments and payments), and then
maps and sends them to 1C one by one, exactly as each job would have on its own.

What each job would have done stays true: the pending marker is read before the fetch and cleared only if
no newer event came meanwhile; a transient failure schedules the order's own retry with its own place in
the retry window. Whatever is unusual for a taken order (the shop answered its command with an error, 1C
refused it, a newer event arrived during the pass, the job's time is running out) gives its job back to
the queue, where it runs on its own through the plain path. A quiet day's single order finds nothing else
due and takes the plain path at the cost of one script call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import LockError
from rq import get_current_job

from bridge import keys
from bridge.errors import PermanentError, TransientError
from bridge.ops import telemetry
from bridge.orders import claims
from bridge.orders.claims import Claimed
from bridge.orders.job import (
    ORDER_NOT_FOUND,
    Prefetched,
    deliver_fetched,
    pending_key,
    record,
    sync_under_lock,
)
from bridge.queue import ORDERS_QUEUE
from bridge.queue.markers import finish_pending
from bridge.queue.retry import schedule_retry
from bridge.queue.work import order_work
from bridge.runtime import Runtime
from bridge.shop.batch import MAX_COMMANDS
from bridge.shop.errors import ShopError

log = logging.getLogger("bridge.orders.batched")

BATCH_SIZE = MAX_COMMANDS  # the job's own order and up to 49 taken along: one batch request


def sync_with_others(rt: Runtime, order_id: str, action: str, attempt: int, first_seen: float) -> str:
    """The order job under its order's lock: with other due orders when there are any, else on its own."""
    deadline = time.monotonic() + _time_for_batch(rt)
    others = take_others(rt, order_id) if deadline > time.monotonic() else []
    if not others:
        return sync_under_lock(rt, order_id, action, attempt, first_seen)
    renewer = claims.Renewer(rt.redis, rt.settings.job_lease, rt.settings.job_heartbeat)
    for claimed in others:
        renewer.add(claimed)
    fetched: dict[str, Prefetched] = {}
    with renewer.running():
        try:
            ids = [order_id, *(c.order_id for c in others)]
            fetched = fetch_orders(rt, ids, read_markers(rt, ids))
            outcome = sync_under_lock(rt, order_id, action, attempt, first_seen, first=fetched.get(order_id))
        except PermanentError:  # the job's own order is a dead letter now; the others are not
            _work_others(rt, others, fetched, renewer, deadline=deadline)
            raise
        except BaseException:  # RQ's timeout, a crash, Redis gone: the others go back untouched
            _give_back(rt, others, renewer)
            raise
        _work_others(rt, others, fetched, renewer, deadline=deadline)
        return outcome


def take_others(rt: Runtime, order_id: str) -> list[Claimed]:
    """Due order jobs of other orders, each order locked; duplicates of one order are settled at once.

    None while the 1C circuit is open: then the job is a probe (or about to wait), and a probe goes alone."""
    if rt.settings.order_batch <= 1 or rt.circuit.state().is_open:
        return []
    queue = rt.queue(ORDERS_QUEUE)
    taken = claims.claim(rt.redis, queue, min(BATCH_SIZE, rt.settings.order_batch) - 1, rt.settings.job_lease)
    if not taken:
        return []
    kept: dict[str, Claimed] = {}
    extra: list[Claimed] = []  # more jobs for an order already in the batch serve the same marker
    busy: list[Claimed] = []
    for claimed in taken:
        if claimed.order_id == order_id or claimed.order_id in kept:
            extra.append(claimed)
            continue
        lock = rt.redis.lock(
            keys.ORDER_LOCK.format(order_id=claimed.order_id), timeout=rt.settings.job_lease, thread_local=False
        )
        if lock.acquire(blocking=False):
            claimed.lock = lock
            kept[claimed.order_id] = claimed
        else:  # another job works on this order now: this one goes its usual way (a "busy" retry)
            busy.append(claimed)
    claims.done(rt.redis, extra)
    claims.give_back(rt.redis, queue, busy)
    if kept:
        log.info("order %s: fetching %d more due orders with it", order_id, len(kept))
    return list(kept.values())


def read_markers(rt: Runtime, order_ids: Sequence[str]) -> dict[str, str | None]:
    """Each order's pending marker token, read before the fetch (so an event after it makes the order go round)."""
    values = rt.redis.mget([pending_key(order_id) for order_id in order_ids])
    return {
        order_id: (raw.decode() if isinstance(raw, bytes) else raw)
        for order_id, raw in zip(order_ids, values, strict=True)
    }


def fetch_orders(rt: Runtime, order_ids: Sequence[str], tokens: Mapping[str, str | None]) -> dict[str, Prefetched]:
    """One ``batch`` of ``sale.order.get``; the orders it brought (or found gone), by id.

    An order missing from the answer (its command failed, the whole request failed) is simply not there:
    it is fetched again on its own."""
    commands: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for order_id in order_ids:
        if order_id.isdigit():
            commands[order_id] = ("sale.order.get", {"id": int(order_id)})
    try:
        answer = rt.shop.batch(commands)
    except ShopError as error:
        log.warning("fetching %d orders in one batch failed (%s); each is fetched on its own", len(commands), error)
        return {}
    fetched: dict[str, Prefetched] = {}
    for order_id in commands:
        token = tokens.get(order_id)
        action = token.rsplit(":", 1)[0] if token else None
        result = answer.results.get(order_id)
        refusal = answer.errors.get(order_id)
        if isinstance(result, dict) and isinstance(result.get("order"), dict):
            fetched[order_id] = Prefetched(action, token, result["order"])
        elif refusal is not None and refusal.code in ORDER_NOT_FOUND:
            fetched[order_id] = Prefetched(action, token, None)
        elif refusal is not None:
            log.info("order %s: the shop answered its batch command with %s; fetched on its own", order_id, refusal)
    return fetched


def _time_for_batch(rt: Runtime) -> float:
    """Seconds this job may spend before it must give the rest back: its RQ timeout less one order's worst case.

    RQ kills a job that outruns its timeout; a taken order in the middle of its pass would then wait for the
    claims to expire. One order's worst case is each of its 1C calls waiting for a slot and then timing out
    (counterparty lookups add a find and a create)."""
    job = get_current_job()
    timeout = float(job.timeout) if job is not None and job.timeout else float(rt.settings.job_timeout)
    calls = 1 if rt.mappings.counterparty_mode == "off" else 3
    return timeout - calls * 2 * rt.settings.onec_timeout


def _work_others(
    rt: Runtime,
    others: Sequence[Claimed],
    fetched: Mapping[str, Prefetched],
    renewer: claims.Renewer,
    *,
    deadline: float,
) -> None:
    queue = rt.queue(ORDERS_QUEUE)
    for index, claimed in enumerate(others):
        if time.monotonic() > deadline:
            rest = others[index:]
            _give_back(rt, rest, renewer)
            log.warning("%d orders of a batch given back to the queue: the job's time is running out", len(rest))
            return
        with telemetry.about("order", claimed.order_id):
            settled = _work_one(rt, claimed, fetched.get(claimed.order_id))
        _release(claimed, renewer)
        if settled:
            claims.done(rt.redis, [claimed])
        else:
            claims.give_back(rt.redis, queue, [claimed])


def _work_one(rt: Runtime, claimed: Claimed, prefetched: Prefetched | None) -> bool:
    """One taken order's pass; True when its work is settled, False when its job must run on its own."""
    if prefetched is None:
        return False
    order_id = claimed.order_id
    action = prefetched.action or claimed.action
    try:
        outcome = deliver_fetched(rt, order_id, action, prefetched.order)
    except PermanentError:
        return False  # its own run meets the refusal again and ends as the order's dead letter
    except TransientError as error:
        first_seen = claimed.first_seen or time.time()
        try:
            schedule_retry(
                rt, order_work(order_id, action), error=error, attempt=claimed.attempt, first_seen=first_seen
            )
        except PermanentError:
            return False  # the retry window is over: its own run gives up, with a dead letter
        return True
    except Exception:  # whatever its own run would have crashed on, it crashes on there, with RQ's retries
        log.exception("order %s failed inside a batch; it runs again on its own", order_id)
        return False
    if not finish_pending(rt.redis, pending_key(order_id), prefetched.token):
        return False  # a newer event arrived during the pass: the order goes round once more
    record(rt, order_id, action, outcome)
    return True


def _give_back(rt: Runtime, rest: Sequence[Claimed], renewer: claims.Renewer) -> None:
    """Unlock these orders first, so that a worker taking a job back at once does not find its order busy."""
    for left in rest:
        _release(left, renewer)
    claims.give_back(rt.redis, rt.queue(ORDERS_QUEUE), rest)


def _release(claimed: Claimed, renewer: claims.Renewer) -> None:
    renewer.remove(claimed)
    if claimed.lock is not None:
        try:
            claimed.lock.release()
        except LockError:
            log.warning("order %s: its lock expired before its batch finished it", claimed.order_id)
