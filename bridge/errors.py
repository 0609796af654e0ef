"""The two kinds of failure every job distinguishes.

A job either gives up at once (``PermanentError``: retrying cannot help, the work goes to the dead-letter
list with the reason a person needs to fix it) or waits and tries again (``TransientError``: the peer is
down, busy or rate-limited). Peer clients raise subclasses of these; the job layer only looks at the two.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of the bridge's own errors. The message never contains a secret."""


class PermanentError(BridgeError):
    """Retrying cannot help: bad data, a mapping that is missing, credentials 1C or the shop rejects."""


class TransientError(BridgeError):
    """Worth another try later.

    ``retry_after`` is the earliest moment (seconds from now) a retry can succeed, when the peer said so
    (a paused shop method, an open 1C circuit); ``kind`` names the cause for logs and back-off choice:
    ``busy`` retries soon, ``unavailable`` backs off long, ``rate_limited`` waits for the bucket.
    """

    def __init__(self, reason: str, *, kind: str = "unavailable", retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.retry_after = retry_after
