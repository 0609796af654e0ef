"""The flush job's path before the move to ``bridge.updates.flush``: kept for stored RQ jobs (see ``bridge.sync``)."""

from bridge.updates.flush import flush

__all__ = ["flush"]
