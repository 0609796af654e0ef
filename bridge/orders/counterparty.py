"""The buyer among 1C's counterparties: found by TIN, else e-mail, and created when 1C has none.

With ``[counterparty] mode`` in order.toml other than ``"off"``, an order's document gets the buyer's 1C ref
as ``Counterparty.Id`` before it goes to 1C, so 1C books the order on the right counterparty instead of
guessing from a name. Three promises shape this module:

- **Looked up once.** The ref is remembered in Redis under the buyer's TIN, else their e-mail (case
  ignored), so a regular buyer costs 1C one lookup, not one per order. It expires after ``REMEMBER``, so a
  counterparty merged or deleted in 1C heals by itself; deleting the key heals it at once.
- **Created at most once.** Lookup and creation run under a per-buyer lock shared by every worker: of two
  workers with two orders of one new buyer, the second waits for the lock and then finds the first's ref in
  Redis. A creation whose answer never came (a timeout) is not repeated blindly: the retry looks up first and
  finds what 1C did create. A lock whose holder was killed frees itself within ``BRIDGE_JOB_LEASE``.
- **1C's answers mean what they mean for orders** (``bridge.onec.answers``): the same concurrency slots,
  circuit and retries. A locked 1C opens the circuit and the order waits; a lock conflict is retried soon; a
  refused lookup or creation (400/401/422…) makes the order a dead letter with 1C's words.

Two cases where no ref is sent, decided so that an order is never held for something that cannot come:

- **No TIN and no e-mail** (a phone order, a one-click purchase): nothing to look the buyer up by, and no
  later attempt would have more. Creating a nameless counterparty for each such order would litter 1C's
  catalogue. The document goes without ``Id``, and 1C's handler books it as it did before counterparties
  were looked up (usually on its "retail buyer" counterparty). A 1C that insists on an ``Id`` can refuse
  such documents (422): they become dead letters with its words.
- **``"find"`` and 1C has none**: the integrator chose not to create; the document goes without ``Id`` and
  1C's handler decides. Not remembered: the next order looks again, as a manager may have entered the buyer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import LockError

from bridge import keys
from bridge.errors import Cause, PermanentError, TransientError
from bridge.locks import renewed
from bridge.onec.answers import Outcome
from bridge.onec.client import Found
from bridge.orders.onec_calls import not_delivered, through_circuit
from bridge.runtime import Runtime
from bridge.texts import as_text

log = logging.getLogger("bridge.orders.counterparty")

REMEMBER = 30 * 24 * 3600  # seconds a buyer's 1C ref is trusted before it is looked up again
# How long a second order of the same buyer waits for the first's lookup before it retries as "busy". A
# lookup and a creation take milliseconds when 1C is well; a slow 1C should not hold a worker for long.
LOCK_WAIT = 10.0


def attach_counterparty(rt: Runtime, order_id: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document with the buyer's 1C ref as ``Counterparty.Id`` when the mode asks for one and 1C has (or
    now made) one; else the document as it was. Raises ``TransientError`` / ``PermanentError`` as ``send``."""
    mode = rt.mappings.counterparty_mode
    if mode == "off":
        return document
    names = rt.mappings.document
    block_field = names.field("Counterparty")
    block = document.get(block_field)
    if not isinstance(block, dict):
        return document
    tin = _clean(block.get(names.field("Counterparty.TIN")), squeeze=True)
    email = _clean(block.get(names.field("Counterparty.Email")))
    number = str(document.get(names.field("Number")) or order_id)
    buyer = buyer_key(tin, email)
    if buyer is None:
        log.info("order %s has no TIN and no e-mail: sent without %s.Id", number, block_field)
        return document
    ref = remembered(rt, buyer) or _under_lock(rt, order_id, number, buyer, tin, email, block, mode)
    if ref is None:
        log.info("order %s: 1C has no counterparty with its %s; sent without %s.Id", number, buyer[0], block_field)
        return document
    return {**document, block_field: {**block, names.field("Counterparty.Id"): ref}}


