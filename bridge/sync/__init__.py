"""Job paths of earlier releases, kept so that jobs already stored in Redis still run.

RQ stores each job's function by dotted path, and dead letters are kept for a year (``FAILURE_TTL``), so a job
queued, scheduled for a retry or parked as a dead letter before the move to ``bridge.orders`` and
``bridge.updates`` still names ``bridge.sync.orders.sync_order`` or ``bridge.sync.updates.flush``. These modules
only re-export the moved functions; nothing new may import them. ``bridge.queue.work.LEGACY_FUNCTIONS`` lists
them, and a test holds each to the function it stands for.
"""
