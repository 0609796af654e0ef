"""The order job's path before the move to ``bridge.orders.job``: kept for stored RQ jobs (see ``bridge.sync``)."""

from bridge.orders.job import sync_order

__all__ = ["sync_order"]