def buyer_key(tin: str | None, email: str | None) -> tuple[str, str] | None:
    """What a buyer is remembered and locked by: ("tin", TIN), else ("email", e-mail without case)."""
    if tin:
        return ("tin", tin)
    if email:
        return ("email", email.casefold())
    return None


def remembered(rt: Runtime, buyer: tuple[str, str]) -> str | None:
    """The buyer's 1C ref, if a lookup or creation found it within ``REMEMBER``."""
    value = rt.redis.get(keys.COUNTERPARTY.format(how=buyer[0], value=buyer[1]))
    return as_text(value) if value else None


def _under_lock(
    rt: Runtime,
    order_id: str,
    number: str,
    buyer: tuple[str, str],
    tin: str | None,
    email: str | None,
    block: dict[str, Any],
    mode: str,
) -> str | None:
    lock = rt.redis.lock(
        keys.COUNTERPARTY_LOCK.format(how=buyer[0], value=buyer[1]), timeout=rt.settings.job_lease, thread_local=False
    )
    if not lock.acquire(blocking=True, blocking_timeout=LOCK_WAIT):
        raise TransientError(
            f"the buyer of order {number} is being looked up in 1C for another order", cause=Cause.BUSY
        )
    try:
        with renewed(lock, rt.settings.job_heartbeat):
            ref = remembered(rt, buyer)  # the holder before us may have found or created it
            if ref is None:
                ref = _find_or_create(rt, order_id, number, tin, email, block, create=mode == "find_or_create")
            if ref is not None:
                rt.redis.set(keys.COUNTERPARTY.format(how=buyer[0], value=buyer[1]), ref, ex=REMEMBER)
            return ref
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the counterparty lock of order %s expired before its lookup finished", number)


def _find_or_create(
    rt: Runtime,
    order_id: str,
    number: str,
    tin: str | None,
    email: str | None,
    block: dict[str, Any],
    *,
    create: bool,
) -> str | None:
    found = _ask(rt, order_id, number, "find", lambda: rt.onec.find_counterparty(tin=tin, email=email))
    if found.ref is not None:
        return found.ref
    if found.answer.status != 404:
        raise PermanentError(
            f"1C answered the counterparty lookup of order {number} with {found.answer.reason} but no id; "
            'the counterparties resource must answer 200 {"id": …} or 404'
        )
    if not create:
        return None
    made = _ask(rt, order_id, number, "create", lambda: rt.onec.create_counterparty(block))
    if made.ref is not None:
        return made.ref
    if made.answer.status == 409:  # someone entered the buyer between our lookup and our creation: look again
        raise TransientError(f"1C already has the buyer of order {number}: {made.answer.reason}", cause=Cause.BUSY)
    raise PermanentError(
        f"1C created the counterparty of order {number} but its answer ({made.answer.reason}) has no id; "
        'the counterparties resource must answer 201 {"id": …}'
    )


def _ask(rt: Runtime, order_id: str, number: str, operation: str, call: Callable[[], Found]) -> Found:
    """One lookup or create through the circuit, by the order path's rules (``bridge.orders.onec_calls``)."""
    found = through_circuit(rt, call, lambda f: f.answer, order_id=order_id, operation=f"counterparties.{operation}")
    if found.answer.outcome is Outcome.DELIVERED:
        return found
    verb = "look up" if operation == "find" else "create"
    raise not_delivered(
        rt,
        found.answer,
        refused=f"1C refused to {verb} the counterparty of order {number}",
        missed=f"1C did not {verb} the counterparty of order {number}",
    )


def _clean(value: Any, *, squeeze: bool = False) -> str | None:
    """A TIN or e-mail as the buyer typed it without outer spaces (``squeeze``: without any, as "77 12 345678"
    is the TIN 7712345678); None when empty."""
    if value is None or isinstance(value, dict | list):
        return None
    text = "".join(str(value).split()) if squeeze else str(value).strip()
    return text or None
