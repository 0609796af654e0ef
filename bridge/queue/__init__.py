"""The bridge's RQ queues and the policy every job shares: where work waits, how long a dead letter is kept.

The package holds the queue and its maintenance, one idea a module:
``work`` what a job is; ``enqueue`` putting work into RQ once; ``template`` RQ's enqueue recorded once
and replayed; ``markers`` the pending markers that collapse repeated work; ``retry`` the retry policy;
``locked`` one job at a time per order or kind of update; ``orphans`` and ``deadletters`` the sweeps and
the dead-letter list.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry

ORDERS_QUEUE = "bridge-orders"
SHOP_QUEUE = "bridge-shop"
# The imports of 1C's exchange files: 1C waits on each, asking ``mode=import`` again while the bridge answers
# ``progress``, so a worker takes them before any flush (the order of ``bridge.worker.WORKER_QUEUES``).
EXCHANGE_QUEUE = "bridge-exchange"
QUEUES = (ORDERS_QUEUE, SHOP_QUEUE, EXCHANGE_QUEUE)

# A crash-safety net only: a job killed with its worker runs again this many times. Failures the job
# understands are rescheduled by the job itself (``schedule_retry``) with delays chosen by their cause.
# The first retry is immediate: it goes straight into the queue, not through RQ's scheduler, whose lock the
# killed worker may still hold for a minute (see ``bridge.worker``).
CRASH_RETRY = Retry(max=5, interval=[0, 15, 30, 60, 120])
FAILURE_TTL = 365 * 24 * 3600  # the dead-letter list keeps a job for a year


def make_queue(name: str, connection: Redis, *, default_timeout: int = 180) -> Queue:
    return Queue(name, connection=connection, default_timeout=default_timeout)
