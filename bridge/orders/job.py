"""The order job: shop order → 1C document → 1C.

One job per order at a time (see ``bridge.queue``): it reads the newest pending event, fetches the order as
it is *now* (the shop's events carry only the id), maps it, and sends it unless 1C already has exactly that
document. Repeats are harmless: 1C creates or updates by ``Number`` and gets ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from bridge import keys, runtime
from bridge.errors import Cause, PermanentError, TransientError
from bridge.exchange.sale import channels
from bridge.onec.answers import Outcome
from bridge.ops import telemetry
from bridge.orders.counterparty import attach_counterparty
from bridge.orders.document import build_document, document_digest, should_send
from bridge.orders.onec_calls import not_delivered, through_circuit
from bridge.queue.locked import locked_job
from bridge.queue.markers import finish_pending, read_pending
from bridge.queue.retry import give_up, schedule_retry
from bridge.queue.work import ORDER_JOB, order_work
from bridge.runtime import Runtime
from bridge.shop.errors import ShopPermanentError

log = logging.getLogger("bridge.orders.job")

SAVE = "save"
CANCEL = "cancel"
# sale.order.get's "order does not exist" (the docs name both codes).
ORDER_NOT_FOUND = {200540400001, 201240400001, "200540400001", "201240400001"}


def pending_key(order_id: str) -> str:
    return ORDER_JOB.marker(order_id)


def state_key(order_id: str) -> str:
    return keys.ORDER_STATE.format(order_id=order_id)


def queue_order(rt: Runtime, order_id: str, action: str = SAVE) -> bool:
    """Queue a sync of this order unless one is already pending (used by polling and the CLI)."""
    return rt.enqueuer.enqueue_once(order_work(order_id, action))


def sync_order(order_id: str, action: str = SAVE, *, attempt: int = 0, first_seen: float | None = None) -> str:
    """Bring 1C up to date with the shop's order ``order_id``. Returns what happened, in a word or two.

    When more order jobs are due, this job takes up to ``BATCH_SIZE - 1`` of them along and fetches all the
    orders in one shop request (``bridge.orders.batched``); alone, it takes the plain path.
    """
    rt = runtime.current()
    first_seen = first_seen or time.time()
    lock = keys.ORDER_LOCK.format(order_id=order_id)
    busy = f"order {order_id} is being synced by another worker"
    with locked_job(rt, lock, order_work(order_id, action), first_seen=first_seen, busy=busy) as locked:
        if not locked:
            return "deferred"
        with telemetry.about("order", order_id):  # shop calls made inside are filed under this order
            from bridge.orders import batched  # it builds on this module

            return batched.sync_with_others(rt, order_id, action, attempt, first_seen)


@dataclass(frozen=True)
class Prefetched:
    """An order fetched before its pass (by a batch): the marker token read before the fetch, and the order
    (None: the shop no longer has it)."""

    action: str | None
    token: str | None
    order: dict[str, Any] | None


def sync_under_lock(
    rt: Runtime, order_id: str, action: str, attempt: int, first_seen: float, first: Prefetched | None = None
) -> str:
    """The job's passes over one order, under its lock: until no newer event arrived during a pass."""
    marker = pending_key(order_id)
    while True:
        if first is not None:
            pending_action, token, prefetched = first.action, first.token, first
            first = None
        else:
            (pending_action, token), prefetched = read_pending(rt.redis, marker), None
        current_action = pending_action or action
        try:
            if prefetched is not None:
                outcome = deliver_fetched(rt, order_id, current_action, prefetched.order)
            else:
                outcome = deliver(rt, order_id, current_action)
        except PermanentError as error:
            if not finish_pending(rt.redis, marker, token):
                continue  # a newer state arrived while we worked: it may well succeed
            record(rt, order_id, current_action, "failed", error)
            raise give_up(error) from None
        except TransientError as error:
            try:
                schedule_retry(
                    rt, order_work(order_id, current_action), error=error, attempt=attempt, first_seen=first_seen
                )
            except PermanentError as gave_up:  # the retry window is over: a dead letter, like any refusal
                # Clear the marker too, or every later event for this order would wait on a job that is gone.
                if not finish_pending(rt.redis, marker, token):
                    continue
                record(rt, order_id, current_action, "failed", gave_up)
                raise
            return f"retry ({error.cause})"
        if finish_pending(rt.redis, marker, token):
            record(rt, order_id, current_action, outcome)
            return outcome


def record(rt: Runtime, order_id: str, action: str, result: str, error: Exception | None = None) -> None:
    """One sync-log entry, metric and log line for how this run ended."""
    rt.telemetry.job_outcome(
        "order",
        result,
        entity="order",
        entity_id=order_id,
        operation=f"order.{action}",
        error=None if error is None else str(error),
    )


