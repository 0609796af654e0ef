"""One call of the order path to 1C, through the circuit: the order itself, or its buyer's counterparty.

Every such call follows the same rules, so they live once: no call while 1C is known to be down (the job waits
for the circuit's next probe instead); a call that got no concurrency slot gives back the probe it may hold,
since 1C was never asked; the answer is recorded in the telemetry and the circuit, and the answer that shows 1C
is back makes every waiting order due at once. What an answer that did not deliver means is the same too:
``not_delivered`` turns it into the error the job raises (a dead letter for a refusal, a retry otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from bridge.errors import Cause, PermanentError, TransientError
from bridge.onec.answers import Answer, Outcome
from bridge.queue import ORDERS_QUEUE
from bridge.queue.retry import bring_forward
from bridge.runtime import Runtime

log = logging.getLogger("bridge.orders.job")

Result = TypeVar("Result")


def through_circuit(
    rt: Runtime,
    call: Callable[[], Result],
    answer_of: Callable[[Result], Answer],
    *,
    order_id: str,
    operation: str = "orders",
) -> Result:
    """Run ``call`` if the circuit allows it and record its answer; raises ``TransientError`` while 1C is down."""
    circuit = rt.circuit
    if not circuit.allow():
        status = circuit.state()
        raise TransientError(
            f"1C is unavailable since {status.since}: {status.reason}",
            cause=Cause.UNAVAILABLE,
            retry_after=circuit.retry_in(),
        )
    started = time.monotonic()
    try:
        result = call()
    except TransientError:  # no concurrency slot came: 1C was not asked, so this was no probe either
        if circuit.state().is_open:  # then allow() gave us the probe; do not hold it for its whole lease
            circuit.release_probe()
        raise
    answer = answer_of(result)
    rt.telemetry.onec_call(answer, time.monotonic() - started, entity="order", entity_id=order_id, operation=operation)
    if circuit.record(answer):
        moved = bring_forward(rt.queue(ORDERS_QUEUE))
        log.info("1C is available again; %d waiting orders brought forward", moved)
    return result


def not_delivered(rt: Runtime, answer: Answer, *, refused: str, missed: str) -> PermanentError | TransientError:
    """The error for an answer that did not deliver: ``"<refused>: <1C's words>"`` as a dead letter when 1C
    refused, ``"<missed>: <1C's words>"`` as a retry (soon when 1C was busy, after the circuit's delay when
    it was unavailable)."""
    if answer.outcome is Outcome.PERMANENT:
        return PermanentError(f"{refused}: {answer.reason}")
    cause = Cause.BUSY if answer.outcome is Outcome.BUSY else Cause.UNAVAILABLE
    retry_after = rt.circuit.retry_in() if cause is Cause.UNAVAILABLE else None
    return TransientError(f"{missed}: {answer.reason}", cause=cause, retry_after=retry_after)