def deliver(rt: Runtime, order_id: str, action: str) -> str:
    """One pass: fetch, map, compare, send. Raises PermanentError or TransientError."""
    wait_for_open_circuit(rt)
    return deliver_fetched(rt, order_id, action, fetch_order(rt, order_id))


def deliver_fetched(rt: Runtime, order_id: str, action: str, order: dict[str, Any] | None) -> str:
    """The rest of a pass once the order is in hand (None: the shop no longer has it), alone or from a batch.

    This is the point where an order is fetched and about to be mapped and sent to 1C. (While the 1C
    circuit is open, the send raises at once: ``through_circuit``.)
    """
    if order is None:
        return _cancel_from_memory(rt, order_id, reason="the order no longer exists in the shop")
    # A job has this version in hand, whatever comes of it (delivered, skipped, refused, retried): polling,
    # the net for lost webhooks, leaves it alone (bridge.orders.polling.needs_sync).
    rt.redis.hset(state_key(order_id), "seen", str(order.get("dateUpdate", "")))
    if action != CANCEL and not should_send(order, rt.mappings):
        return f"skipped: status {order.get('statusId')!r} is not sent to 1C"
    waiting = channels.route(rt, order_id, order)  # noted for the exchange's query; None: send it to 1C
    if waiting is not None:
        return waiting
    document = build_document(order, rt.mappings, cancelled=action == CANCEL)
    document = attach_counterparty(rt, order_id, document)  # the buyer's 1C ref, when order.toml asks for it
    return send(rt, order_id, document, order)


def wait_for_open_circuit(rt: Runtime) -> None:
    """Raise at once while 1C is known to be down and another caller probes or no probe is due yet.

    Otherwise every retry of every waiting order would first ask the shop for the order, only to find 1C
    still locked: hundreds of shop requests per night of maintenance, all spent from the shop's rate limit
    that the stock and price updates need. The one caller that may probe goes on, fetches and sends.
    """
    status = rt.circuit.state()
    if not status.is_open:
        return
    wait = rt.circuit.retry_in()
    if wait > 0 or rt.redis.exists(keys.ONEC_PROBE):
        raise TransientError(
            f"1C is unavailable since {status.since}: {status.reason}",
            cause=Cause.UNAVAILABLE,
            retry_after=wait or None,
        )


def fetch_order(rt: Runtime, order_id: str) -> dict[str, Any] | None:
    try:
        result = rt.shop.result("sale.order.get", {"id": int(order_id)})
    except ShopPermanentError as error:
        if error.code in ORDER_NOT_FOUND:
            return None
        raise
    order = result.get("order") if isinstance(result, dict) else None
    if not isinstance(order, dict):
        raise TransientError(f"sale.order.get for order {order_id} answered without an order", cause=Cause.UNAVAILABLE)
    return order


def _cancel_from_memory(rt: Runtime, order_id: str, *, reason: str) -> str:
    """The order is gone from the shop: tell 1C it is cancelled, if 1C ever had it."""
    stored = rt.redis.hget(state_key(order_id), "document")
    if stored is None:
        return f"skipped: {reason} and never reached 1C"
    document = json.loads(stored)
    cancelled_field = rt.mappings.document.field("Cancelled")
    document[cancelled_field] = True
    return send(rt, order_id, document, None)


def send(rt: Runtime, order_id: str, document: dict[str, Any], order: dict[str, Any] | None) -> str:
    digest = document_digest(document)
    state = state_key(order_id)
    if rt.redis.hget(state, "digest") == digest.encode():
        _remember_version(rt, state, order)
        return "unchanged"
    answer = through_circuit(
        rt, lambda: rt.onec.send_order(document, idempotency_key=str(order_id)), lambda a: a, order_id=str(order_id)
    )
    if answer.outcome is Outcome.DELIVERED:
        rt.redis.hset(
            state,
            mapping={
                "digest": digest,
                "document": json.dumps(document, ensure_ascii=False),
                "delivered_at": time.time(),
            },
        )
        _remember_version(rt, state, order)
        return "delivered"
    number = document.get(rt.mappings.document.field("Number"), order_id)
    raise not_delivered(rt, answer, refused=f"1C refused order {number}", missed=f"1C did not take order {number}")


def _remember_version(rt: Runtime, state: str, order: dict[str, Any] | None) -> None:
    """Polling compares the shop's dateUpdate with this to find orders whose latest state 1C lacks."""
    if order is not None:
        rt.redis.hset(
            state, mapping={"updated": str(order.get("dateUpdate", "")), "version": str(order.get("version", ""))}
        )
